//! Retry schedules: phoenix.js's reconnect and rejoin tables, plus jitter.
//!
//! phoenix.js reconnects every client on the same schedule, so after a deploy every client of a server comes back in
//! the same few milliseconds (a reconnect storm). We keep the schedule and spread each delay by ±[`JITTER`].

/// Socket reconnect delays in ms for tries 1, 2, …; 5000 after the table (phoenix.js `reconnectAfterMs`).
pub const RECONNECT_MS: [u64; 9] = [10, 50, 100, 150, 200, 250, 500, 1000, 2000];
/// Reconnect delay after the table.
pub const RECONNECT_MAX_MS: u64 = 5000;
/// Channel rejoin delays in ms for tries 1, 2, 3; 10 000 after (phoenix.js `rejoinAfterMs`).
pub const REJOIN_MS: [u64; 3] = [1000, 2000, 5000];
/// Rejoin delay after the table.
pub const REJOIN_MAX_MS: u64 = 10_000;
/// Each delay is spread uniformly over ±20 % of its scheduled value.
pub const JITTER: f64 = 0.2;

/// A retry schedule: the delay for a 1-based try number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// phoenix.js `reconnectAfterMs`.
    Reconnect,
    /// phoenix.js `rejoinAfterMs`.
    Rejoin,
    /// The same delay every time (tests, custom clients).
    Fixed(u64),
}

impl Schedule {
    /// The scheduled delay for try `tries` (1-based; 0 is treated as 1), before jitter.
    pub fn base_ms(self, tries: u32) -> u64 {
        let index = tries.max(1) as usize - 1;
        match self {
            Self::Reconnect => RECONNECT_MS.get(index).copied().unwrap_or(RECONNECT_MAX_MS),
            Self::Rejoin => REJOIN_MS.get(index).copied().unwrap_or(REJOIN_MAX_MS),
            Self::Fixed(ms) => ms,
        }
    }

    /// The delay with jitter; `unit` is a random number in `[0, 1)`.
    pub fn delay_ms(self, tries: u32, unit: f64) -> u64 {
        let base = self.base_ms(tries) as f64;
        let spread = base * JITTER * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        (base + spread).round().max(0.0) as u64
    }
}

/// A phoenix.js `Timer`: counts tries, reset on success.
#[derive(Debug, Clone)]
pub struct RetryTimer {
    schedule: Schedule,
    tries: u32,
    due_at: Option<u64>,
}

impl RetryTimer {
    /// A timer on `schedule` with no try yet.
    pub fn new(schedule: Schedule) -> Self {
        Self { schedule, tries: 0, due_at: None }
    }

    /// Schedules the next try (replacing a pending one) at `now` + the next delay; returns the due time.
    pub fn schedule(&mut self, now: u64, unit: f64) -> u64 {
        let due = now + self.schedule.delay_ms(self.tries + 1, unit);
        self.due_at = Some(due);
        due
    }

    /// Clears the pending try and the try count.
    pub fn reset(&mut self) {
        self.tries = 0;
        self.due_at = None;
    }

    /// If the pending try is due at `now`, counts it and returns true.
    pub fn fire(&mut self, now: u64) -> bool {
        match self.due_at {
            Some(due) if due <= now => {
                self.due_at = None;
                self.tries += 1;
                true
            }
            _ => false,
        }
    }

    /// When the pending try is due.
    pub fn due_at(&self) -> Option<u64> {
        self.due_at
    }

    /// Tries fired since the last reset.
    pub fn tries(&self) -> u32 {
        self.tries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_schedule_matches_phoenix_js() {
        let delays: Vec<u64> = (1..=11).map(|t| Schedule::Reconnect.base_ms(t)).collect();
        assert_eq!(delays, vec![10, 50, 100, 150, 200, 250, 500, 1000, 2000, 5000, 5000]);
    }

    #[test]
    fn rejoin_schedule_matches_phoenix_js() {
        let delays: Vec<u64> = (1..=5).map(|t| Schedule::Rejoin.base_ms(t)).collect();
        assert_eq!(delays, vec![1000, 2000, 5000, 10_000, 10_000]);
    }

    #[test]
    fn jitter_stays_within_twenty_percent_and_spreads() {
        assert_eq!(Schedule::Reconnect.delay_ms(10, 0.0), 4000);
        assert_eq!(Schedule::Reconnect.delay_ms(10, 0.5), 5000);
        assert_eq!(Schedule::Reconnect.delay_ms(10, 0.999_999), 6000);
        let spread: std::collections::HashSet<u64> =
            (0..100).map(|i| Schedule::Rejoin.delay_ms(1, f64::from(i) / 100.0)).collect();
        assert!(spread.len() > 50, "different clients get different delays");
        assert!(spread.iter().all(|d| (800..=1200).contains(d)));
    }

    #[test]
    fn timer_counts_tries_and_resets() {
        let mut timer = RetryTimer::new(Schedule::Reconnect);
        assert_eq!(timer.schedule(0, 0.5), 10);
        assert!(!timer.fire(9));
        assert!(timer.fire(10));
        assert_eq!(timer.schedule(10, 0.5), 60, "second try uses the second delay");
        assert!(timer.fire(60));
        assert_eq!(timer.tries(), 2);
        timer.reset();
        assert_eq!((timer.tries(), timer.due_at()), (0, None));
        assert_eq!(timer.schedule(100, 0.5), 110, "back to the first delay after a reset");
        timer.schedule(100, 0.5);
        assert_eq!(timer.due_at(), Some(110), "rescheduling replaces the pending try");
    }
}
