//! Per-connection rate limits, owned by the connection and lent to its channels while they handle a message.
//!
//! `message:new` and `history:before` are each limited to a fixed number per sliding window (defaults 20 and 10 per
//! 10 s): a strict window, not a token bucket, so no 10-second span ever holds more than the limit. The timestamps are
//! allocated on the first request, so idle connections pay nothing.

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

/// One sliding window's recent events.
#[derive(Debug, Default)]
struct Window(VecDeque<Instant>);

impl Window {
    /// Records an event at `now` if `limit` allows it; false (nothing recorded) when over.
    fn allow(&mut self, limit: RateLimit, now: Instant) -> bool {
        while self.0.front().is_some_and(|oldest| now.duration_since(*oldest) >= limit.window) {
            self.0.pop_front();
        }
        if self.0.len() >= limit.max {
            return false;
        }
        self.0.push_back(now);
        true
    }
}

/// The limits of one connection.
#[derive(Debug)]
pub(crate) struct SocketLimits {
    messages: RateLimit,
    history: RateLimit,
    recent_messages: Window,
    recent_history: Window,
}

impl SocketLimits {
    /// Limits for a new connection.
    pub(crate) fn new(messages: RateLimit, history: RateLimit) -> Self {
        Self { messages, history, recent_messages: Window::default(), recent_history: Window::default() }
    }

    /// Records a `message:new` at `now` if allowed; false when the client is over its limit (nothing recorded).
    pub(crate) fn allow_message(&mut self, now: Instant) -> bool {
        self.recent_messages.allow(self.messages, now)
    }

    /// Records a `history:before` at `now` if allowed; false when the client is over its limit.
    pub(crate) fn allow_history(&mut self, now: Instant) -> bool {
        self.recent_history.allow(self.history, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_sliding_window() {
        let three = RateLimit { max: 3, window: Duration::from_secs(10) };
        let mut limits = SocketLimits::new(three, RateLimit { max: 1, window: Duration::from_secs(10) });
        let start = Instant::now();
        for i in 0..3 {
            assert!(limits.allow_message(start + Duration::from_secs(i)));
        }
        assert!(!limits.allow_message(start + Duration::from_secs(5)), "4th within the window is refused");
        assert!(!limits.allow_message(start + Duration::from_millis(9_999)));
        assert!(limits.allow_message(start + Duration::from_secs(10)), "the first one left the window");
        assert!(!limits.allow_message(start + Duration::from_millis(10_500)));
        assert!(limits.allow_message(start + Duration::from_secs(11)));
        assert!(limits.allow_history(start), "history has its own window");
        assert!(!limits.allow_history(start + Duration::from_secs(1)));
    }
}
