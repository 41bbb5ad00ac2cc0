//! Reactor-call traces as Quint runs of the spec's own model.
//!
//! CometBFT's `spec/p2p/reactor-api/reactor.qnt` (module `reactor`) models what the switch may
//! do to a reactor: `register`, `start`, `initPeer`, `addPeer`, `receive`, `removePeer`,
//! `stop`, each enabled only in the states the spec allows. A trace recorded from our switch
//! ([`TraceEvent`]s, see `mukan_reactor_api::testing::trace`) becomes a `run` that applies
//! those actions in the recorded order: `quint test` passes it only if every action was
//! enabled when it came.
//!
//! The module this writes imports the spec's (`import reactor.* from "./reactor"`), so the
//! spec's file must lie beside it; it is used as downloaded, never copied into this
//! repository. To keep `quint test` fast, a trace is not a chain of `.then`s (the type checker
//! is quadratic in the size of one expression): each event is one integer in short list
//! literals, and the run replays the list with `reps`.
//!
//! [`controls`] derives the negative controls from a recorded trace: a prefix that the model
//! accepts, then one call the spec forbids.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use mukan_reactor_api::ChannelId;
use mukan_reactor_api::testing::TraceEvent;

/// Events per list literal.
const CHUNK: usize = 50;

/// Indexes of the names, peers, channels and channel sets used by the traces of one module.
#[derive(Default)]
struct Tables {
    names: Vec<String>,
    peers: Vec<String>,
    channels: Vec<String>,
    sets: Vec<String>,
}

fn index_of(list: &mut Vec<String>, item: String) -> usize {
    if let Some(i) = list.iter().position(|x| *x == item) {
        return i;
    }
    list.push(item);
    list.len() - 1
}

fn quint_set(channels: &[(ChannelId, u32)]) -> String {
    let items: Vec<String> = channels
        .iter()
        .map(|(c, p)| format!("{{ ID: \"{:02x}\", Priority: {p} }}", c.0))
        .collect();
    format!("Set({})", items.join(", "))
}

impl Tables {
    /// `kind * 10^10 + reactor * 10^8 + peer * 10^3 + channel-or-set`.
    fn encode(&mut self, e: &TraceEvent) -> u64 {
        let r = index_of(&mut self.names, e.reactor().to_owned()) as u64;
        let p = e
            .peer()
            .map_or(0, |p| index_of(&mut self.peers, p.to_string())) as u64;
        let (kind, c) = match e {
            TraceEvent::Register { channels, .. } => {
                (0, index_of(&mut self.sets, quint_set(channels)))
            }
            TraceEvent::Start { .. } => (1, 0),
            TraceEvent::InitPeer { .. } => (2, 0),
            TraceEvent::AddPeer { .. } => (3, 0),
            TraceEvent::Receive { channel, .. } => (
                4,
                index_of(&mut self.channels, format!("{:02x}", channel.0)),
            ),
            TraceEvent::RemovePeer { .. } => (5, 0),
            TraceEvent::Stop { .. } => (6, 0),
        };
        kind * 10_000_000_000 + r * 100_000_000 + p * 1_000 + c as u64
    }
}

fn quint_strings(list: &[String]) -> String {
    let items: Vec<String> = list.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", items.join(", "))
}

/// A Quint identifier made of `prefix` and `i`, ending in `Test` (what `quint test` runs).
pub fn test_name(prefix: &str, i: usize) -> String {
    format!("{prefix}{i}Test")
}

/// The Quint module `name`: one run per trace, named [`test_name`]`("trace", i)` in the order
/// given, each preceded by a comment with its label.
///
/// # Panics
/// If a trace holds more than 100 reactors, 100,000 peers or 1,000 channels (the integer
/// encoding's limits).
pub fn module(name: &str, traces: &[(String, Vec<TraceEvent>)]) -> String {
    let mut t = Tables::default();
    let mut runs = String::new();
    for (i, (label, events)) in traces.iter().enumerate() {
        let codes: Vec<u64> = events.iter().map(|e| t.encode(e)).collect();
        let _ = writeln!(runs, "  // {label}: {} calls", events.len());
        let mut chunks = Vec::new();
        for (j, chunk) in codes.chunks(CHUNK).enumerate() {
            let items: Vec<String> = chunk.iter().map(u64::to_string).collect();
            let _ = writeln!(
                runs,
                "  pure val t{i}_{j}: List[int] = [{}]",
                items.join(", ")
            );
            chunks.push(format!("t{i}_{j}"));
        }
        let _ = writeln!(
            runs,
            "  pure val t{i}: List[int] = [{}].foldl([], (acc, l) => acc.concat(l))",
            chunks.join(", ")
        );
        let _ = writeln!(
            runs,
            "  run {} = init.then(t{i}.length().reps(k => replay(t{i}[k])))\n",
            test_name("trace", i)
        );
    }
    assert!(t.names.len() <= 100 && t.peers.len() <= 100_000 && t.channels.len() <= 1_000);
    assert!(t.sets.len() <= 1_000);
    // Quint needs the element type of an empty list literal.
    let typed = |s: String| if s == "[]" { "List()".to_owned() } else { s };
    format!(
        r#"// Generated from recorded reactor-call traces; replays each in the spec's model.
module {name} {{
  import reactor.* from "./reactor"

  pure val names: List[str] = {names}
  pure val peers: List[str] = {peers}
  pure val chans: List[str] = {chans}
  pure val chsets: List[Set[ChannelDescriptor]] = [{sets}]

  // One recorded call: kind * 10^10 + reactor * 10^8 + peer * 10^3 + channel (or channel set).
  action replay(x: int): bool = {{
    val kind = x / 10000000000
    val name = names[(x / 100000000) % 100]
    val peer = {{ ID: peers[(x / 1000) % 100000] }}
    val c = x % 1000
    if (kind == 0) register(name, NewReactor.with("channels", chsets[c]))
    else if (kind == 1) start(reactors.get(name))
    else if (kind == 2) initPeer(reactors.get(name), peer)
    else if (kind == 3) addPeer(reactors.get(name), peer)
    else if (kind == 4) receive(reactors.get(name), {{ Src: peer, Message: "m", ChannelID: chans[c] }})
    else if (kind == 5) removePeer(reactors.get(name), peer, "removed")
    else stop(reactors.get(name))
  }}

{runs}}}
"#,
        names = typed(quint_strings(&t.names)),
        peers = typed(quint_strings(&t.peers)),
        chans = typed(quint_strings(&t.channels)),
        sets = t.sets.join(", "),
    )
}

/// A negative control: a trace the model must refuse, and the prefix of it that it accepts.
#[derive(Clone, Debug)]
pub struct Control {
    /// What is wrong with it.
    pub name: &'static str,
    /// The accepted prefix (a prefix of a recorded trace).
    pub prefix: Vec<TraceEvent>,
    /// The forbidden call appended to the prefix.
    pub wrong: TraceEvent,
}

impl Control {
    /// The whole wrong trace.
    pub fn trace(&self) -> Vec<TraceEvent> {
        let mut t = self.prefix.clone();
        t.push(self.wrong.clone());
        t
    }
}

/// Why [`controls`] could not derive a control from a trace.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the trace has no {0}")]
pub struct NoPattern(pub &'static str);

/// The four negative controls, cut from `base` (a recorded trace):
/// - `receive_after_remove_peer`: up to the first `remove_peer`, then a message from that peer;
/// - `add_peer_without_init_peer`: up to (not including) the first `init_peer` that an
///   `add_peer` follows, then that `add_peer`;
/// - `stop_with_peers_left`: up to the first `add_peer`, then that reactor's `stop`;
/// - `unregistered_channel`: up to the first `add_peer`, then a message from that peer on a
///   channel no reactor registered.
///
/// # Errors
/// [`NoPattern`] if `base` lacks what a control is cut from.
pub fn controls(base: &[TraceEvent]) -> Result<Vec<Control>, NoPattern> {
    let registered: BTreeSet<u8> = base
        .iter()
        .filter_map(|e| match e {
            TraceEvent::Register { channels, .. } => Some(channels.iter().map(|(c, _)| c.0)),
            _ => None,
        })
        .flatten()
        .collect();
    let mut channels_of: HashMap<&str, ChannelId> = HashMap::new();
    for e in base {
        if let TraceEvent::Register { reactor, channels } = e {
            if let Some((c, _)) = channels.first() {
                channels_of.insert(reactor, *c);
            }
        }
    }
    let upto = |i: usize| {
        base.get(..=i)
            .map(<[TraceEvent]>::to_vec)
            .unwrap_or_default()
    };
    let before = |i: usize| {
        base.get(..i)
            .map(<[TraceEvent]>::to_vec)
            .unwrap_or_default()
    };

    let (i, r, p, ch) = base
        .iter()
        .enumerate()
        .find_map(|(i, e)| match e {
            TraceEvent::RemovePeer { reactor, peer } => channels_of
                .get(reactor.as_str())
                .map(|c| (i, reactor, *peer, *c)),
            _ => None,
        })
        .ok_or(NoPattern("remove_peer of a reactor with a channel"))?;
    let receive_after_remove = Control {
        name: "receive_after_remove_peer",
        prefix: upto(i),
        wrong: TraceEvent::Receive {
            reactor: r.clone(),
            peer: p,
            channel: ch,
        },
    };

    let (i, add) = base
        .iter()
        .enumerate()
        .find_map(|(i, e)| match e {
            TraceEvent::InitPeer { reactor, peer } => base.get(i + 1..).and_then(|rest| {
                rest.iter().find(|a| {
                    matches!(a, TraceEvent::AddPeer { reactor: r, peer: q } if r == reactor && q == peer)
                })
                .map(|a| (i, a.clone()))
            }),
            _ => None,
        })
        .ok_or(NoPattern("init_peer followed by add_peer"))?;
    let add_without_init = Control {
        name: "add_peer_without_init_peer",
        prefix: before(i),
        wrong: add,
    };

    let (i, r, p) = base
        .iter()
        .enumerate()
        .find_map(|(i, e)| match e {
            TraceEvent::AddPeer { reactor, peer } => Some((i, reactor.clone(), *peer)),
            _ => None,
        })
        .ok_or(NoPattern("add_peer"))?;
    let stop_with_peers = Control {
        name: "stop_with_peers_left",
        prefix: upto(i),
        wrong: TraceEvent::Stop { reactor: r.clone() },
    };
    let free = (0..=u8::MAX)
        .find(|c| !registered.contains(c))
        .ok_or(NoPattern("free channel"))?;
    let unregistered = Control {
        name: "unregistered_channel",
        prefix: upto(i),
        wrong: TraceEvent::Receive {
            reactor: r,
            peer: p,
            channel: ChannelId(free),
        },
    };
    Ok(vec![
        receive_after_remove,
        add_without_init,
        stop_with_peers,
        unregistered,
    ])
}

/// What `quint test` said of each test, from its output.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdicts {
    /// Tests reported `ok … passed`.
    pub passed: BTreeSet<String>,
    /// Tests that failed because an action of the run was not enabled: the run returned false
    /// (`QNT511`), or its `reps` loop stopped at the 1-based iteration given (`QNT513`).
    pub refused: BTreeMap<String, Option<usize>>,
    /// Tests that failed for any other reason (an evaluation error).
    pub errors: BTreeSet<String>,
}

/// Reads `quint test`'s output.
pub fn verdicts(output: &str) -> Verdicts {
    let mut v = Verdicts::default();
    let mut failed = BTreeSet::new();
    let mut section: Option<String> = None;
    for line in output.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["ok", name, "passed", ..] => {
                v.passed.insert((*name).to_owned());
            }
            [n, name, "failed", ..] if n.ends_with(')') => {
                failed.insert((*name).to_owned());
            }
            [n, name] if n.ends_with(')') && name.ends_with(':') => {
                section = Some(name.trim_end_matches(':').to_owned());
            }
            ["Error", "[QNT511]:", "Test", name, "returned", "false"] => {
                v.refused.insert((*name).to_owned(), None);
            }
            [
                "Error",
                "[QNT513]:",
                "Reps",
                "loop",
                "could",
                "not",
                "continue",
                "after",
                "iteration",
                n,
                ..,
            ] => {
                if let Some(name) = &section {
                    let n = n.trim_start_matches('#').parse().ok();
                    v.refused.insert(name.clone(), n);
                }
            }
            _ => {}
        }
    }
    v.errors = failed
        .into_iter()
        .filter(|n| !v.refused.contains_key(n))
        .collect();
    v
}

#[cfg(test)]
mod tests {
    use mukan_reactor_api::NodeId;

    use super::*;

    fn ev(line: &str) -> TraceEvent {
        line.parse().unwrap()
    }

    fn id(n: u8) -> NodeId {
        NodeId([n; 20])
    }

    fn base() -> Vec<TraceEvent> {
        let (a, b) = (id(1), id(2));
        [
            "register r0 0a:1".to_owned(),
            "register r1 0b:2,0c:1".to_owned(),
            "start r0".to_owned(),
            "start r1".to_owned(),
            format!("init r0 {a}"),
            format!("receive r0 {a} 0a"),
            format!("add r0 {a}"),
            format!("init r0 {b}"),
            format!("remove r0 {a}"),
            format!("remove r0 {b}"),
            "stop r0".to_owned(),
            "stop r1".to_owned(),
        ]
        .iter()
        .map(|l| ev(l))
        .collect()
    }

    #[test]
    fn events_encode_into_the_tables() {
        let module = module("m", &[("t".into(), base())]);
        assert!(module.contains("import reactor.* from \"./reactor\""));
        assert!(module.contains(r#"pure val names: List[str] = ["r0", "r1"]"#));
        assert!(module.contains(&format!(
            r#"pure val peers: List[str] = ["{}", "{}"]"#,
            id(1),
            id(2)
        )));
        assert!(module.contains(r#"Set({ ID: "0b", Priority: 2 }, { ID: "0c", Priority: 1 })"#));
        // register r0 (set 0), register r1 (set 1), start r0, start r1, init r0 a, receive
        // r0 a on channel 0 (0a), …
        assert!(module.contains(
            "[0, 100000001, 10000000000, 10100000000, 20000000000, 40000000000, 30000000000, 20000001000,"
        ));
        assert!(
            module.contains("run trace0Test = init.then(t0.length().reps(k => replay(t0[k])))")
        );
    }

    #[test]
    fn controls_cut_a_good_prefix_and_add_one_wrong_call() {
        let c = controls(&base()).unwrap();
        let names: Vec<&str> = c.iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "receive_after_remove_peer",
                "add_peer_without_init_peer",
                "stop_with_peers_left",
                "unregistered_channel"
            ]
        );
        let (a, _) = (id(1), id(2));
        assert_eq!(c[0].prefix.len(), 9);
        assert_eq!(c[0].wrong, ev(&format!("receive r0 {a} 0a")));
        assert_eq!(c[1].prefix.len(), 4);
        assert_eq!(c[1].wrong, ev(&format!("add r0 {a}")));
        assert_eq!(c[2].prefix.len(), 7);
        assert_eq!(c[2].wrong, ev("stop r0"));
        assert_eq!(c[3].wrong, ev(&format!("receive r0 {a} 00")));
        for control in &c {
            assert!(base().starts_with(&control.prefix));
        }
        assert_eq!(
            controls(&base()[..4]).unwrap_err(),
            NoPattern("remove_peer of a reactor with a channel")
        );
    }

    #[test]
    fn verdicts_tell_refusals_from_errors() {
        let out = "
  n
    ok goodTest passed 1 test(s)
    1) bad1Test failed after 1 test(s)
    2) bad3Test failed after 1 test(s)
    3) trace2Test failed after 1 test(s)

  1) bad1Test:
       Error [QNT511]: Test bad1Test returned false
  2) bad3Test:
       Error [QNT507]: Called 'get' with a non-existing key.
  3) trace2Test:
       Error [QNT513]: Reps loop could not continue after iteration #37 evaluated to false
";
        let v = verdicts(out);
        assert_eq!(v.passed, BTreeSet::from(["goodTest".to_owned()]));
        assert_eq!(
            v.refused,
            BTreeMap::from([
                ("bad1Test".to_owned(), None),
                ("trace2Test".to_owned(), Some(37))
            ])
        );
        assert_eq!(v.errors, BTreeSet::from(["bad3Test".to_owned()]));
    }
}
