//! The soak's timeline, drawn once from the seed: when the server is killed, when the clients all leave so the
//! memory baseline can be read, and when the run ends.
//!
//! ```text
//! 0 ──── kills at random points ──── chaos ends ── warm-up on the final process ── baseline ── measured ── end
//!        [8 %, 50 %]                 55 %                                          70 %                    100 %
//! ```
//!
//! Every kill falls in the chaos window, so the process that serves the last 45 % is the one whose memory is
//! compared: its baseline is read once it has carried the full workload (every kind of client, every code path) for
//! a while and every client has left, and its end figure after the same workload again and every client has left
//! again. Growth between those two idle points is what a leak looks like; memory the allocator keeps after the first
//! load is in both.

use std::time::Duration;

use rand::{Rng, SeedableRng, rngs::StdRng};

/// Where the kills may fall, as fractions of the run.
const KILL_WINDOW: (f64, f64) = (0.08, 0.50);
/// When the chaos window ends (no kill after it).
const CHAOS_END: f64 = 0.55;
/// When every client leaves and the baseline is read.
const BASELINE_AT: f64 = 0.70;
/// Kills are at least this far apart, so each restarted process carries traffic before the next kill.
const MIN_KILL_GAP: Duration = Duration::from_secs(4);

/// The drawn timeline, as offsets from the start of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// When each `kill -9` happens, in order.
    pub kills: Vec<Duration>,
    /// How long the server stays down after each kill before it is restarted.
    pub restart_delays: Vec<Duration>,
    /// When the chaos window closes.
    pub chaos_end: Duration,
    /// When every client leaves for the baseline.
    pub baseline_at: Duration,
    /// When the workload stops.
    pub end: Duration,
}

/// The default number of kills for a run: one per four minutes, at least one.
pub fn default_kills(duration: Duration) -> usize {
    ((duration.as_secs_f64() / 240.0).round() as usize).max(1)
}

impl Plan {
    /// Draws `kills` kill points (fewer if the window cannot hold them [`MIN_KILL_GAP`] apart) for a run of
    /// `duration`.
    pub fn draw(duration: Duration, kills: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x6b69_6c6c);
        let (from, to) = (duration.mul_f64(KILL_WINDOW.0), duration.mul_f64(KILL_WINDOW.1));
        let room = to.saturating_sub(from);
        let fits = ((room.as_secs_f64() / MIN_KILL_GAP.as_secs_f64()) as usize).max(1);
        let kills = kills.min(fits);
        // Spread the kills over equal slots (each at least the gap long), each at a random point of its slot, so two
        // never come closer than the gap and none clusters at the start.
        let slot = if kills == 0 { Duration::ZERO } else { room / kills as u32 };
        let mut points = Vec::with_capacity(kills);
        let mut earliest = from;
        for n in 0..kills {
            let slot_start = (from + slot * n as u32).max(earliest);
            let slot_end = (from + slot * (n as u32 + 1)).max(slot_start);
            let span = slot_end.saturating_sub(slot_start).as_secs_f64();
            let at = slot_start + Duration::from_secs_f64(rng.random::<f64>() * span);
            points.push(at);
            earliest = at + MIN_KILL_GAP;
        }
        let restart_delays = (0..kills).map(|_| Duration::from_millis(rng.random_range(0..2000))).collect();
        Self {
            kills: points,
            restart_delays,
            chaos_end: duration.mul_f64(CHAOS_END),
            baseline_at: duration.mul_f64(BASELINE_AT),
            end: duration,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kills_fall_in_the_window_in_order_and_apart() {
        for seed in 0..50 {
            let duration = Duration::from_secs(1800);
            let plan = Plan::draw(duration, default_kills(duration), seed);
            assert_eq!(plan.kills.len(), 8);
            assert_eq!(plan.restart_delays.len(), 8);
            assert!(plan.kills.windows(2).all(|w| w[1] >= w[0] + MIN_KILL_GAP), "{plan:?}");
            assert!(plan.kills.iter().all(|&k| k >= duration.mul_f64(0.08) && k <= duration.mul_f64(0.5)));
            assert!(plan.kills.last().is_some_and(|&k| k < plan.chaos_end) && plan.chaos_end < plan.baseline_at);
        }
        assert_eq!(Plan::draw(Duration::from_secs(60), 1, 1), Plan::draw(Duration::from_secs(60), 1, 1));
    }

    #[test]
    fn a_short_run_still_gets_its_kill_but_no_more_than_fit() {
        let plan = Plan::draw(Duration::from_secs(25), 1, 3);
        assert_eq!(plan.kills.len(), 1);
        assert!(plan.kills[0] >= Duration::from_secs(2) && plan.kills[0] <= Duration::from_millis(12_500));
        let crowded = Plan::draw(Duration::from_secs(25), 50, 3);
        assert!(crowded.kills.len() <= 3, "{crowded:?}");
        assert_eq!(default_kills(Duration::from_secs(60)), 1);
        assert_eq!(default_kills(Duration::from_secs(1800)), 8);
    }
}
