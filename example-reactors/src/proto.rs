//! The wire messages of the two reactors: CometBFT's protobuf types from `tendermint-proto`
//! (`tendermint.*` v0.38), plus what that crate lacks (v1.0's consensus kind 10).
//!
//! Every Go line in use (v0.34 to v1.0) numbers these fields the same way; the newer lines
//! only add fields and kinds, which prost skips or which are declared here.

pub use tendermint_proto::v0_38::consensus::{
    BlockPart, HasVote, NewRoundStep, NewValidBlock, Proposal, ProposalPol, Vote, VoteSetBits,
    VoteSetMaj23,
};
pub use tendermint_proto::v0_38::mempool::{
    Message as MempoolMessage, Txs, message::Sum as MempoolSum,
};
pub use tendermint_proto::v0_38::types::{BlockId, Header, Part};

/// A consensus message (`tendermint.consensus.Message`, `cometbft.consensus.v1.Message`): one
/// kind in a oneof. Tags 1–9 are every line's; 10 is v1.0's `HasProposalBlockPart`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ConsensusMessage {
    /// The kind.
    #[prost(oneof = "Consensus", tags = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10")]
    pub sum: Option<Consensus>,
}

/// The kinds of [`ConsensusMessage`].
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Consensus {
    /// 1: the sender's height, round and step.
    #[prost(message, tag = "1")]
    NewRoundStep(NewRoundStep),
    /// 2: the sender saw a valid block for a round.
    #[prost(message, tag = "2")]
    NewValidBlock(NewValidBlock),
    /// 3: a block proposal.
    #[prost(message, tag = "3")]
    Proposal(Proposal),
    /// 4: a proof-of-lock for a re-proposal.
    #[prost(message, tag = "4")]
    ProposalPol(ProposalPol),
    /// 5: a part of a block.
    #[prost(message, tag = "5")]
    BlockPart(BlockPart),
    /// 6: a prevote or precommit.
    #[prost(message, tag = "6")]
    Vote(Vote),
    /// 7: the sender has a vote.
    #[prost(message, tag = "7")]
    HasVote(HasVote),
    /// 8: the sender saw +2/3 votes for a block ID.
    #[prost(message, tag = "8")]
    VoteSetMaj23(VoteSetMaj23),
    /// 9: the votes the sender has for a block ID.
    #[prost(message, tag = "9")]
    VoteSetBits(VoteSetBits),
    /// 10 (v1.0): the sender has a part of the proposed block.
    #[prost(message, tag = "10")]
    HasProposalBlockPart(HasProposalBlockPart),
}

/// `cometbft.consensus.v1.HasProposalBlockPart`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct HasProposalBlockPart {
    /// Height.
    #[prost(int64, tag = "1")]
    pub height: i64,
    /// Round.
    #[prost(int32, tag = "2")]
    pub round: i32,
    /// Part index.
    #[prost(int32, tag = "3")]
    pub index: i32,
}

/// A block as the parts of a part set assemble into it (`tendermint.types.Block`), decoding
/// only its header (field 1); data, evidence and the last commit are skipped.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BlockHeaderOnly {
    /// The header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<Header>,
}

impl Consensus {
    /// The kind's snake-case name (the proto field name).
    pub fn name(&self) -> &'static str {
        match self {
            Self::NewRoundStep(_) => "new_round_step",
            Self::NewValidBlock(_) => "new_valid_block",
            Self::Proposal(_) => "proposal",
            Self::ProposalPol(_) => "proposal_pol",
            Self::BlockPart(_) => "block_part",
            Self::Vote(_) => "vote",
            Self::HasVote(_) => "has_vote",
            Self::VoteSetMaj23(_) => "vote_set_maj23",
            Self::VoteSetBits(_) => "vote_set_bits",
            Self::HasProposalBlockPart(_) => "has_proposal_block_part",
        }
    }
}
