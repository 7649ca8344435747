//! Per-connection rate limits, owned by the connection and lent to its channels while they handle a message.
//!
//! `message:new` and `history:before` are each limited to a fixed number per sliding window (defaults 20 and 10 per
//! 10 s): a strict window, not a token bucket, so no 10-second span ever holds more than the limit. The timestamps are
//! allocated on the first request, so idle connections pay nothing.
//!
//! [`Limit`] names every rate limit the server enforces (these two, the login form's, the HTTP API's per-key limit and
//! the per-address socket caps), so whoever refuses something can say which limit did for `metrics` to count.

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

/// A rate limit that refused something: the `limit` label of `parley_rate_limited_total` (the label texts are
/// `metrics`'s; this module sits below it, so the limits say which limit refused without knowing how it is counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    /// `message:new` per connection (`--max-messages-per-10s`).
    Messages,
    /// `history:before` per connection.
    History,
    /// Failed logins per account and address, and per address (the login form).
    Logins,
    /// Registrations per address.
    Registrations,
    /// Posts per key of the HTTP API (`--api-max-messages-per-10s`).
    Api,
    /// Open sockets per client address (`--max-sockets-per-ip`).
    SocketsPerIp,
    /// Socket connects per client address and 10 s (`--max-connects-per-ip-per-10s`).
    ConnectsPerIp,
}

impl Limit {
    /// Every limit, in declaration order (`limit as usize` indexes it).
    pub(crate) const ALL: [Self; 7] = [
        Self::Messages,
        Self::History,
        Self::Logins,
        Self::Registrations,
        Self::Api,
        Self::SocketsPerIp,
        Self::ConnectsPerIp,
    ];
}

/// One sliding window's recent events (also the HTTP API's per-key message limit).
#[derive(Debug, Default)]
pub(crate) struct Window(VecDeque<Instant>);

impl Window {
    /// Records an event at `now` if `limit` allows it; false (nothing recorded) when over.
    pub(crate) fn allow(&mut self, limit: RateLimit, now: Instant) -> bool {
        while self.0.front().is_some_and(|oldest| now.duration_since(*oldest) >= limit.window) {
            self.0.pop_front();
        }
        if self.0.len() >= limit.max {
            return false;
        }
        self.0.push_back(now);
        true
    }

    /// How long from `now` until the oldest recorded event leaves the window (zero when nothing is recorded): when a
    /// refused event would be allowed.
    pub(crate) fn retry_after(&self, limit: RateLimit, now: Instant) -> Duration {
        self.0.front().map_or(Duration::ZERO, |oldest| (*oldest + limit.window).saturating_duration_since(now))
    }
}

/// The limits of one connection.
#[derive(Debug)]
pub(crate) struct SocketLimits {
    messages: RateLimit,
    history: RateLimit,
    recent_messages: Window,
    recent_history: Window,
    /// The limit that refused a request since the connection last asked ([`Self::take_refused`]), for its meters.
    refused: Option<Limit>,
}

impl SocketLimits {
    /// Limits for a new connection.
    pub(crate) fn new(messages: RateLimit, history: RateLimit) -> Self {
        Self { messages, history, recent_messages: Window::default(), recent_history: Window::default(), refused: None }
    }

    /// Records a `message:new` at `now` if allowed; false when the client is over its limit (nothing recorded).
    pub(crate) fn allow_message(&mut self, now: Instant) -> bool {
        let allowed = self.recent_messages.allow(self.messages, now);
        if !allowed {
            self.refused = Some(Limit::Messages);
        }
        allowed
    }

    /// Records a `history:before` at `now` if allowed; false when the client is over its limit.
    pub(crate) fn allow_history(&mut self, now: Instant) -> bool {
        let allowed = self.recent_history.allow(self.history, now);
        if !allowed {
            self.refused = Some(Limit::History);
        }
        allowed
    }

    /// Which limit refused a request since the last call, if one did (the connection counts it after each frame).
    pub(crate) fn take_refused(&mut self) -> Option<Limit> {
        self.refused.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_limit_indexes_its_place_in_all() {
        assert!(Limit::ALL.iter().enumerate().all(|(i, limit)| *limit as usize == i));
    }

    #[test]
    fn strict_sliding_window() {
        let three = RateLimit { max: 3, window: Duration::from_secs(10) };
        let mut limits = SocketLimits::new(three, RateLimit { max: 1, window: Duration::from_secs(10) });
        let start = Instant::now();
        for i in 0..3 {
            assert!(limits.allow_message(start + Duration::from_secs(i)));
        }
        assert_eq!(limits.take_refused(), None);
        assert!(!limits.allow_message(start + Duration::from_secs(5)), "4th within the window is refused");
        assert_eq!(limits.take_refused(), Some(Limit::Messages), "a refusal is reported once");
        assert_eq!(limits.take_refused(), None);
        assert!(!limits.allow_message(start + Duration::from_millis(9_999)));
        assert!(limits.allow_message(start + Duration::from_secs(10)), "the first one left the window");
        assert!(!limits.allow_message(start + Duration::from_millis(10_500)));
        assert_eq!(
            limits.recent_messages.retry_after(three, start + Duration::from_millis(10_500)),
            Duration::from_millis(500),
            "the oldest (at 1 s) leaves at 11 s"
        );
        assert!(limits.allow_message(start + Duration::from_secs(11)));
        assert!(limits.allow_history(start), "history has its own window");
        assert!(!limits.allow_history(start + Duration::from_secs(1)));
    }
}
