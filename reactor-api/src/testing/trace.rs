//! Traces of the calls a switch makes on its reactors, in the terms of the spec's model
//! (`spec/p2p/reactor-api/reactor.qnt`: `register`, `start`, `initPeer`, `addPeer`,
//! `receive`, `removePeer`, `stop`), for replaying them in that model.
//!
//! Wrap each reactor in a [`Traced`] sharing one [`CallTrace`] per switch before registering
//! it; the trace then holds every call of every reactor of that switch in the order they were
//! made. [`CallTrace::write`] saves it as text, one [`TraceEvent`] a line:
//!
//! ```text
//! mukan-reactor-trace 1
//! register pex 00:1
//! start pex
//! init pex 3a6e…c1
//! add pex 3a6e…c1
//! receive pex 3a6e…c1 00
//! remove pex 3a6e…c1
//! stop pex
//! ```
//!
//! (`register NAME CH:PRIORITY,…`, channels as two hex digits, peers as node IDs.)

use std::fmt;
use std::io;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex, Weak};

use mukan_node_key::NodeId;

use super::lock;
use crate::{
    ChannelDescriptor, ChannelId, Dialer, Envelope, Network, Peer, Reactor, ReactorError,
    StopReason,
};

/// The first line of a trace file.
pub const TRACE_HEADER: &str = "mukan-reactor-trace 1";

/// One call of the switch on a reactor, named as the model's action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceEvent {
    /// The reactor was registered under `reactor` with these channels and priorities
    /// ([`Reactor::channels`]).
    Register {
        /// Its name in the switch.
        reactor: String,
        /// Its channels, with their priorities.
        channels: Vec<(ChannelId, u32)>,
    },
    /// [`Reactor::on_start`].
    Start {
        /// The reactor.
        reactor: String,
    },
    /// [`Reactor::init_peer`].
    InitPeer {
        /// The reactor.
        reactor: String,
        /// The peer.
        peer: NodeId,
    },
    /// [`Reactor::add_peer`].
    AddPeer {
        /// The reactor.
        reactor: String,
        /// The peer.
        peer: NodeId,
    },
    /// [`Reactor::receive`].
    Receive {
        /// The reactor.
        reactor: String,
        /// The sender.
        peer: NodeId,
        /// The channel the message arrived on.
        channel: ChannelId,
    },
    /// [`Reactor::remove_peer`].
    RemovePeer {
        /// The reactor.
        reactor: String,
        /// The peer.
        peer: NodeId,
    },
    /// [`Reactor::on_stop`].
    Stop {
        /// The reactor.
        reactor: String,
    },
}

impl TraceEvent {
    /// The reactor the call was made on.
    pub fn reactor(&self) -> &str {
        match self {
            Self::Register { reactor, .. }
            | Self::Start { reactor }
            | Self::InitPeer { reactor, .. }
            | Self::AddPeer { reactor, .. }
            | Self::Receive { reactor, .. }
            | Self::RemovePeer { reactor, .. }
            | Self::Stop { reactor } => reactor,
        }
    }

    /// The peer the call is about, if any.
    pub fn peer(&self) -> Option<NodeId> {
        match self {
            Self::InitPeer { peer, .. }
            | Self::AddPeer { peer, .. }
            | Self::Receive { peer, .. }
            | Self::RemovePeer { peer, .. } => Some(*peer),
            _ => None,
        }
    }
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Register { reactor, channels } => {
                write!(f, "register {reactor}")?;
                for (i, (ch, priority)) in channels.iter().enumerate() {
                    let sep = if i == 0 { " " } else { "," };
                    write!(f, "{sep}{:02x}:{priority}", ch.0)?;
                }
                Ok(())
            }
            Self::Start { reactor } => write!(f, "start {reactor}"),
            Self::InitPeer { reactor, peer } => write!(f, "init {reactor} {peer}"),
            Self::AddPeer { reactor, peer } => write!(f, "add {reactor} {peer}"),
            Self::Receive {
                reactor,
                peer,
                channel,
            } => write!(f, "receive {reactor} {peer} {:02x}", channel.0),
            Self::RemovePeer { reactor, peer } => write!(f, "remove {reactor} {peer}"),
            Self::Stop { reactor } => write!(f, "stop {reactor}"),
        }
    }
}

/// A trace line that is not a [`TraceEvent`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a trace event: {0:?}")]
pub struct TraceParseError(pub String);

impl FromStr for TraceEvent {
    type Err = TraceParseError;

    fn from_str(line: &str) -> Result<Self, Self::Err> {
        let bad = || TraceParseError(line.to_owned());
        let words: Vec<&str> = line.split_whitespace().collect();
        let peer = |w: &str| w.parse::<NodeId>().map_err(|_| bad());
        let channel = |w: &str| u8::from_str_radix(w, 16).map(ChannelId).map_err(|_| bad());
        let reactor = |w: &&str| (*w).to_owned();
        Ok(match words.as_slice() {
            ["register", r, list] => Self::Register {
                reactor: reactor(r),
                channels: list
                    .split(',')
                    .map(|c| {
                        let (id, priority) = c.split_once(':').ok_or_else(bad)?;
                        Ok((channel(id)?, priority.parse().map_err(|_| bad())?))
                    })
                    .collect::<Result<_, _>>()?,
            },
            // A reactor with no channel (one that only dials, say).
            ["register", r] => Self::Register {
                reactor: reactor(r),
                channels: Vec::new(),
            },
            ["start", r] => Self::Start {
                reactor: reactor(r),
            },
            ["init", r, p] => Self::InitPeer {
                reactor: reactor(r),
                peer: peer(p)?,
            },
            ["add", r, p] => Self::AddPeer {
                reactor: reactor(r),
                peer: peer(p)?,
            },
            ["receive", r, p, c] => Self::Receive {
                reactor: reactor(r),
                peer: peer(p)?,
                channel: channel(c)?,
            },
            ["remove", r, p] => Self::RemovePeer {
                reactor: reactor(r),
                peer: peer(p)?,
            },
            ["stop", r] => Self::Stop {
                reactor: reactor(r),
            },
            _ => return Err(bad()),
        })
    }
}

/// The calls a switch made on its reactors, in order; shared by the [`Traced`] wrappers of
/// one switch. Cheap to clone (one shared log).
#[derive(Clone, Debug, Default)]
pub struct CallTrace {
    events: Arc<Mutex<Vec<TraceEvent>>>,
}

impl CallTrace {
    /// An empty trace.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `event`.
    pub fn record(&self, event: TraceEvent) {
        lock(&self.events).push(event);
    }

    /// The events so far.
    pub fn events(&self) -> Vec<TraceEvent> {
        lock(&self.events).clone()
    }

    /// Writes the trace to `path` ([`TRACE_HEADER`], then one event a line).
    ///
    /// # Errors
    /// Writing the file failed.
    pub fn write(&self, path: &Path) -> io::Result<()> {
        let mut text = format!("{TRACE_HEADER}\n");
        for e in lock(&self.events).iter() {
            text.push_str(&e.to_string());
            text.push('\n');
        }
        std::fs::write(path, text)
    }

    /// Reads a trace written by [`CallTrace::write`].
    ///
    /// # Errors
    /// The file cannot be read, lacks the header, or holds a line that is not an event.
    pub fn read(path: &Path) -> io::Result<Vec<TraceEvent>> {
        let text = std::fs::read_to_string(path)?;
        let mut lines = text.lines();
        if lines.next() != Some(TRACE_HEADER) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: not a reactor trace", path.display()),
            ));
        }
        lines
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.parse().map_err(io::Error::other))
            .collect()
    }
}

/// A reactor wrapped so that every call the switch makes on it is recorded in a
/// [`CallTrace`] (under the name it is registered with), then passed on unchanged.
pub struct Traced<R: Reactor + ?Sized> {
    name: String,
    inner: Arc<R>,
    trace: CallTrace,
}

impl<R: Reactor + ?Sized> fmt::Debug for Traced<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Traced").field("name", &self.name).finish()
    }
}

impl<R: Reactor + ?Sized> Traced<R> {
    /// Wraps `inner`, to be registered under `name`, recording into `trace`.
    pub fn new(name: &str, inner: Arc<R>, trace: &CallTrace) -> Self {
        Self {
            name: name.to_owned(),
            inner,
            trace: trace.clone(),
        }
    }

    /// The wrapped reactor.
    pub fn inner(&self) -> &Arc<R> {
        &self.inner
    }

    fn record(&self, make: impl FnOnce(String) -> TraceEvent) {
        self.trace.record(make(self.name.clone()));
    }
}

impl<R: Reactor + ?Sized> Reactor for Traced<R> {
    fn channels(&self) -> Vec<ChannelDescriptor> {
        let channels = self.inner.channels();
        self.record(|reactor| TraceEvent::Register {
            reactor,
            channels: channels.iter().map(|d| (d.id, d.priority.get())).collect(),
        });
        channels
    }

    fn set_switch(&self, switch: Weak<dyn Network>) {
        self.inner.set_switch(switch);
    }

    fn set_dialer(&self, dialer: Weak<dyn Dialer>) {
        self.inner.set_dialer(dialer);
    }

    fn on_start(&self) {
        self.record(|reactor| TraceEvent::Start { reactor });
        self.inner.on_start();
    }

    fn on_stop(&self) {
        self.record(|reactor| TraceEvent::Stop { reactor });
        self.inner.on_stop();
    }

    fn init_peer(&self, peer: &Arc<dyn Peer>) {
        let id = peer.id();
        self.record(|reactor| TraceEvent::InitPeer { reactor, peer: id });
        self.inner.init_peer(peer);
    }

    fn add_peer(&self, peer: &Arc<dyn Peer>) {
        let id = peer.id();
        self.record(|reactor| TraceEvent::AddPeer { reactor, peer: id });
        self.inner.add_peer(peer);
    }

    fn remove_peer(&self, peer: &Arc<dyn Peer>, reason: &StopReason) {
        let id = peer.id();
        self.record(|reactor| TraceEvent::RemovePeer { reactor, peer: id });
        self.inner.remove_peer(peer, reason);
    }

    fn receive(&self, envelope: Envelope) -> Result<(), ReactorError> {
        let (peer, channel) = (envelope.src.id(), envelope.channel);
        self.record(|reactor| TraceEvent::Receive {
            reactor,
            peer,
            channel,
        });
        self.inner.receive(envelope)
    }

    fn filter(&self, channel: ChannelId, message: &[u8]) -> Result<(), ReactorError> {
        self.inner.filter(channel, message)
    }

    fn message_type(&self, channel: ChannelId, message: &[u8]) -> Option<&'static str> {
        self.inner.message_type(channel, message)
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use bytes::Bytes;

    use super::*;
    use crate::testing::{FakePeer, RecordingReactor};

    fn id(n: u8) -> NodeId {
        NodeId([n; 20])
    }

    #[test]
    fn events_round_trip_through_text() {
        let events = vec![
            TraceEvent::Register {
                reactor: "pex".into(),
                channels: vec![(ChannelId(0), 1), (ChannelId(0x7e), 5)],
            },
            TraceEvent::Start {
                reactor: "pex".into(),
            },
            TraceEvent::Register {
                reactor: "dialer".into(),
                channels: Vec::new(),
            },
            TraceEvent::InitPeer {
                reactor: "pex".into(),
                peer: id(1),
            },
            TraceEvent::AddPeer {
                reactor: "pex".into(),
                peer: id(1),
            },
            TraceEvent::Receive {
                reactor: "pex".into(),
                peer: id(1),
                channel: ChannelId(0x7e),
            },
            TraceEvent::RemovePeer {
                reactor: "pex".into(),
                peer: id(1),
            },
            TraceEvent::Stop {
                reactor: "pex".into(),
            },
        ];
        for e in &events {
            assert_eq!(e.to_string().parse::<TraceEvent>().unwrap(), *e, "{e}");
        }
        assert_eq!(events[0].to_string(), "register pex 00:1,7e:5");
        assert_eq!(events[2].to_string(), "register dialer");
        assert!("receive pex nothex 00".parse::<TraceEvent>().is_err());
        assert!("hop pex".parse::<TraceEvent>().is_err());
        let dir = std::env::temp_dir().join(format!("trace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let trace = CallTrace::new();
        for e in &events {
            trace.record(e.clone());
        }
        let path = dir.join("t.trace");
        trace.write(&path).unwrap();
        assert_eq!(CallTrace::read(&path).unwrap(), events);
        std::fs::write(&path, "register pex 00:1\n").unwrap();
        assert!(CallTrace::read(&path).is_err(), "no header");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn traced_records_then_forwards() {
        let trace = CallTrace::new();
        let inner = Arc::new(RecordingReactor::new(vec![ChannelDescriptor::new(
            ChannelId(0x0a),
            NonZeroU32::MIN,
        )]));
        let r = Traced::new("rec", inner.clone(), &trace);
        r.channels();
        r.on_start();
        let peer: Arc<dyn Peer> = Arc::new(FakePeer::new(id(2), vec![ChannelId(0x0a)]));
        r.init_peer(&peer);
        r.add_peer(&peer);
        r.receive(Envelope::new(
            peer.clone(),
            ChannelId(0x0a),
            Bytes::from_static(b"x"),
        ))
        .unwrap();
        r.remove_peer(&peer, &StopReason::Graceful);
        r.on_stop();
        let text: Vec<String> = trace.events().iter().map(ToString::to_string).collect();
        let p = id(2);
        assert_eq!(
            text,
            [
                "register rec 0a:1".to_owned(),
                "start rec".to_owned(),
                format!("init rec {p}"),
                format!("add rec {p}"),
                format!("receive rec {p} 0a"),
                format!("remove rec {p}"),
                "stop rec".to_owned(),
            ]
        );
        assert_eq!(
            inner.calls().len(),
            7,
            "every call reached the inner reactor"
        );
    }
}
