//! Worker processes, for scenarios that need more sockets than one process may open (the open-file limit, 20,000 on
//! the benchmark machine). The parent re-executes the bench binary as `bench worker --job <JSON>` ([`Job`]); each
//! worker opens its share of the connections and talks to the parent in JSON lines: commands on its stdin, reports on
//! its stdout (its stderr is the parent's). A worker ends when its stdin closes, so none outlives its parent, and the
//! parent kills any worker it drops.

use std::{
    io::{BufRead, BufReader, Write},
    ops::Range,
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tokio::sync::mpsc;

use crate::{broadcast, idle};

/// How a scenario spreads its connections over processes.
#[derive(Debug, Clone)]
pub struct Workers {
    /// The bench binary to re-execute (`std::env::current_exe()`; in tests `CARGO_BIN_EXE_bench`).
    pub exe: PathBuf,
    /// Worker processes; 0 keeps every connection in this process.
    pub count: usize,
}

/// What a worker process does, given on its command line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Job {
    /// Hold a share of the idle connections ([`idle::Share`]).
    Idle(idle::Share),
    /// Hold a share of a broadcast room's members ([`broadcast::Share`]).
    Broadcast(broadcast::Share),
}

/// Runs `job` (the body of `bench worker`); returns when the parent closes the worker's stdin.
pub async fn run_job(job: &str) -> Result<(), serde_json::Error> {
    match serde_json::from_str(job)? {
        Job::Idle(share) => idle::serve_share(share).await,
        Job::Broadcast(share) => broadcast::serve_share(share).await,
    }
    Ok(())
}

/// Part `part` of `parts` of `0..total`, contiguous, sizes differing by at most one.
pub fn share(total: usize, parts: usize, part: usize) -> Range<usize> {
    let parts = parts.max(1);
    total * part / parts..total * (part + 1) / parts
}

/// Failure talking to a worker.
pub type WorkerError = std::io::Error;

fn broken(what: impl std::fmt::Display) -> WorkerError {
    std::io::Error::other(what.to_string())
}

/// Reads `input` line by line on a thread of its own (pipes are few and their traffic small, so plain threads and
/// std pipes do, without more tokio features), handing each line to the async side.
fn forward_lines(input: impl std::io::Read + Send + 'static) -> mpsc::UnboundedReceiver<String> {
    let (sender, receiver) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(input).lines() {
            let Ok(line) = line else { return };
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    receiver
}

/// A running worker, seen from the parent: its stdin (commands) and its process, killed when dropped.
pub struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
}

/// A worker's reports, line by line (may be moved to a task of its own).
pub struct Reports {
    lines: mpsc::UnboundedReceiver<String>,
}

impl Worker {
    /// Starts `exe worker --job <job>`.
    pub fn spawn(exe: &Path, job: &Job) -> Result<(Self, Reports), WorkerError> {
        let job = serde_json::to_string(job).map_err(broken)?;
        let mut child = Command::new(exe)
            .args(["worker", "--job", &job])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or_else(|| broken("worker without stdout"))?;
        Ok((Self { child, stdin }, Reports { lines: forward_lines(stdout) }))
    }

    /// Sends one command line (a few bytes into a pipe the worker keeps reading: no need to leave the task).
    pub async fn send(&mut self, command: &impl Serialize) -> Result<(), WorkerError> {
        let stdin = self.stdin.as_mut().ok_or_else(|| broken("worker stdin closed"))?;
        let mut line = serde_json::to_vec(command).map_err(broken)?;
        line.push(b'\n');
        stdin.write_all(&line)?;
        stdin.flush()
    }

    /// Closes its stdin (the signal to close its connections and exit) and waits for it, killing it after `grace`.
    pub async fn finish(mut self, grace: Duration) {
        drop(self.stdin.take());
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Reports {
    /// The next report; an error when the worker exited or wrote something else.
    pub async fn next<T: DeserializeOwned>(&mut self) -> Result<T, WorkerError> {
        let line = self.lines.recv().await.ok_or_else(|| broken("worker exited"))?;
        serde_json::from_str(&line).map_err(|error| broken(format!("worker report {line:?}: {error}")))
    }
}

/// The worker's side: the parent's commands, from stdin.
pub struct FromParent {
    lines: mpsc::UnboundedReceiver<String>,
}

impl FromParent {
    /// This process's stdin.
    pub fn stdin() -> Self {
        Self { lines: forward_lines(std::io::stdin()) }
    }

    /// The next command; `None` when stdin closed (or sent something unreadable, which ends the worker too).
    pub async fn next<T: DeserializeOwned>(&mut self) -> Option<T> {
        serde_json::from_str(&self.lines.recv().await?).ok()
    }
}

/// The worker's side: writes one report line to stdout, flushed at once (reports are few and small, so any task may
/// write one synchronously).
pub fn report(report: &impl Serialize) {
    if let Ok(line) = serde_json::to_string(report) {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_the_range_once() {
        let parts: Vec<_> = (0..6).map(|p| share(100_000, 6, p)).collect();
        assert_eq!(parts[0], 0..16_666);
        assert_eq!(parts[5].end, 100_000);
        assert!(parts.windows(2).all(|w| w[0].end == w[1].start));
        assert!(parts.iter().all(|r| r.len() == 16_666 || r.len() == 16_667));
        assert_eq!(share(3, 6, 0), 0..0);
        assert_eq!(share(10, 0, 0), 0..10);
    }
}
