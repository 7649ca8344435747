//! Per-connection rate limits, owned by the connection and lent to its channels while they handle a message.
//!
//! `message:new` is limited to a fixed number per sliding window (default 20 per 10 s): a strict window, not a
//! token bucket, so no 10-second span ever holds more than the limit. The timestamps are allocated on the first
//! message, so idle connections pay nothing.

use std::{
    collections::VecDeque,
    time::{Duration, Instant},
};

/// A sliding-window limit: at most `max` events in any `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Events allowed per window.
    pub max: usize,
    /// The window length.
    pub window: Duration,
}

/// The limits of one connection.
#[derive(Debug)]
pub(crate) struct SocketLimits {
    messages: RateLimit,
    recent: VecDeque<Instant>,
}

impl SocketLimits {
    /// Limits for a new connection.
    pub(crate) fn new(messages: RateLimit) -> Self {
        Self { messages, recent: VecDeque::new() }
    }

    /// Records a `message:new` at `now` if allowed; false when the client is over its limit (nothing recorded).
    pub(crate) fn allow_message(&mut self, now: Instant) -> bool {
        while let Some(oldest) = self.recent.front() {
            if now.duration_since(*oldest) >= self.messages.window {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        if self.recent.len() >= self.messages.max {
            return false;
        }
        self.recent.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_sliding_window() {
        let mut limits = SocketLimits::new(RateLimit { max: 3, window: Duration::from_secs(10) });
        let start = Instant::now();
        for i in 0..3 {
            assert!(limits.allow_message(start + Duration::from_secs(i)));
        }
        assert!(!limits.allow_message(start + Duration::from_secs(5)), "4th within the window is refused");
        assert!(!limits.allow_message(start + Duration::from_millis(9_999)));
        assert!(limits.allow_message(start + Duration::from_secs(10)), "the first one left the window");
        assert!(!limits.allow_message(start + Duration::from_millis(10_500)));
        assert!(limits.allow_message(start + Duration::from_secs(11)));
    }
}
