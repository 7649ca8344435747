//! [`RecentMessages`]: the newest messages of active rooms, in memory (used by [`super::LocalCache`]).
//!
//! Every join asks for a room's latest messages (and a reconnect for the few after its cursor). With SQLite each of
//! those is a round trip to the database thread; profiling a join storm showed the thread hand-offs (futex wake and
//! wait) as the largest single cost. These windows answer them once a room has been read, and are kept current from
//! the commit path: the store runs the after-commit hook in id order per room, so appending there keeps each window
//! ordered and gapless.
//!
//! Filling races with appends: a room is marked `Filling` before its database read, an append committed meanwhile
//! marks the fill stale, and a stale fill is not installed (the next read simply fills again).

use std::{
    collections::{HashMap, VecDeque},
    sync::{Mutex, MutexGuard},
};

use protocol::chat::Message;

/// How many rooms are kept at most; past that an arbitrary room is dropped (it refills on its next join).
const MAX_ROOMS: usize = 4096;

enum Entry {
    /// A database read is under way; `stale` once an append committed during it.
    Filling { stale: bool },
    /// The newest messages of the room.
    Ready(Window),
}

struct Window {
    /// Oldest first, at most `capacity`.
    messages: VecDeque<Message>,
    /// True when `messages` is the room's entire history.
    whole: bool,
}

/// Per-room windows of the newest `capacity` messages.
pub struct RecentMessages {
    capacity: usize,
    rooms: Mutex<HashMap<String, Entry>>,
}

impl RecentMessages {
    /// Windows of up to `capacity` messages (the join history size).
    pub fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), rooms: Mutex::new(HashMap::new()) }
    }

    /// How many messages a fill should read.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn rooms(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.rooms.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The newest `limit` messages, if the window holds them.
    pub fn latest(&self, room: &str, limit: usize) -> Option<Vec<Message>> {
        match self.rooms().get(room) {
            Some(Entry::Ready(window)) if limit <= window.messages.len() || window.whole => {
                let skip = window.messages.len().saturating_sub(limit);
                Some(window.messages.iter().skip(skip).cloned().collect())
            }
            _ => None,
        }
    }

    /// The messages after `after_id`, if the window reaches back far enough to tell.
    pub fn after(&self, room: &str, after_id: u64, limit: usize) -> Option<Vec<Message>> {
        let rooms = self.rooms();
        let Some(Entry::Ready(window)) = rooms.get(room) else { return None };
        let first = window.messages.front().map(|m| m.id);
        let covered = window.whole || first.is_some_and(|first| after_id + 1 >= first);
        covered.then(|| window.messages.iter().filter(|m| m.id > after_id).take(limit).cloned().collect())
    }

    /// Marks `room` as being read from the database; false when another fill is already under way (then only that
    /// one installs its result).
    pub fn begin_fill(&self, room: &str) -> bool {
        let mut rooms = self.rooms();
        if rooms.len() >= MAX_ROOMS && !rooms.contains_key(room) {
            let evict = rooms.keys().next().cloned();
            if let Some(evict) = evict {
                rooms.remove(&evict);
            }
        }
        if matches!(rooms.get(room), Some(Entry::Filling { .. })) {
            return false;
        }
        rooms.insert(room.to_owned(), Entry::Filling { stale: false });
        true
    }

    /// Ends a fill begun with [`begin_fill`](Self::begin_fill): installs the read window unless the read failed or an
    /// append made it stale.
    pub fn finish_fill(&self, room: &str, read: Option<&[Message]>) {
        let mut rooms = self.rooms();
        match (read, rooms.get(room)) {
            (Some(messages), Some(Entry::Filling { stale: false })) => {
                let whole = messages.len() < self.capacity;
                let window = Window { messages: messages.iter().cloned().collect(), whole };
                rooms.insert(room.to_owned(), Entry::Ready(window));
            }
            (_, Some(Entry::Filling { .. })) => {
                rooms.remove(room);
            }
            _ => {}
        }
    }

    /// A message of `room` was committed (called from the after-commit hook, in id order).
    pub fn committed(&self, room: &str, message: &Message) {
        match self.rooms().get_mut(room) {
            Some(Entry::Ready(window)) => {
                if window.messages.back().is_some_and(|last| last.id >= message.id) {
                    return; // Already read from the database by the fill that raced this commit.
                }
                window.messages.push_back(message.clone());
                if window.messages.len() > self.capacity {
                    window.messages.pop_front();
                    window.whole = false;
                }
            }
            Some(Entry::Filling { stale }) => *stale = true,
            None => {}
        }
    }

    /// Whether a fill of `room` is under way and already stale (for tests).
    #[cfg(test)]
    pub fn is_stale_fill(&self, room: &str) -> bool {
        matches!(self.rooms().get(room), Some(Entry::Filling { stale: true }))
    }
}
