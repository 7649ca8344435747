//! Logging setup: `tracing` with an `RUST_LOG`-style filter (default `info`), to stderr (stdout stays clean for
//! commands whose output is data, like `server token`), as text for people or as one JSON object a line for a log
//! pipeline (`--log-format`).
//!
//! What may never be logged: a token (the `token` param, the `authToken` subprotocol, a long-poll session token), a
//! cookie or an `Authorization` header. Request lines (`crate::http`'s access log) carry the path and only the *names*
//! of query params for that reason.

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, the event's fields flattened, `message`.
    Json,
}

/// Installs the global subscriber once; later calls (tests start many servers) are no-ops.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => {
            builder.with_target(false).with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).try_init()
        }
        // Flattened: a pipeline reads `status` rather than `fields.status`. No span list: nothing here uses spans.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_ansi(false)
            .try_init(),
    };
}

/// A duration in milliseconds for a log field, to the microsecond: `0.061`, not `0.061014000000000006` (a pipeline
/// reads the number; the noise digits only make lines longer).
pub(crate) fn millis(duration: std::time::Duration) -> f64 {
    // Exact below 2^53 µs (285 years).
    duration.as_micros() as f64 / 1000.0
}

/// A budget for a log line that clients can trigger at will (a refused connection, an unmatched join): at most
/// `per_minute` lines a minute, and the next line after a quiet spell says how many were left out (`suppressed`),
/// so a flood of bad requests costs a few lines a minute instead of one line each.
pub(crate) struct LogBudget {
    per_minute: u32,
    state: std::sync::Mutex<BudgetState>,
}

struct BudgetState {
    window_start: Option<std::time::Instant>,
    logged: u32,
    suppressed: u64,
}

impl LogBudget {
    /// A budget of `per_minute` lines (for a `static`).
    pub(crate) const fn new(per_minute: u32) -> Self {
        let state = BudgetState { window_start: None, logged: 0, suppressed: 0 };
        Self { per_minute, state: std::sync::Mutex::new(state) }
    }

    /// `Some(lines suppressed since the last one)` when this line may be logged, `None` when it is over budget.
    pub(crate) fn admit(&self) -> Option<u64> {
        self.admit_at(std::time::Instant::now())
    }

    fn admit_at(&self, now: std::time::Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let expired = state.window_start.is_none_or(|start| now.duration_since(start).as_secs() >= 60);
        if expired {
            state.window_start = Some(now);
            state.logged = 0;
        }
        if state.logged >= self.per_minute {
            state.suppressed += 1;
            return None;
        }
        state.logged += 1;
        Some(std::mem::take(&mut state.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::LogBudget;

    #[test]
    fn durations_are_logged_to_the_microsecond() {
        assert_eq!(super::millis(Duration::from_nanos(61_014_000)).to_string(), "61.014");
        assert_eq!(super::millis(Duration::from_nanos(61_014)).to_string(), "0.061");
        assert_eq!(super::millis(Duration::from_secs(2)).to_string(), "2000");
    }

    #[test]
    fn a_flood_is_a_few_lines_and_a_count() {
        let budget = LogBudget::new(3);
        let start = Instant::now();
        let logged: Vec<_> = (0..1000).filter_map(|_| budget.admit_at(start)).collect();
        assert_eq!(logged, vec![0, 0, 0], "three lines in the first minute");
        assert_eq!(
            budget.admit_at(start + Duration::from_secs(60)),
            Some(997),
            "then one saying how many were left out"
        );
        assert_eq!(budget.admit_at(start + Duration::from_secs(61)), Some(0));
    }
}
