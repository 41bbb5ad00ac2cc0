//! Test decoder of the consensus reactor's wire messages, for the interop suite.
//!
//! Every message on the consensus channels (0x20 state, 0x21 data, 0x22 vote, 0x23
//! vote-set bits) is one `Message` whose `sum` oneof holds one kind. The lines in use
//! differ in the kinds they send:
//!
//! | line | proto package | kinds (oneof tags) |
//! | --- | --- | --- |
//! | v0.34, v0.37, v0.38, v0.40 | `tendermint.consensus` | 1–9 |
//! | v1.0 | `cometbft.consensus.v1` | 1–9, and 10 `HasProposalBlockPart` |
//!
//! (v1.0 also ships `cometbft.consensus.v1beta1`, the 1–9 set; its node sends `v1`.)
//! The decoder reads every kind's height and round (and a `NewRoundStep`'s step), and
//! tells an empty message apart from one whose kind it does not know, so the suite can
//! assert that a node's consensus traffic is understood in full.

use std::fmt;

/// The channels whose messages are consensus `Message`s.
pub const CHANNELS: [u8; 4] = [0x20, 0x21, 0x22, 0x23];

/// A consensus message kind (the oneof tag of `Message.sum`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// 1: the sender's height/round/step.
    NewRoundStep,
    /// 2: a valid block seen for a round.
    NewValidBlock,
    /// 3: a block proposal.
    Proposal,
    /// 4: a proof-of-lock for a re-proposal.
    ProposalPol,
    /// 5: a part of the proposed block.
    BlockPart,
    /// 6: a vote.
    Vote,
    /// 7: the sender has a vote.
    HasVote,
    /// 8: the sender has seen +2/3 votes for a block ID.
    VoteSetMaj23,
    /// 9: the votes the sender has for a block ID.
    VoteSetBits,
    /// 10 (v1.0 only): the sender has a part of the proposed block.
    HasProposalBlockPart,
}

impl Kind {
    /// Every kind, in oneof-tag order.
    pub const ALL: [Self; 10] = [
        Self::NewRoundStep,
        Self::NewValidBlock,
        Self::Proposal,
        Self::ProposalPol,
        Self::BlockPart,
        Self::Vote,
        Self::HasVote,
        Self::VoteSetMaj23,
        Self::VoteSetBits,
        Self::HasProposalBlockPart,
    ];

    /// The snake-case name used in the suite's events (the proto field name).
    pub fn name(self) -> &'static str {
        match self {
            Self::NewRoundStep => "new_round_step",
            Self::NewValidBlock => "new_valid_block",
            Self::Proposal => "proposal",
            Self::ProposalPol => "proposal_pol",
            Self::BlockPart => "block_part",
            Self::Vote => "vote",
            Self::HasVote => "has_vote",
            Self::VoteSetMaj23 => "vote_set_maj23",
            Self::VoteSetBits => "vote_set_bits",
            Self::HasProposalBlockPart => "has_proposal_block_part",
        }
    }

    /// The oneof tag.
    pub fn tag(self) -> u32 {
        match self {
            Self::NewRoundStep => 1,
            Self::NewValidBlock => 2,
            Self::Proposal => 3,
            Self::ProposalPol => 4,
            Self::BlockPart => 5,
            Self::Vote => 6,
            Self::HasVote => 7,
            Self::VoteSetMaj23 => 8,
            Self::VoteSetBits => 9,
            Self::HasProposalBlockPart => 10,
        }
    }

    fn index(self) -> usize {
        self.tag() as usize - 1
    }
}

/// What a decoded message says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// Its kind.
    pub kind: Kind,
    /// The height it is about.
    pub height: i64,
    /// The round it is about (`ProposalPOL`: the proof-of-lock round).
    pub round: i32,
    /// `NewRoundStep` only: the step.
    pub step: Option<u32>,
}

/// Why a message was not understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// No bytes at all, or a `Message` with no field.
    Empty,
    /// A field this decoder does not know (a kind of a newer line?).
    UnknownKind {
        /// The field's tag.
        tag: u32,
        /// The field's wire type.
        wire_type: u32,
    },
    /// Not a valid encoding of a known kind.
    Malformed(String),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty message"),
            Self::UnknownKind { tag, wire_type } => {
                write!(f, "unknown kind: field {tag} (wire type {wire_type})")
            }
            Self::Malformed(e) => write!(f, "malformed: {e}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes one consensus `Message`.
pub fn decode(message: &[u8]) -> Result<Decoded, DecodeError> {
    use prost::Message as _;
    let decoded =
        wire::Message::decode(message).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    let Some(sum) = decoded.sum else {
        if message.is_empty() {
            return Err(DecodeError::Empty);
        }
        // prost skips fields it does not know: the first key tells which one it was.
        let mut buf = message;
        return match prost::encoding::decode_key(&mut buf) {
            Ok((tag, wire_type)) => Err(DecodeError::UnknownKind {
                tag,
                wire_type: wire_type as u32,
            }),
            Err(e) => Err(DecodeError::Malformed(e.to_string())),
        };
    };
    use wire::Sum;
    let (kind, height, round, step) = match sum {
        Sum::NewRoundStep(m) => (Kind::NewRoundStep, m.height, m.round, Some(m.step)),
        Sum::NewValidBlock(m) => (Kind::NewValidBlock, m.height, m.round, None),
        Sum::Proposal(m) => {
            let p = m.proposal.unwrap_or_default();
            (Kind::Proposal, p.height, p.round, None)
        }
        Sum::ProposalPol(m) => (Kind::ProposalPol, m.height, m.round, None),
        Sum::BlockPart(m) => (Kind::BlockPart, m.height, m.round, None),
        Sum::Vote(m) => {
            let v = m.vote.unwrap_or_default();
            (Kind::Vote, v.height, v.round, None)
        }
        Sum::HasVote(m) => (Kind::HasVote, m.height, m.round, None),
        Sum::VoteSetMaj23(m) => (Kind::VoteSetMaj23, m.height, m.round, None),
        Sum::VoteSetBits(m) => (Kind::VoteSetBits, m.height, m.round, None),
        Sum::HasProposalBlockPart(m) => (Kind::HasProposalBlockPart, m.height, m.round, None),
    };
    Ok(Decoded {
        kind,
        height,
        round,
        step,
    })
}

/// Counts messages per kind and per error, and says which ones are worth an event: the
/// first three and then every power of ten of each kind, and of errors.
#[derive(Debug, Default)]
pub struct Tally {
    kinds: [u64; 10],
    errors: u64,
}

impl Tally {
    /// Counts one decode result; returns its count (per kind, or of errors) and whether to
    /// report it.
    pub fn record(&mut self, result: &Result<Decoded, DecodeError>) -> (u64, bool) {
        let count = match result {
            Ok(d) => &mut self.kinds[d.kind.index()],
            Err(_) => &mut self.errors,
        };
        *count = count.saturating_add(1);
        (*count, *count <= 3 || is_power_of_ten(*count))
    }

    /// Messages of one kind so far.
    pub fn count(&self, kind: Kind) -> u64 {
        self.kinds[kind.index()]
    }

    /// Messages not understood so far.
    pub fn errors(&self) -> u64 {
        self.errors
    }
}

fn is_power_of_ten(mut n: u64) -> bool {
    while n >= 10 && n % 10 == 0 {
        n /= 10;
    }
    n == 1
}

/// The wire structs. Only the fields the decoder reads are declared (prost skips the
/// others); a field present with another wire type than its declaration is an error.
mod wire {
    /// `Message` (`tendermint.consensus.Message`, `cometbft.consensus.v1.Message`).
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Message {
        #[prost(oneof = "Sum", tags = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10")]
        pub(super) sum: Option<Sum>,
    }

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub(super) enum Sum {
        #[prost(message, tag = "1")]
        NewRoundStep(NewRoundStep),
        #[prost(message, tag = "2")]
        NewValidBlock(HeightRound),
        #[prost(message, tag = "3")]
        Proposal(ProposalMessage),
        #[prost(message, tag = "4")]
        ProposalPol(HeightRound),
        #[prost(message, tag = "5")]
        BlockPart(HeightRound),
        #[prost(message, tag = "6")]
        Vote(VoteMessage),
        #[prost(message, tag = "7")]
        HasVote(HeightRound),
        #[prost(message, tag = "8")]
        VoteSetMaj23(HeightRound),
        #[prost(message, tag = "9")]
        VoteSetBits(HeightRound),
        #[prost(message, tag = "10")]
        HasProposalBlockPart(HeightRound),
    }

    /// `NewRoundStep`: height 1, round 2, step 3 (then seconds_since_start_time 4,
    /// last_commit_round 5).
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct NewRoundStep {
        #[prost(int64, tag = "1")]
        pub(super) height: i64,
        #[prost(int32, tag = "2")]
        pub(super) round: i32,
        #[prost(uint32, tag = "3")]
        pub(super) step: u32,
        #[prost(int64, tag = "4")]
        pub(super) seconds_since_start_time: i64,
        #[prost(int32, tag = "5")]
        pub(super) last_commit_round: i32,
    }

    /// The kinds that start with height 1 and round 2: `NewValidBlock`, `ProposalPOL`
    /// (`proposal_pol_round`), `BlockPart`, `HasVote`, `VoteSetMaj23`, `VoteSetBits`,
    /// `HasProposalBlockPart`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct HeightRound {
        #[prost(int64, tag = "1")]
        pub(super) height: i64,
        #[prost(int32, tag = "2")]
        pub(super) round: i32,
    }

    /// Consensus `Proposal { types.Proposal proposal = 1 }`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct ProposalMessage {
        #[prost(message, optional, tag = "1")]
        pub(super) proposal: Option<TypeHeightRound>,
    }

    /// Consensus `Vote { types.Vote vote = 1 }`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct VoteMessage {
        #[prost(message, optional, tag = "1")]
        pub(super) vote: Option<TypeHeightRound>,
    }

    /// `types.Proposal` and `types.Vote`: type 1, height 2, round 3.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct TypeHeightRound {
        #[prost(int32, tag = "1")]
        pub(super) r#type: i32,
        #[prost(int64, tag = "2")]
        pub(super) height: i64,
        #[prost(int32, tag = "3")]
        pub(super) round: i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors written from the proto definitions by hand: key = tag << 3 | wire type.

    #[test]
    fn new_round_step_reads_height_round_step() {
        // Message{new_round_step: {height 7, round 1, step 3, seconds 2, last_commit_round 0}}
        let msg = [0x0a, 0x08, 0x08, 0x07, 0x10, 0x01, 0x18, 0x03, 0x20, 0x02];
        let d = decode(&msg).unwrap();
        assert_eq!(
            d,
            Decoded {
                kind: Kind::NewRoundStep,
                height: 7,
                round: 1,
                step: Some(3)
            }
        );
    }

    #[test]
    fn has_proposal_block_part_of_v1_is_known() {
        // Message{has_proposal_block_part (10): {height 5, round 0, index 1}}
        let msg = [0x52, 0x04, 0x08, 0x05, 0x18, 0x01];
        let d = decode(&msg).unwrap();
        assert_eq!(d.kind, Kind::HasProposalBlockPart);
        assert_eq!((d.height, d.round, d.step), (5, 0, None));
    }

    #[test]
    fn vote_and_proposal_read_the_nested_height() {
        // Message{vote (6): {vote: {type 1 (prevote), height 300, round 2}}}
        let vote = [
            0x32, 0x09, 0x0a, 0x07, 0x08, 0x01, 0x10, 0xac, 0x02, 0x18, 0x02,
        ];
        let d = decode(&vote).unwrap();
        assert_eq!((d.kind, d.height, d.round), (Kind::Vote, 300, 2));
        // Message{proposal (3): {proposal: {type 32, height 4, round 0}}}
        let proposal = [0x1a, 0x06, 0x0a, 0x04, 0x08, 0x20, 0x10, 0x04];
        let d = decode(&proposal).unwrap();
        assert_eq!((d.kind, d.height, d.round), (Kind::Proposal, 4, 0));
    }

    #[test]
    fn every_kind_decodes_from_its_tag() {
        for kind in Kind::ALL {
            // {height 9, round 1} fits every kind but Proposal and Vote, whose field 1 is a
            // message: give them an empty one.
            let inner: &[u8] = match kind {
                Kind::Proposal | Kind::Vote => &[0x0a, 0x00],
                _ => &[0x08, 0x09, 0x10, 0x01],
            };
            let mut msg = vec![(kind.tag() << 3 | 2) as u8, inner.len() as u8];
            msg.extend_from_slice(inner);
            let d = decode(&msg).unwrap_or_else(|e| panic!("{}: {e}", kind.name()));
            assert_eq!(d.kind, kind);
        }
    }

    #[test]
    fn empty_and_unknown_are_told_apart() {
        assert_eq!(decode(&[]), Err(DecodeError::Empty));
        // Field 11, length-delimited, empty: a kind no line sends today.
        assert_eq!(
            decode(&[0x5a, 0x00]),
            Err(DecodeError::UnknownKind {
                tag: 11,
                wire_type: 2
            })
        );
    }

    #[test]
    fn malformed_is_an_error_not_a_panic() {
        // Length 5 with 1 byte behind it.
        assert!(matches!(
            decode(&[0x0a, 0x05, 0x08]),
            Err(DecodeError::Malformed(_))
        ));
        // Field 1 (new_round_step) as a varint instead of a message.
        assert!(matches!(
            decode(&[0x08, 0x01]),
            Err(DecodeError::Malformed(_))
        ));
        // Height as a length-delimited field inside NewRoundStep.
        assert!(matches!(
            decode(&[0x0a, 0x02, 0x0a, 0x00]),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn tally_reports_first_three_then_powers_of_ten() {
        let mut t = Tally::default();
        let nrs = decode(&[0x0a, 0x02, 0x08, 0x01]);
        let reported: Vec<u64> = (0..1000)
            .filter_map(|_| match t.record(&nrs) {
                (n, true) => Some(n),
                _ => None,
            })
            .collect();
        assert_eq!(reported, vec![1, 2, 3, 10, 100, 1000]);
        assert_eq!(t.count(Kind::NewRoundStep), 1000);
        assert_eq!(t.count(Kind::Vote), 0);
        assert_eq!(t.record(&Err(DecodeError::Empty)), (1, true));
        assert_eq!(t.errors(), 1);
    }
}
