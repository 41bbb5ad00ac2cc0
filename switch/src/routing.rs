//! The registered reactors and which one owns each channel (Go `reactors`, `reactorsByCh`,
//! `chDescs`), checked for duplicates at registration.

#![cfg_attr(
    not(test),
    expect(
        clippy::indexing_slicing,
        reason = "tables of 256 entries indexed by a u8 channel ID, and counters indexed by their own enum"
    )
)]

use std::sync::Arc;

use mukan_reactor_api::{ChannelDescriptor, ChannelId, Reactor};

use crate::Error;

/// The reactors in registration order, and the owner of each channel.
pub(crate) struct Routes {
    reactors: Vec<(String, Arc<dyn Reactor>)>,
    channels: Vec<ChannelDescriptor>,
    /// Index into `reactors` of each channel's owner.
    owner: Box<[Option<u16>; 256]>,
}

impl Default for Routes {
    fn default() -> Self {
        Self {
            reactors: Vec::new(),
            channels: Vec::new(),
            owner: Box::new([None; 256]),
        }
    }
}

impl Routes {
    /// Registers `reactor` under `name`, asking it for its channels once.
    ///
    /// # Errors
    /// [`Error::DuplicateReactorName`] or [`Error::DuplicateChannel`]; nothing is registered
    /// then.
    pub(crate) fn add(&mut self, name: &str, reactor: Arc<dyn Reactor>) -> Result<(), Error> {
        if self.reactors.iter().any(|(n, _)| n == name) {
            return Err(Error::DuplicateReactorName(name.to_owned()));
        }
        let descriptors = reactor.channels();
        let mut seen = [false; 256];
        for d in &descriptors {
            let slot = usize::from(d.id.0);
            if let Some(first) = self.owner[slot] {
                return Err(Error::DuplicateChannel {
                    channel: d.id,
                    first: self.reactors[usize::from(first)].0.clone(),
                    second: name.to_owned(),
                });
            }
            if seen[slot] {
                return Err(Error::DuplicateChannel {
                    channel: d.id,
                    first: name.to_owned(),
                    second: name.to_owned(),
                });
            }
            seen[slot] = true;
        }
        let index = u16::try_from(self.reactors.len()).unwrap_or(u16::MAX);
        for d in &descriptors {
            self.owner[usize::from(d.id.0)] = Some(index);
        }
        self.channels.extend(descriptors);
        self.reactors.push((name.to_owned(), reactor));
        Ok(())
    }

    /// The reactors, in registration order.
    pub(crate) fn reactors(&self) -> impl Iterator<Item = &Arc<dyn Reactor>> {
        self.reactors.iter().map(|(_, r)| r)
    }

    /// The reactor registered as `name`.
    pub(crate) fn by_name(&self, name: &str) -> Option<&Arc<dyn Reactor>> {
        self.reactors
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, r)| r)
    }

    /// The reactor owning `channel`.
    pub(crate) fn route(&self, channel: ChannelId) -> Option<&Arc<dyn Reactor>> {
        let index = self.owner[usize::from(channel.0)]?;
        self.reactors.get(usize::from(index)).map(|(_, r)| r)
    }

    /// The type of `message` on `channel`, as the reactor owning the channel says
    /// ([`Reactor::message_type`]).
    pub(crate) fn message_type(&self, channel: ChannelId, message: &[u8]) -> Option<&'static str> {
        self.route(channel)?.message_type(channel, message)
    }

    /// Every channel, in registration order.
    pub(crate) fn channels(&self) -> &[ChannelDescriptor] {
        &self.channels
    }

    /// Every channel ID, in registration order (for our `NodeInfo`).
    pub(crate) fn channel_ids(&self) -> Vec<ChannelId> {
        self.channels.iter().map(|d| d.id).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::num::NonZeroU32;

    use mukan_reactor_api::Envelope;

    use super::*;

    struct R(Vec<u8>);
    impl Reactor for R {
        fn channels(&self) -> Vec<ChannelDescriptor> {
            self.0
                .iter()
                .map(|&c| ChannelDescriptor::new(ChannelId(c), NonZeroU32::MIN))
                .collect()
        }
        fn receive(&self, _: Envelope) -> Result<(), mukan_reactor_api::ReactorError> {
            Ok(())
        }
    }

    #[test]
    fn routes_and_refuses_duplicates() {
        let mut routes = Routes::default();
        routes.add("a", Arc::new(R(vec![1, 2]))).unwrap();
        routes.add("b", Arc::new(R(vec![3]))).unwrap();
        assert!(matches!(
            routes.add("a", Arc::new(R(vec![9]))),
            Err(Error::DuplicateReactorName(n)) if n == "a"
        ));
        let err = routes.add("c", Arc::new(R(vec![4, 2]))).unwrap_err();
        assert!(matches!(
            &err,
            Error::DuplicateChannel { channel: ChannelId(2), first, second }
                if first == "a" && second == "c"
        ));
        assert!(err.source().is_none());
        assert!(matches!(
            routes.add("d", Arc::new(R(vec![5, 5]))),
            Err(Error::DuplicateChannel {
                channel: ChannelId(5),
                ..
            })
        ));
        // Failed registrations left nothing behind.
        assert!(routes.route(ChannelId(4)).is_none());
        assert!(routes.route(ChannelId(5)).is_none());
        assert_eq!(
            routes.channel_ids(),
            vec![ChannelId(1), ChannelId(2), ChannelId(3)]
        );
        assert!(routes.route(ChannelId(3)).is_some());
        assert!(routes.by_name("b").is_some());
        assert_eq!(routes.reactors().count(), 2);
        assert_eq!(routes.channels().len(), 3);
    }
}
