//! The server processes a scenario measures, read from `/proc`: resident memory, CPU time and open sockets. A cluster
//! is several processes, so every figure is summed over all the pids given (`--server-pid`, repeated or comma
//! separated); a figure is `None` when no pid was given or one of them could not be read.

use serde::Serialize;

/// The measured server processes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Servers {
    /// Their pids.
    pub pids: Vec<u32>,
}

impl Servers {
    /// The processes `pids` (none: nothing is measured).
    pub fn new(pids: Vec<u32>) -> Self {
        Self { pids }
    }

    /// Resident set size of all of them together, KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        self.sum(rss_kib)
    }

    /// CPU time all of them have used so far, seconds: `(user, system)`.
    pub fn cpu_seconds(&self) -> Option<(f64, f64)> {
        self.sum(|pid| cpu_seconds(pid).map(|(user, system)| Cpu(user, system))).map(|Cpu(user, system)| (user, system))
    }

    /// Open sockets of each process, in pid order: how the kernel spread the connections over `SO_REUSEPORT`
    /// listeners (each also holds a few sockets of its own: the listener, database and Redis connections).
    pub fn sockets(&self) -> Option<Vec<usize>> {
        if self.pids.is_empty() {
            return None;
        }
        self.pids.iter().map(|&pid| sockets(pid)).collect()
    }

    fn sum<T: std::iter::Sum<T>>(&self, read: impl Fn(u32) -> Option<T>) -> Option<T> {
        if self.pids.is_empty() {
            return None;
        }
        self.pids.iter().map(|&pid| read(pid)).sum()
    }
}

/// Memory gained between two RSS readings per item (connection, member), KiB; `None` if either reading or the items
/// are missing.
pub fn kib_per(before: Option<u64>, after: Option<u64>, items: usize) -> Option<f64> {
    let (before, after) = (before?, after?);
    (items > 0).then(|| after.saturating_sub(before) as f64 / items as f64)
}

/// CPU used between two [`Servers::cpu_seconds`] readings, `(user, system)` seconds.
pub fn cpu_between(before: Option<(f64, f64)>, after: Option<(f64, f64)>) -> Option<(f64, f64)> {
    let ((user0, system0), (user1, system1)) = (before?, after?);
    Some((user1 - user0, system1 - system0))
}

/// `(user, system)` seconds, summable.
struct Cpu(f64, f64);

impl std::iter::Sum for Cpu {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Cpu(0.0, 0.0), |a, b| Cpu(a.0 + b.0, a.1 + b.1))
    }
}

/// Resident set size of a process, KiB, from `/proc/<pid>/status`.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| line.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// CPU time a process has used so far, in seconds: `(user, system)`, from `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: u32) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th fields overall, in clock
    // ticks (100 per second on Linux).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |index: usize| fields.get(index)?.parse::<f64>().ok().map(|t| t / 100.0);
    Some((ticks(11)?, ticks(12)?))
}

/// Open sockets of a process: the entries of `/proc/<pid>/fd` that link to `socket:[…]`.
pub fn sockets(pid: u32) -> Option<usize> {
    let entries = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(
        entries
            .filter_map(Result::ok)
            .filter(|entry| {
                std::fs::read_link(entry.path()).is_ok_and(|target| target.to_string_lossy().starts_with("socket:"))
            })
            .count(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_figures_and_sums_them() {
        let me = std::process::id();
        assert!(cpu_seconds(me).is_some_and(|(user, system)| user >= 0.0 && system >= 0.0));
        let one = rss_kib(me).unwrap_or(0);
        assert!(one > 0);
        let twice = Servers::new(vec![me, me]);
        assert!(twice.rss_kib().is_some_and(|sum| sum >= one));
        assert!(twice.cpu_seconds().is_some());
        assert_eq!(twice.sockets().map(|counts| counts.len()), Some(2));
        let none = Servers::default();
        assert_eq!((none.rss_kib(), none.cpu_seconds(), none.sockets()), (None, None, None));
        assert_eq!(Servers::new(vec![me, u32::MAX]).rss_kib(), None);
        assert_eq!(kib_per(Some(100), Some(300), 4), Some(50.0));
        assert_eq!((kib_per(None, Some(300), 4), kib_per(Some(100), Some(300), 0)), (None, None));
        assert_eq!(cpu_between(Some((1.0, 2.0)), Some((1.5, 3.0))), Some((0.5, 1.0)));
        assert_eq!(cpu_between(Some((1.0, 2.0)), None), None);
    }
}
