//! Login attempt limits, per client address and per account: a strict sliding window of failed attempts.
//!
//! In memory and per node: a brute-force run against one node is capped at `max` guesses per window per address and
//! per account, whichever trips first.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::{Duration, Instant},
};

/// Failed attempts allowed per key in any window.
pub const MAX_FAILURES: usize = 5;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(300);

/// Failed-attempt counters by key (`ip:<addr>` or `user:<name>`).
#[derive(Default)]
pub struct LoginAttempts {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginAttempts {
    /// Whether every key may try now.
    pub fn allowed(&self, keys: &[String], now: Instant) -> bool {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter().all(|key| {
            let Some(times) = failures.get_mut(key) else { return true };
            while times.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
                times.pop_front();
            }
            times.len() < MAX_FAILURES
        })
    }

    /// Records a failed attempt for every key.
    pub fn failed(&self, keys: &[String], now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() > 100_000 {
            // Bound memory under a spray of addresses: forget everything older than the window.
            failures.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
        }
        for key in keys {
            failures.entry(key.clone()).or_default().push_back(now);
        }
    }

    /// Clears an account's failures after a successful login.
    pub fn succeeded(&self, key: &str) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_per_window_then_blocked() {
        let attempts = LoginAttempts::default();
        let keys = vec!["ip:1.2.3.4".to_owned(), "user:ada".to_owned()];
        let start = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert!(attempts.allowed(&keys, start));
            attempts.failed(&keys, start);
        }
        assert!(!attempts.allowed(&keys, start));
        assert!(!attempts.allowed(&["user:ada".to_owned()], start), "per account");
        assert!(attempts.allowed(&["user:bob".to_owned()], start));
        assert!(attempts.allowed(&keys, start + WINDOW), "the window slides");
        attempts.succeeded("user:ada");
        assert!(attempts.allowed(&["user:ada".to_owned()], start));
    }
}
