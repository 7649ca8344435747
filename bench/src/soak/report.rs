//! The soak's report: the figures, the checks with their verdicts, and a table that prints itself.

use std::{collections::BTreeMap, fmt};

use serde::Serialize;

use super::{ledger::Counts, server::LogScan, verify::Findings};
use crate::{latency::Latency, or_na};

/// Server memory after every client left may exceed the baseline by this much.
pub const RSS_TOLERANCE: f64 = 0.10;
/// A live delivery slower than this means someone stalled (a slow consumer must never hold others up).
pub const STALL_MS: f64 = 10_000.0;

/// One check and its verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
}

/// What a soak did and found.
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    /// Minutes configured.
    pub minutes: f64,
    /// Seconds it took, end checks included.
    pub seconds: f64,
    pub seed: u64,
    /// The run's tag (in room names, client ids and guest names).
    pub run: String,
    /// The server's address, data directory and log.
    pub addr: String,
    pub data_dir: String,
    pub log: String,
    /// Rooms, residents (members who stay) and the largest body length.
    pub rooms: usize,
    pub residents: usize,
    /// `kill -9`s, and the seconds from each restart to a healthy `/healthz`.
    pub kills: usize,
    pub restart_s: Vec<f64>,
    /// Event counters.
    pub counts: Counts,
    /// The comparison with what was stored.
    pub findings: Findings,
    /// Contract violations by kind, with examples.
    pub violations: BTreeMap<String, u64>,
    pub violation_samples: Vec<String>,
    /// Documented answers per probe.
    pub probes: BTreeMap<String, u64>,
    /// Seconds from a slow consumer's last read to its cut-off: median and worst.
    pub slow_cut_off_s: Option<(f64, f64)>,
    /// Live delivery latency (send to arrival) of every `message:new` broadcast.
    pub live_deliveries: usize,
    pub latency: Latency,
    /// Server RSS: the final process's baseline and end (every client gone both times), and the highest reading of
    /// any process during the run, KiB.
    pub rss_baseline_kib: Option<u64>,
    pub rss_end_kib: Option<u64>,
    pub rss_peak_kib: Option<u64>,
    /// The graceful stop at the end: exit code and seconds (`None`: it had to be killed).
    pub stop: Option<(Option<i32>, f64)>,
    /// What the server log says.
    pub log_scan: LogScan,
    pub checks: Vec<Check>,
}

impl SoakReport {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|check| check.passed)
    }

    /// The end RSS over the baseline, as a fraction (0.05 = 5 % more).
    pub fn rss_growth(&self) -> Option<f64> {
        let (baseline, end) = (self.rss_baseline_kib?, self.rss_end_kib?);
        (baseline > 0).then(|| end as f64 / baseline as f64 - 1.0)
    }

    /// Works out the verdicts from the figures.
    pub fn judge(&mut self) {
        let f = &self.findings;
        let c = &self.counts;
        let violations: u64 = self.violations.values().sum();
        let growth = self.rss_growth();
        let cut_off = c.slow_closed_1011 + c.slow_dropped;
        let mut checks = vec![
            Check {
                name: "every acknowledged message stored exactly once",
                passed: f.stored_exactly_once() && f.acked > 0,
                detail: format!(
                    "{} acked, {} stored; {} duplicate, {} missing, {} mismatched, {} refused yet stored, {} foreign, {} id holes",
                    f.acked, f.stored, f.duplicates, f.missing, f.mismatched, f.refused_stored, f.foreign, f.holes
                ),
            },
            Check {
                name: "delivered to every member that stayed (and gapless to those that left)",
                passed: f.delivered_to_members() && f.stayed > 0,
                detail: format!(
                    "{} memberships ({} stayed) owed {} deliveries; {} undelivered, {} unlike the stored body",
                    f.memberships, f.stayed, f.owed, f.undelivered, f.wrong_deliveries
                ),
            },
            Check {
                name: "no panic in the server log",
                passed: self.log_scan.panics.is_empty(),
                detail: format!(
                    "{} panics, {} ERROR lines, {} WARN lines",
                    self.log_scan.panics.len(),
                    self.log_scan.errors,
                    self.log_scan.warnings
                ),
            },
            Check {
                name: "server memory after all clients left within 10 % of its baseline",
                passed: growth.is_some_and(|g| g <= RSS_TOLERANCE),
                detail: format!(
                    "baseline {}, end {} ({})",
                    or_na(self.rss_baseline_kib, kib),
                    or_na(self.rss_end_kib, kib),
                    or_na(growth, |g| format!("{:+.1} %", g * 100.0))
                ),
            },
            Check {
                name: "the protocol held (documented answers, order, close codes)",
                passed: violations == 0,
                detail: format!("{violations} violations"),
            },
            Check {
                name: "slow consumers cut off, nobody stalled",
                passed: cut_off > 0 && self.latency.max_ms <= STALL_MS,
                detail: format!(
                    "{} episodes: {} closed with 1011, {} dropped, {} interrupted; live delivery max {:.0} ms",
                    c.slow_episodes, c.slow_closed_1011, c.slow_dropped, c.slow_interrupted, self.latency.max_ms
                ),
            },
        ];
        checks.push(Check {
            name: "restarted after every kill, stopped cleanly at the end",
            passed: self.restart_s.len() == self.kills && self.stop.is_some_and(|(code, _)| code == Some(0)),
            detail: format!(
                "{} kills, {} restarts, stop: {}",
                self.kills,
                self.restart_s.len(),
                or_na(self.stop, |(code, s)| format!("exit {} in {s:.1} s", or_na(code, |c| c.to_string())))
            ),
        });
        self.checks = checks;
    }
}

fn kib(value: u64) -> String {
    format!("{:.1} MiB", value as f64 / 1024.0)
}

impl fmt::Display for SoakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        let d = &self.findings;
        writeln!(
            f,
            "soak ({} min, seed {}, run {}, server {}, {:.0} s in all)",
            self.minutes, self.seed, self.run, self.addr, self.seconds
        )?;
        let restarts: Vec<String> = self.restart_s.iter().map(|s| format!("{s:.1}")).collect();
        let rows: Vec<(&str, String)> = vec![
            ("rooms / residents", format!("{} / {}", self.rooms, self.residents)),
            ("kill -9 / restart s", format!("{} / [{}]", self.kills, restarts.join(", "))),
            ("messages sent / again, same id", format!("{} / {}", c.sent, c.resent)),
            ("acked / stored", format!("{} / {}", d.acked, d.stored)),
            ("duplicates / missing", format!("{} / {}", d.duplicates, d.missing)),
            ("mismatched / foreign / holes", format!("{} / {} / {}", d.mismatched, d.foreign, d.holes)),
            ("refused, stored anyway", d.refused_stored.to_string()),
            ("unanswered: stored / not", format!("{} / {}", d.unanswered_stored, d.unanswered_lost)),
            ("memberships (stayed)", format!("{} ({})", d.memberships, d.stayed)),
            ("deliveries owed / missed", format!("{} / {}", d.owed, d.undelivered)),
            ("live deliveries", self.live_deliveries.to_string()),
            (
                "live delivery p50 / p99 / max",
                format!("{:.1} / {:.1} / {:.1} ms", self.latency.p50_ms, self.latency.p99_ms, self.latency.max_ms),
            ),
            ("connects / failed", format!("{} / {}", c.connects, c.connect_failures)),
            ("reconnects", c.reconnects.to_string()),
            ("drops: abrupt / closed", format!("{} / {}", c.drops_abrupt, c.drops_closed)),
            ("joins / leaves / visitors", format!("{} / {} / {}", c.joins, c.leaves, c.visitors)),
            ("rejoins recovered / not", format!("{} / {}", c.recovered, c.not_recovered)),
            ("gap pages read", c.gap_pages.to_string()),
            ("typing pushes", c.typing.to_string()),
            ("rate limited / unavailable", format!("{} / {}", c.member_rate_limited, c.unavailable)),
            ("slow consumers: 1011 / dropped", format!("{} / {}", c.slow_closed_1011, c.slow_dropped)),
            ("slow consumers interrupted", format!("{} of {}", c.slow_interrupted, c.slow_episodes)),
            (
                "slow consumer cut off after",
                or_na(self.slow_cut_off_s, |(median, max)| format!("{median:.1} s (max {max:.1} s)")),
            ),
            ("probes answered / interrupted", format!("{} / {}", c.probes_answered, c.probes_interrupted)),
            ("logins: wrong / throttled", format!("{} / {}", c.logins_wrong, c.logins_throttled)),
            (
                "RSS baseline / end / peak",
                format!(
                    "{} / {} / {}",
                    or_na(self.rss_baseline_kib, kib),
                    or_na(self.rss_end_kib, kib),
                    or_na(self.rss_peak_kib, kib)
                ),
            ),
            (
                "server log",
                format!(
                    "{} panics, {} ERROR, {} WARN",
                    self.log_scan.panics.len(),
                    self.log_scan.errors,
                    self.log_scan.warnings
                ),
            ),
        ];
        for (name, value) in rows {
            writeln!(f, "  {name:<32} {value}")?;
        }
        writeln!(f, "  checks")?;
        for check in &self.checks {
            writeln!(f, "    [{}] {}: {}", if check.passed { "pass" } else { "FAIL" }, check.name, check.detail)?;
        }
        for (probe, count) in &self.probes {
            writeln!(f, "  probe {probe}: {count}")?;
        }
        for sample in self.violation_samples.iter().chain(&self.findings.samples).chain(&self.log_scan.panics).take(40)
        {
            writeln!(f, "  ! {sample}")?;
        }
        for line in &self.log_scan.error_samples {
            writeln!(f, "  log ERROR {line}")?;
        }
        write!(f, "  log: {}", self.log)
    }
}
