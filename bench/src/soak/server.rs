//! The server under soak as a child process: started on a fixed loopback port with a fixed data directory (so a
//! restart is the same server to its clients), its stdout and stderr appended to one log file across restarts,
//! `kill -9` and restart, a graceful stop, and the scan of that log for panics and errors.

use std::{
    ffi::OsString,
    fs::OpenOptions,
    io::Write,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::{Duration, Instant},
};

use super::http;

/// How long a start may take until `/healthz` answers 200.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a graceful stop (SIGTERM) may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// Environment variables that would configure the server behind the soak's back; the command line decides.
const SERVER_ENV: &[&str] = &[
    "CHAT_ADDR",
    "CHAT_DATA_DIR",
    "DATABASE_URL",
    "REDIS_URL",
    "CHAT_REUSE_PORT",
    "CHAT_MAX_MESSAGES_PER_10S",
    "SECRET_KEY_BASE",
    "CHAT_REQUIRE_ACCOUNTS",
    "CHAT_ALLOWED_ORIGINS",
    "CHAT_BENCH_TOPICS",
];

/// How to run the server.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    /// The `server` binary.
    pub bin: PathBuf,
    /// Where it listens (the same across restarts).
    pub addr: SocketAddr,
    /// Its data directory (the same across restarts).
    pub data_dir: PathBuf,
    /// Where its stdout and stderr go (appended).
    pub log: PathBuf,
    /// `--max-messages-per-10s`, when the soak changes it.
    pub max_messages_per_10s: Option<usize>,
    /// Further flags, passed as given.
    pub extra_args: Vec<String>,
}

/// glibc malloc settings for the server process: two arenas, and blocks of 128 KiB and more from `mmap` (returned
/// on free) with the threshold fixed, so large transient buffers such as history pages do not stay in the heap.
pub const ALLOCATOR_ENV: [(&str, &str); 2] = [("MALLOC_ARENA_MAX", "2"), ("MALLOC_MMAP_THRESHOLD_", "131072")];

/// The server's command line: every flag the soak passes, in one place. Every soak client comes from 127.0.0.1, so
/// the per-address socket cap and connect rate (meant for the open internet) are off; the slow consumer fills its
/// socket by scrolling history ten times a second, so the `history:before` rate is raised (its limit has its own
/// test); the login throttle stays on, and the login loop counts its `too-many-attempts` answers.
pub fn server_args(spec: &ServerSpec) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["--addr".into(), spec.addr.to_string().into(), "--data-dir".into()];
    args.push(spec.data_dir.clone().into_os_string());
    let raised = ["--max-sockets-per-ip", "0", "--max-connects-per-ip-per-10s", "0", "--max-history-per-10s", "1000"];
    args.extend(raised.map(OsString::from));
    if let Some(limit) = spec.max_messages_per_10s {
        args.extend(["--max-messages-per-10s".into(), limit.to_string().into()]);
    }
    args.extend(spec.extra_args.iter().map(OsString::from));
    args
}

/// Whether the server is up and which incarnation it is: a client whose request failed while the epoch moved (or
/// the server was down) was interrupted by a kill, not refused by the server.
#[derive(Debug, Default)]
pub struct ServerWatch {
    epoch: AtomicU64,
    down: AtomicBool,
}

impl ServerWatch {
    /// The current incarnation (bumped at each kill).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Whether something that started at `epoch` may have been cut short by a kill.
    pub fn interrupted_since(&self, epoch: u64) -> bool {
        self.down.load(Ordering::SeqCst) || self.epoch() != epoch
    }

    fn going_down(&self) {
        self.down.store(true, Ordering::SeqCst);
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    fn up(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

/// Why the server could not be run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot start {bin}: {error}")]
    Spawn { bin: String, error: std::io::Error },
    #[error("the server exited while starting ({status}); see {log}")]
    Exited { status: ExitStatus, log: String },
    #[error("the server did not answer /healthz with 200 within {0:?}")]
    Unhealthy(Duration),
    #[error("log file: {0}")]
    Log(std::io::Error),
}

/// The running server.
pub struct ServerProcess {
    spec: ServerSpec,
    child: Child,
    starts: u32,
    /// When the current process answered `/healthz` 200 for the first time.
    pub healthy_at: Instant,
}

impl ServerProcess {
    /// Starts the server and waits until it is healthy.
    pub async fn start(spec: ServerSpec) -> Result<Self, ServerError> {
        let child = spawn(&spec, 1)?;
        let mut server = Self { spec, child, starts: 1, healthy_at: Instant::now() };
        server.wait_healthy().await?;
        Ok(server)
    }

    /// The current process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How many processes were started so far.
    pub fn starts(&self) -> u32 {
        self.starts
    }

    /// `kill -9`, then reap it.
    pub async fn kill_9(&mut self, watch: &ServerWatch) {
        watch.going_down();
        let _ = self.child.kill();
        let _ = self.child.wait();
        note(&self.spec.log, &format!("soak: server pid {} killed with SIGKILL", self.child.id()));
    }

    /// Starts a new process with the same command line and waits until it is healthy.
    pub async fn restart(&mut self, watch: &ServerWatch) -> Result<Duration, ServerError> {
        self.starts += 1;
        let started = Instant::now();
        self.child = spawn(&self.spec, self.starts)?;
        self.wait_healthy().await?;
        watch.up();
        Ok(started.elapsed())
    }

    /// SIGTERM and wait for the exit (SIGKILL after [`STOP_TIMEOUT`]): the exit status and how long it took, or
    /// `None` if it had to be killed.
    pub async fn stop(&mut self, watch: &ServerWatch) -> Option<(ExitStatus, Duration)> {
        watch.going_down();
        let started = Instant::now();
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        while started.elapsed() < STOP_TIMEOUT {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some((status, started.elapsed()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }

    async fn wait_healthy(&mut self) -> Result<(), ServerError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(ServerError::Exited { status, log: self.spec.log.display().to_string() });
            }
            if let Ok(response) = http::get(self.spec.addr, "/healthz").await
                && response.status == 200
            {
                self.healthy_at = Instant::now();
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ServerError::Unhealthy(START_TIMEOUT));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Never leave a server behind, whatever ended the soak.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn spawn(spec: &ServerSpec, start: u32) -> Result<Child, ServerError> {
    let log = OpenOptions::new().create(true).append(true).open(&spec.log).map_err(ServerError::Log)?;
    let stderr = log.try_clone().map_err(ServerError::Log)?;
    note(&spec.log, &format!("soak: server start #{start}: {} {:?}", spec.bin.display(), server_args(spec)));
    let mut command = Command::new(&spec.bin);
    command.args(server_args(spec)).env("RUST_LOG", "info").stdin(Stdio::null()).stdout(log).stderr(stderr);
    // The allocator settings the server is run with (scripts/run.sh, README "Memory"): glibc gives
    // freed large blocks back and keeps two arenas, so the memory check sees leaks rather than the allocator's
    // retention (BENCHMARKS.md, "Soak (issue 16)"). A value already in the environment wins.
    for (name, value) in ALLOCATOR_ENV {
        if std::env::var_os(name).is_none() {
            command.env(name, value);
        }
    }
    for name in SERVER_ENV {
        command.env_remove(name);
    }
    command.spawn().map_err(|error| ServerError::Spawn { bin: spec.bin.display().to_string(), error })
}

/// Appends a line of the soak's own to the server log, so the log reads as one story.
fn note(log: &Path, line: &str) {
    if let Ok(mut file) = OpenOptions::new().create(true).append(true).open(log) {
        let _ = writeln!(file, "---- {line}");
    }
}

/// A free loopback port below the kernel's ephemeral range, so no client's outgoing connection can take it (or
/// connect to itself on it) while the server is down between a kill and its restart.
pub fn pick_port(seed: u64) -> std::io::Result<u16> {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (20_000u16, ephemeral_low.saturating_sub(1).max(20_001));
    let span = u64::from(high - low);
    let start = (seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(std::process::id())) % span;
    (0..span)
        .map(|n| low + ((start + n) % span) as u16)
        .find(|&port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
        .ok_or_else(|| std::io::Error::other("no free port below the ephemeral range"))
}

/// What the server log says.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LogScan {
    /// Lines mentioning `panicked`.
    pub panics: Vec<String>,
    /// How many `ERROR` lines.
    pub errors: usize,
    /// The distinct `ERROR` lines (without their timestamps), at most ten.
    pub error_samples: Vec<String>,
    /// How many `WARN` lines.
    pub warnings: usize,
}

/// Scans the server log for panics (`panicked`, whatever printed it) and `ERROR`/`WARN` lines.
pub fn scan_log(path: &Path) -> std::io::Result<LogScan> {
    let text = std::fs::read_to_string(path)?;
    let mut scan = LogScan::default();
    for line in text.lines() {
        if line.contains("panicked") {
            scan.panics.push(line.to_owned());
        }
        if line.contains(" ERROR ") {
            scan.errors += 1;
            // Drop the timestamp so repeats of one message count as one sample.
            let message = line.split_once(" ERROR ").map_or(line, |(_, rest)| rest).to_owned();
            if scan.error_samples.len() < 10 && !scan.error_samples.contains(&message) {
                scan.error_samples.push(message);
            }
        }
        if line.contains(" WARN ") {
            scan.warnings += 1;
        }
    }
    Ok(scan)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_built_in_one_place() {
        let spec = ServerSpec {
            bin: "target/release/server".into(),
            addr: "127.0.0.1:23456".parse().unwrap(),
            data_dir: "/tmp/soak".into(),
            log: "/tmp/soak/server.log".into(),
            max_messages_per_10s: Some(40),
            extra_args: vec!["--bench-topics".into()],
        };
        let args: Vec<String> = server_args(&spec).into_iter().map(|a| a.into_string().unwrap()).collect();
        assert_eq!(
            args,
            [
                "--addr",
                "127.0.0.1:23456",
                "--data-dir",
                "/tmp/soak",
                "--max-sockets-per-ip",
                "0",
                "--max-connects-per-ip-per-10s",
                "0",
                "--max-history-per-10s",
                "1000",
                "--max-messages-per-10s",
                "40",
                "--bench-topics"
            ]
        );
    }

    #[test]
    fn the_log_scan_finds_panics_and_errors() {
        let path = std::env::temp_dir().join(format!("soak-log-scan-{}", std::process::id()));
        std::fs::write(
            &path,
            "2026-11-30T10:00:00Z  INFO listening addr=127.0.0.1:1\n\
             thread 'tokio-runtime-worker' panicked at server/src/x.rs:1:1:\n\
             2026-11-30T10:00:01Z ERROR cannot create account\n\
             2026-11-30T10:00:02Z ERROR cannot create account\n\
             2026-11-30T10:00:03Z  WARN slow\n",
        )
        .unwrap();
        let scan = scan_log(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(scan.panics.len(), 1);
        assert_eq!((scan.errors, scan.error_samples.len(), scan.warnings), (2, 1, 1));
    }

    #[test]
    fn picks_a_port_outside_the_ephemeral_range() {
        let port = pick_port(1).unwrap();
        assert!((20_000..32_768).contains(&port) || port < 60_000, "{port}");
    }
}
