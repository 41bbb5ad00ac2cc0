package peer

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/p2p"

	"mukan.dev/conformance/gopeer/internal/events"
)

// Rejection reasons printed in "rejected" events. The Rust peer prints the
// same tokens for the same situations.
const (
	ReasonAuthFailure     = "auth_failure"
	ReasonDuplicate       = "duplicate"
	ReasonFiltered        = "filtered"
	ReasonIncompatible    = "incompatible"
	ReasonInvalidNodeInfo = "invalid_node_info"
	ReasonSelf            = "self"
	ReasonDialFailed      = "dial_failed"
	ReasonAlreadyDialing  = "already_connected"
	ReasonMaxInbound      = "max_inbound"
	ReasonFilterTimeout   = "filter_timeout"
	ReasonOther           = "other"
)

// classify maps an error from the switch or transport to (reason, detail).
// detail refines some reasons: for incompatible "network", "channels" or
// "block_version"; for auth_failure "id_mismatch", "secret_conn" or
// "handshake".
func classify(err error) (string, string) {
	var rej p2p.ErrRejected
	if errors.As(err, &rej) {
		msg := rej.Error()
		switch {
		case rej.IsAuthFailure():
			switch {
			case strings.Contains(msg, "dialed ID"), strings.Contains(msg, "NodeInfo.ID"):
				return ReasonAuthFailure, "id_mismatch"
			case strings.Contains(msg, "secret conn failed"):
				return ReasonAuthFailure, "secret_conn"
			case strings.Contains(msg, "handshake failed"):
				return ReasonAuthFailure, "handshake"
			}
			return ReasonAuthFailure, ""
		case rej.IsDuplicate():
			return ReasonDuplicate, ""
		case rej.IsFiltered():
			return ReasonFiltered, ""
		case rej.IsIncompatible():
			switch {
			case strings.Contains(msg, "different network"):
				return ReasonIncompatible, "network"
			case strings.Contains(msg, "no common channels"):
				return ReasonIncompatible, "channels"
			case strings.Contains(msg, "different Block version"):
				return ReasonIncompatible, "block_version"
			}
			return ReasonIncompatible, ""
		case rej.IsNodeInfoInvalid():
			return ReasonInvalidNodeInfo, ""
		case rej.IsSelf():
			return ReasonSelf, ""
		}
		return ReasonOther, ""
	}
	var cur p2p.ErrCurrentlyDialingOrExistingAddress
	if errors.As(err, &cur) {
		return ReasonAlreadyDialing, ""
	}
	var ft p2p.ErrFilterTimeout
	if errors.As(err, &ft) {
		return ReasonFilterTimeout, ""
	}
	var se p2p.ErrSwitchDuplicatePeerID
	if errors.As(err, &se) {
		return ReasonDuplicate, ""
	}
	return ReasonDialFailed, ""
}

func emitRejected(ev *events.Emitter, direction string, err error, addr string, extra ...any) {
	reason, detail := classify(err)
	kv := []any{"direction", direction, "reason", reason, "detail", detail, "addr", addr, "error", err.Error()}
	kv = append(kv, extra...)
	ev.Emit("rejected", kv...)
}

// hookLogger forwards to a normal logger (stderr) and turns the switch's log
// lines about refused peers into "rejected" events: the switch reports
// inbound rejections (and persistent-peer redial failures) only by logging.
type hookLogger struct {
	base log.Logger
	ev   *events.Emitter
}

func (l hookLogger) Debug(msg string, kv ...interface{}) { l.base.Debug(msg, kv...) }

func (l hookLogger) Info(msg string, kv ...interface{}) {
	l.hook(msg, kv)
	l.base.Info(msg, kv...)
}

func (l hookLogger) Error(msg string, kv ...interface{}) {
	l.hook(msg, kv)
	l.base.Error(msg, kv...)
}

func (l hookLogger) With(kv ...interface{}) log.Logger {
	return hookLogger{base: l.base.With(kv...), ev: l.ev}
}

func kvGet(kv []interface{}, key string) (interface{}, bool) {
	for i := 0; i+1 < len(kv); i += 2 {
		if k, ok := kv[i].(string); ok && k == key {
			return kv[i+1], true
		}
	}
	return nil, false
}

func kvErr(kv []interface{}) error {
	v, ok := kvGet(kv, "err")
	if !ok {
		return errors.New("unknown error")
	}
	if e, ok := v.(error); ok {
		return e
	}
	return fmt.Errorf("%v", v)
}

func kvStr(kv []interface{}, key string) string {
	v, ok := kvGet(kv, key)
	if !ok || v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func (l hookLogger) hook(msg string, kv []interface{}) {
	switch msg {
	case "Inbound Peer rejected":
		err := kvErr(kv)
		addr := ""
		var rej p2p.ErrRejected
		if errors.As(err, &rej) && rej.IsSelf() {
			a := rej.Addr()
			addr = a.DialString()
		}
		emitRejected(l.ev, "inbound", err, addr)
	case "Ignoring inbound connection: error while adding peer":
		emitRejected(l.ev, "inbound", kvErr(kv), "", "id", kvStr(kv, "id"))
	case "Ignoring inbound connection: already have enough inbound peers":
		l.ev.Emit("rejected", "direction", "inbound", "reason", ReasonMaxInbound, "detail", "",
			"addr", kvStr(kv, "address"), "error", msg)
	case "Peer filter timed out":
		l.ev.Emit("rejected", "direction", "inbound", "reason", ReasonFilterTimeout, "detail", "",
			"addr", "", "error", kvStr(kv, "err"))
	case "Error reconnecting to peer. Trying again":
		emitRejected(l.ev, "outbound", kvErr(kv), kvStr(kv, "addr"), "redial", true, "tries", kvStr(kv, "tries"))
	}
}
