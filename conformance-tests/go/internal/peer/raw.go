package peer

import (
	"fmt"

	"github.com/cosmos/gogoproto/proto"
)

// RawMessage is the message type of the echo channel and of the sink
// channels. Its protobuf "encoding" is the identity: Marshal returns Data
// unchanged and Unmarshal stores a copy of the input, so a message of n bytes
// is exactly n bytes of MConnection payload on the wire (no tag, no length
// prefix). gogoproto's proto.Marshal/Unmarshal/Clone pick up the Marshal,
// Unmarshal and Merge methods below instead of reflecting over the struct.
type RawMessage struct {
	Data []byte
}

// Reset implements proto.Message.
func (m *RawMessage) Reset() { m.Data = nil }

// String implements proto.Message.
func (m *RawMessage) String() string { return fmt.Sprintf("RawMessage(%d bytes)", len(m.Data)) }

// ProtoMessage implements proto.Message.
func (*RawMessage) ProtoMessage() {}

// Marshal returns the payload bytes as they are.
func (m *RawMessage) Marshal() ([]byte, error) {
	if m.Data == nil {
		return []byte{}, nil
	}
	return m.Data, nil
}

// Unmarshal keeps a copy of b (MConnection reuses its receive buffer).
func (m *RawMessage) Unmarshal(b []byte) error {
	m.Data = append(make([]byte, 0, len(b)), b...)
	return nil
}

// Merge implements gogoproto's Merger so proto.Clone does not reflect.
var _ proto.Merger = (*RawMessage)(nil)

// Merge appends src's payload (used by proto.Clone on the empty template).
func (m *RawMessage) Merge(src proto.Message) {
	if s, ok := src.(*RawMessage); ok {
		m.Data = append(m.Data, s.Data...)
	}
}
