//! Latency percentiles from microsecond samples: [`percentile_ms`] and the [`Latency`] summary that the chat, ingest
//! and broadcast reports share, with the rows their tables print.

use std::fmt;

use serde::Serialize;

/// The `p` quantile (0–1) of sorted microsecond samples, in milliseconds; 0 without samples.
pub fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = (p * (sorted_us.len() - 1) as f64).round() as usize;
    f64::from(sorted_us[rank.min(sorted_us.len() - 1)]) / 1000.0
}

/// p50, p95, p99 and worst of a set of latencies, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Worst.
    pub max_ms: f64,
}

impl Latency {
    /// The summary of sorted microsecond samples (all zero without samples).
    pub fn from_sorted_us(sorted_us: &[u32]) -> Self {
        Self {
            p50_ms: percentile_ms(sorted_us, 0.50),
            p95_ms: percentile_ms(sorted_us, 0.95),
            p99_ms: percentile_ms(sorted_us, 0.99),
            max_ms: percentile_ms(sorted_us, 1.0),
        }
    }

    /// The table rows with every label prefixed, e.g. `ack p50`.
    pub fn prefixed<'a>(&'a self, prefix: &'a str) -> Rows<'a> {
        Rows { latency: self, prefix }
    }
}

/// The rows `  p50            1.23 ms` (one per figure, no trailing newline).
impl fmt::Display for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.prefixed("").fmt(f)
    }
}

/// [`Latency`] rows with a label prefix, from [`Latency::prefixed`].
pub struct Rows<'a> {
    latency: &'a Latency,
    prefix: &'a str,
}

/// Width of the label column of the report tables.
const LABEL_WIDTH: usize = 15;

impl fmt::Display for Rows<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Latency { p50_ms, p95_ms, p99_ms, max_ms } = *self.latency;
        for (n, (name, value)) in
            [("p50", p50_ms), ("p95", p95_ms), ("p99", p99_ms), ("max", max_ms)].into_iter().enumerate()
        {
            let pad = LABEL_WIDTH.saturating_sub(self.prefix.len() + name.len());
            let newline = if n == 0 { "" } else { "\n" };
            write!(f, "{newline}  {}{name}{:pad$}{value:.2} ms", self.prefix, "")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_rows() {
        let samples = [1_000, 2_000, 3_000, 4_000, 5_000];
        assert_eq!(percentile_ms(&samples, 0.0), 1.0);
        assert_eq!(percentile_ms(&samples, 0.5), 3.0);
        assert_eq!(percentile_ms(&samples, 1.0), 5.0);
        assert_eq!(percentile_ms(&[], 0.5), 0.0);
        let latency = Latency::from_sorted_us(&samples);
        assert_eq!(latency, Latency { p50_ms: 3.0, p95_ms: 5.0, p99_ms: 5.0, max_ms: 5.0 });
        assert_eq!(
            latency.to_string(),
            "  p50            3.00 ms\n  p95            5.00 ms\n  p99            5.00 ms\n  max            5.00 ms"
        );
        assert!(latency.prefixed("ack ").to_string().starts_with("  ack p50        3.00 ms\n  ack p95        5.00 ms"));
    }
}
