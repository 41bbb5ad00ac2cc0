//! The consensus-watch core ([`Watch`]) on recorded bytes of a real Go testnet and on made-up
//! messages: reports, announcements, and what it refuses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use mukan_example_reactors::consensus_watch::{Action, HeightReport, PeerView, Watch, WatchError};
use mukan_example_reactors::proto::{
    BlockHeaderOnly, BlockPart, Consensus, ConsensusMessage, HasProposalBlockPart, Header,
    NewRoundStep, Part, Vote,
};
use prost::Message as _;
use sha2::{Digest, Sha256};

fn read(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn announced(bytes: &[u8]) -> NewRoundStep {
    match ConsensusMessage::decode(bytes).unwrap().sum {
        Some(Consensus::NewRoundStep(m)) => m,
        other => panic!("announced {other:?}"),
    }
}

/// Replays `messages` from one peer; returns the reports and what we announced.
fn replay(watch: &mut Watch, messages: &[Vec<u8>]) -> (Vec<HeightReport>, Vec<NewRoundStep>) {
    let mut peer = PeerView::default();
    let (mut reports, mut ours) = (Vec::new(), Vec::new());
    for m in messages {
        for a in watch.on_message(&mut peer, m).unwrap() {
            match a {
                Action::Report(r) => reports.push(r),
                Action::Announce(b) => ours.push(announced(&b)),
            }
        }
    }
    (reports, ours)
}

#[test]
fn a_recorded_go_testnet_gives_the_hashes_and_proposers_of_its_rpc() {
    let messages: Vec<Vec<u8>> = read("testnet-v0.38.25.messages")
        .lines()
        .map(|l| {
            let (ch, hex) = l.split_once(' ').unwrap();
            assert!(["20", "21", "22", "23"].contains(&ch));
            hex::decode(hex).unwrap()
        })
        .collect();
    let mut watch = Watch::new(1 << 20);
    let (reports, ours) = replay(&mut watch, &messages);
    let blocks: Vec<(i64, String, String)> = read("testnet-v0.38.25.blocks")
        .lines()
        .map(|l| {
            let w: Vec<&str> = l.split(' ').collect();
            (w[0].parse().unwrap(), w[1].to_owned(), w[2].to_owned())
        })
        .collect();
    // Every height the recording covers in full: the node's hash and proposer, all four
    // validators' precommits.
    for (height, hash, proposer) in &blocks {
        let r = reports
            .iter()
            .find(|r| r.height == *height)
            .unwrap_or_else(|| panic!("no report of height {height}: {reports:?}"));
        assert_eq!(
            r.block_hash.as_deref(),
            Some(hash.as_str()),
            "height {height}"
        );
        assert_eq!(
            r.proposer.as_deref(),
            Some(proposer.as_str()),
            "height {height}"
        );
        assert_eq!(r.precommits, [0, 1, 2, 3], "height {height}");
        assert_eq!(r.round, 0);
    }
    let prevoted = reports
        .iter()
        .filter(|r| r.prevotes == [0, 1, 2, 3])
        .count();
    assert!(prevoted >= 6, "{prevoted} heights with 4 prevotes");
    // What we announced mirrors the node: only forwards, never past Propose, the node's own
    // last-commit round.
    assert!(
        ours.len() >= 2 * blocks.len(),
        "{} announcements",
        ours.len()
    );
    for w in ours.windows(2) {
        assert!((w[0].height, w[0].round, w[0].step) < (w[1].height, w[1].round, w[1].step));
    }
    assert!(
        ours.iter()
            .all(|m| (1..=3).contains(&m.step) && m.last_commit_round >= 0)
    );
    let kinds = watch.kinds();
    for k in [
        "new_round_step",
        "proposal",
        "block_part",
        "vote",
        "has_vote",
        "new_valid_block",
    ] {
        assert!(kinds.get(k).copied().unwrap_or(0) > 0, "{k}: {kinds:?}");
    }
}

fn nrs(height: i64, round: i32, step: u32) -> Vec<u8> {
    let m = NewRoundStep {
        height,
        round,
        step,
        seconds_since_start_time: 1,
        last_commit_round: 0,
    };
    ConsensusMessage {
        sum: Some(Consensus::NewRoundStep(m)),
    }
    .encode_to_vec()
}

fn leaf(b: &[u8]) -> Vec<u8> {
    Sha256::new()
        .chain_update([0])
        .chain_update(b)
        .finalize()
        .to_vec()
}

fn inner(l: &[u8], r: &[u8]) -> Vec<u8> {
    Sha256::new()
        .chain_update([1])
        .chain_update(l)
        .chain_update(r)
        .finalize()
        .to_vec()
}

/// The root of `leaves` and each one's aunts (innermost first), RFC 6962 shape.
fn tree(leaves: &[Vec<u8>]) -> (Vec<u8>, Vec<Vec<Vec<u8>>>) {
    if leaves.len() == 1 {
        return (leaves[0].clone(), vec![Vec::new()]);
    }
    let split = leaves.len().next_power_of_two() / 2;
    let (l, mut la) = tree(&leaves[..split]);
    let (r, ra) = tree(&leaves[split..]);
    la.iter_mut().for_each(|a| a.push(r.clone()));
    la.extend(ra.into_iter().map(|mut a| {
        a.push(l.clone());
        a
    }));
    (inner(&l, &r), la)
}

/// A block of `height` as 3 block-part messages, and its header hash.
fn block(height: i64) -> (Vec<Vec<u8>>, String) {
    use tendermint_proto::google::protobuf::Timestamp;
    use tendermint_proto::v0_38::version::Consensus as Version;
    let h32 = |b: u8| vec![b; 32];
    let header = Header {
        version: Some(Version { block: 11, app: 0 }),
        chain_id: "watch-test".into(),
        height,
        time: Some(Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        }),
        last_block_id: None,
        last_commit_hash: h32(1),
        data_hash: h32(2),
        validators_hash: h32(3),
        next_validators_hash: h32(3),
        consensus_hash: h32(4),
        app_hash: vec![5; 8],
        last_results_hash: h32(6),
        evidence_hash: h32(7),
        proposer_address: vec![0xab; 20],
    };
    let hash = tendermint::block::Header::try_from(header.clone())
        .unwrap()
        .hash();
    let bytes = BlockHeaderOnly {
        header: Some(header),
    }
    .encode_to_vec();
    let chunks: Vec<Vec<u8>> = bytes
        .chunks(bytes.len() / 3 + 1)
        .map(<[u8]>::to_vec)
        .collect();
    let leaves: Vec<Vec<u8>> = chunks.iter().map(|c| leaf(c)).collect();
    let (_, aunts) = tree(&leaves);
    let parts = chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let proof = tendermint_proto::v0_38::crypto::Proof {
                total: chunks.len() as i64,
                index: i as i64,
                leaf_hash: leaves[i].clone(),
                aunts: aunts[i].clone(),
            };
            let part = Part {
                index: i as u32,
                bytes: c.clone(),
                proof: Some(proof),
            };
            let m = BlockPart {
                height,
                round: 0,
                part: Some(part),
            };
            ConsensusMessage {
                sum: Some(Consensus::BlockPart(m)),
            }
            .encode_to_vec()
        })
        .collect();
    (parts, hash.to_string())
}

#[test]
fn the_watch_stays_a_height_behind_until_the_block_is_in() {
    let mut watch = Watch::new(1 << 20);
    let mut peer = PeerView::default();
    let mut feed = |m: &[u8]| watch.on_message(&mut peer, m).unwrap();
    // Mirrored, the step capped at Propose.
    let a = feed(&nrs(5, 0, 6));
    assert!(
        matches!(&a[..], [Action::Announce(b)] if announced(b).step == 3 && announced(b).height == 5)
    );
    assert!(
        feed(&nrs(5, 0, 6)).is_empty(),
        "nothing new, nothing announced"
    );
    // The peer moves on while block 5 is missing: we stay at 5.
    assert!(feed(&nrs(6, 0, 1)).is_empty());
    let (parts, hash) = block(5);
    assert_eq!(parts.len(), 3);
    assert!(feed(&parts[2]).is_empty());
    assert!(feed(&parts[0]).is_empty());
    assert!(feed(&parts[0]).is_empty(), "a part twice is ignored");
    // The last part completes the block: now we follow the peer to height 6.
    let a = feed(&parts[1]);
    assert!(
        matches!(&a[..], [Action::Announce(b)] if announced(b).height == 6 && announced(b).step == 1)
    );
    // Height 5 is reported once the peer prevotes on 6.
    let a = feed(&nrs(6, 0, 4));
    let report = a.iter().find_map(|a| match a {
        Action::Report(r) => Some(r.clone()),
        Action::Announce(_) => None,
    });
    let r = report.expect("height 5 reported");
    assert_eq!(r.height, 5);
    assert_eq!(r.block_hash, Some(hash));
    assert_eq!(r.proposer, Some("AB".repeat(20)));
    // Late messages for a reported height change nothing.
    assert!(feed(&parts[0]).is_empty());
}

#[test]
fn a_peer_two_heights_ahead_is_followed_without_the_block() {
    let mut watch = Watch::new(1 << 20);
    let mut peer = PeerView::default();
    assert_eq!(watch.on_message(&mut peer, &nrs(5, 0, 3)).unwrap().len(), 1);
    let vote = tendermint_proto::v0_38::types::Vote {
        r#type: 2,
        height: 5,
        validator_index: 2,
        ..Default::default()
    };
    let m = ConsensusMessage {
        sum: Some(Consensus::Vote(Vote { vote: Some(vote) })),
    };
    assert!(
        watch
            .on_message(&mut peer, &m.encode_to_vec())
            .unwrap()
            .is_empty()
    );
    assert!(
        watch
            .on_message(&mut peer, &nrs(6, 0, 1))
            .unwrap()
            .is_empty()
    );
    let a = watch.on_message(&mut peer, &nrs(7, 0, 1)).unwrap();
    let heights: Vec<i64> = a
        .iter()
        .map(|a| match a {
            Action::Report(r) => {
                assert_eq!((r.block_hash.as_ref(), &r.precommits[..]), (None, &[2][..]));
                r.height
            }
            Action::Announce(b) => announced(b).height,
        })
        .collect();
    assert_eq!(
        heights,
        [5, 7],
        "height 5 reported without a block, then 7 announced"
    );
}

#[test]
fn bad_parts_and_oversized_blocks_are_not_assembled() {
    let (parts, _) = block(5);
    // A part whose proof does not lead to the others' root, and a block over the limit.
    let mut wrong = ConsensusMessage::decode(parts[1].as_slice()).unwrap();
    if let Some(Consensus::BlockPart(BlockPart { part: Some(p), .. })) = &mut wrong.sum {
        p.bytes[0] ^= 1;
    }
    for (max, second) in [(1 << 20, wrong.encode_to_vec()), (10, parts[1].clone())] {
        let mut watch = Watch::new(max);
        let mut peer = PeerView::default();
        watch.on_message(&mut peer, &nrs(5, 0, 3)).unwrap();
        for p in [&parts[0], &second, &parts[2]] {
            watch.on_message(&mut peer, p).unwrap();
        }
        let a = watch.on_message(&mut peer, &nrs(7, 0, 4)).unwrap();
        assert!(
            a.iter()
                .any(|a| matches!(a, Action::Report(r) if r.height == 5 && r.block_hash.is_none())),
            "{a:?}"
        );
    }
}

#[test]
fn every_kind_of_every_line_decodes_and_nothing_else_does() {
    let mut watch = Watch::new(1 << 20);
    let mut peer = PeerView::default();
    let v1 = HasProposalBlockPart {
        height: 5,
        round: 0,
        index: 1,
    };
    let m = ConsensusMessage {
        sum: Some(Consensus::HasProposalBlockPart(v1)),
    }
    .encode_to_vec();
    assert_eq!(m, [0x52, 0x04, 0x08, 0x05, 0x18, 0x01]);
    assert!(watch.on_message(&mut peer, &m).unwrap().is_empty());
    // Tag 1..9 with an empty body each.
    for tag in 1u8..=9 {
        assert!(
            watch.on_message(&mut peer, &[tag << 3 | 2, 0]).is_ok(),
            "kind {tag}"
        );
    }
    assert_eq!(watch.kinds().len(), 10);
    assert_eq!(
        watch.on_message(&mut peer, &[]),
        Err(WatchError::UnknownKind(0))
    );
    assert_eq!(
        watch.on_message(&mut peer, &[0x5a, 0x00]),
        Err(WatchError::UnknownKind(2))
    );
    assert!(matches!(
        watch.on_message(&mut peer, &[0x0a, 0x05, 0x08]),
        Err(WatchError::Malformed(_))
    ));
}
