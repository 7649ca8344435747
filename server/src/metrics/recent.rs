//! The short windows the dashboard shows and Prometheus does not keep: the p99 of the last seconds' commits and the
//! rooms with the most messages stored in the last minute, as read by [`super::Meters::pulse`].
//!
//! Written once per group commit (by the store's one writer task) and read once a second, so one std mutex is
//! uncontended in practice; nothing here is touched per delivered frame or per message sent to a socket.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use crate::top::Top;

/// Commits whose latency counts toward the p99: the dashboard's "now".
const COMMIT_WINDOW: Duration = Duration::from_secs(10);
/// Most commit samples kept: at 512 messages a batch that is hundreds of thousands of messages in the window, and a
/// p99 of 4,096 samples is exact enough for a chart.
const COMMIT_SAMPLES: usize = 4096;
/// The busiest-rooms ranking covers this long, in one-second slots.
const ROOM_WINDOW_S: usize = 60;
/// Rooms in the ranking.
const TOP_ROOMS: usize = 10;

/// Cumulative totals and current gauges for the dashboard.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pulse {
    /// Open sockets now, all transports.
    pub(crate) sockets: u64,
    /// Joined channels now.
    pub(crate) joined_channels: u64,
    /// Successful joins since start.
    pub(crate) joins: u64,
    /// Messages stored since start (this node's commits).
    pub(crate) messages: u64,
    /// Frames delivered to sockets since start.
    pub(crate) deliveries: u64,
    /// p99 store commit latency over about the last 10 s (`None`: no commits).
    pub(crate) commit_p99_seconds: Option<f64>,
    /// Up to 10 rooms with the most messages stored in the last 60 s, most first.
    pub(crate) room_messages: Vec<(String, u64)>,
}

/// The windows behind [`Pulse::commit_p99_seconds`] and [`Pulse::room_messages`].
#[derive(Debug)]
pub(super) struct Recent {
    started: Instant,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// (when, seconds) of recent commits, oldest first.
    commits: VecDeque<(Instant, f64)>,
    /// Per room: messages per second slot (`slot = second % 60`) and the second each slot was last written in.
    rooms: HashMap<String, Slots>,
}

#[derive(Debug)]
struct Slots {
    counts: [u64; ROOM_WINDOW_S],
    seconds: [u64; ROOM_WINDOW_S],
}

impl Slots {
    fn add(&mut self, second: u64, n: u64) {
        let slot = (second % ROOM_WINDOW_S as u64) as usize;
        if self.seconds[slot] != second {
            self.seconds[slot] = second;
            self.counts[slot] = 0;
        }
        self.counts[slot] += n;
    }

    /// Messages in the window ending at `second`.
    fn total(&self, second: u64) -> u64 {
        self.counts
            .iter()
            .zip(&self.seconds)
            .filter(|(_, at)| second.saturating_sub(**at) < ROOM_WINDOW_S as u64)
            .map(|(n, _)| n)
            .sum()
    }
}

impl Default for Recent {
    fn default() -> Self {
        Self { started: Instant::now(), state: Mutex::new(State::default()) }
    }
}

impl Recent {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the windows consistent; a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Seconds since start, the slot clock. Starts at 1 so that a fresh slot (second 0) is never current.
    fn second(&self, now: Instant) -> u64 {
        now.duration_since(self.started).as_secs() + 1
    }

    /// One commit of `seconds`, storing messages in `rooms`.
    pub(super) fn committed<'a>(&self, seconds: f64, rooms: impl IntoIterator<Item = (&'a str, u64)>) {
        let now = Instant::now();
        let second = self.second(now);
        let mut state = self.lock();
        if state.commits.len() == COMMIT_SAMPLES {
            state.commits.pop_front();
        }
        state.commits.push_back((now, seconds));
        for (room, n) in rooms {
            match state.rooms.get_mut(room) {
                Some(slots) => slots.add(second, n),
                None => {
                    let mut slots = Slots { counts: [0; ROOM_WINDOW_S], seconds: [0; ROOM_WINDOW_S] };
                    slots.add(second, n);
                    state.rooms.insert(room.to_owned(), slots);
                }
            }
        }
    }

    /// The commit p99 over [`COMMIT_WINDOW`] and the busiest rooms over the last minute; forgets what is older.
    pub(super) fn read(&self) -> (Option<f64>, Vec<(String, u64)>) {
        let now = Instant::now();
        let second = self.second(now);
        let mut state = self.lock();
        while state.commits.front().is_some_and(|(at, _)| now.duration_since(*at) > COMMIT_WINDOW) {
            state.commits.pop_front();
        }
        let mut latencies: Vec<f64> = state.commits.iter().map(|(_, seconds)| *seconds).collect();
        // One pass forgets the quiet rooms and ranks the others; only the winners' names are cloned.
        let mut top = Top::new(TOP_ROOMS);
        state.rooms.retain(|room, slots| {
            let total = slots.total(second);
            if total > 0 {
                top.offer(room.as_str(), total, || room.clone());
            }
            total > 0
        });
        drop(state);
        latencies.sort_unstable_by(f64::total_cmp);
        // Nearest rank: the smallest sample with at least 99 % of the samples at or below it.
        let p99 = (!latencies.is_empty()).then(|| latencies[(latencies.len() * 99).div_ceil(100) - 1]);
        (p99, top.into_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p99_of_a_hundred_commits_is_the_largest_but_one() {
        let recent = Recent::default();
        assert_eq!(recent.read().0, None, "no commits, no p99");
        for ms in 1..=100 {
            recent.committed(f64::from(ms) / 1000.0, []);
        }
        assert_eq!(recent.read().0, Some(0.099));
    }

    #[test]
    fn busiest_rooms_come_first_and_at_most_ten() {
        let recent = Recent::default();
        for (i, room) in ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"].iter().enumerate() {
            recent.committed(0.001, [(*room, i as u64 + 1)]);
        }
        recent.committed(0.001, [("a", 100)]);
        let rooms = recent.read().1;
        assert_eq!(rooms.len(), TOP_ROOMS);
        assert_eq!(rooms[0], ("a".to_owned(), 101));
        assert_eq!(rooms[1], ("l".to_owned(), 12));
        assert!(!rooms.iter().any(|(room, _)| room == "b"), "the quietest rooms are left out");
    }

    #[test]
    fn a_slot_from_a_minute_ago_is_reused_not_added_to() {
        let mut slots = Slots { counts: [0; ROOM_WINDOW_S], seconds: [0; ROOM_WINDOW_S] };
        slots.add(5, 3);
        slots.add(5 + ROOM_WINDOW_S as u64, 2);
        assert_eq!(slots.total(5 + ROOM_WINDOW_S as u64), 2);
        assert_eq!(slots.total(5 + 2 * ROOM_WINDOW_S as u64), 0);
    }
}
