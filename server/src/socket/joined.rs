//! The topics a connection has joined: a small vector searched linearly rather than a hash map.
//!
//! A connection joins one or two topics (the room, maybe a second tab's room) and at most 100, and the lookup is per
//! queued broadcast; a vector of one entry costs 56 bytes where an empty-then-grown `HashMap` cost about 250 (heaptrack,
//! BENCHMARKS.md issue 15). Comparing a topic is a pointer check first (what this connection's own channels publish
//! carries the `Arc<str>` it joined with), then the string.

use std::sync::Arc;

use super::JoinedChannel;

/// The joined channels of one connection, by topic.
#[derive(Default)]
pub(super) struct JoinedChannels(Vec<(Arc<str>, JoinedChannel)>);

impl JoinedChannels {
    fn position(&self, topic: &Arc<str>) -> Option<usize> {
        self.0.iter().position(|(joined, _)| Arc::ptr_eq(joined, topic) || **joined == **topic)
    }

    pub(super) fn get(&self, topic: &Arc<str>) -> Option<&JoinedChannel> {
        self.position(topic).map(|index| &self.0[index].1)
    }

    pub(super) fn get_mut(&mut self, topic: &Arc<str>) -> Option<&mut JoinedChannel> {
        self.position(topic).map(|index| &mut self.0[index].1)
    }

    /// Adds or replaces the channel of `topic`.
    pub(super) fn insert(&mut self, topic: Arc<str>, channel: JoinedChannel) {
        match self.position(&topic) {
            Some(index) => self.0[index].1 = channel,
            None => self.0.push((topic, channel)),
        }
    }

    pub(super) fn remove(&mut self, topic: &Arc<str>) -> Option<JoinedChannel> {
        let index = self.position(topic)?;
        let (_, channel) = self.0.swap_remove(index);
        if self.0.is_empty() {
            self.0 = Vec::new();
        }
        Some(channel)
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Takes every channel out.
    pub(super) fn drain(&mut self) -> impl Iterator<Item = (Arc<str>, JoinedChannel)> {
        std::mem::take(&mut self.0).into_iter()
    }
}
