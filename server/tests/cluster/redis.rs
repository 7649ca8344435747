//! A throwaway `redis-server` for tests: Debian's binary on a free loopback port, nothing saved, its own temp
//! directory. Started by the test itself (Debian's packaged service, if it runs, is never used), killed on drop.
//! redis-server runs as root without complaint.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::support::tempdir::TempDir;

pub struct Redis {
    pub port: u16,
    dir: TempDir,
    child: Option<Child>,
}

impl Redis {
    pub fn start() -> Self {
        let mut redis = Self { port: free_port(), dir: TempDir::new(), child: None };
        redis.spawn();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: every connection drops and every key is gone (nothing is saved).
    pub fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a fresh, empty server on the same port (killing the running one first, if any).
    pub fn restart(&mut self) {
        self.kill_9();
        self.spawn();
    }

    /// The last lines of the server's log file.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Every key with its value (`redis-cli`), for the report of a failed test; empty when the server is down.
    pub fn dump(&self) -> String {
        if self.child.is_none() {
            return String::new();
        }
        let port = self.port.to_string();
        let cli = |args: &[&str]| {
            Command::new("redis-cli")
                .args(["-p", &port])
                .args(args)
                .output()
                .map(|out| String::from_utf8_lossy(&out.stdout).trim_end().to_owned())
                .unwrap_or_default()
        };
        let mut dump = String::new();
        for key in cli(&["--scan"]).lines() {
            let value = match cli(&["TYPE", key]).as_str() {
                "hash" => cli(&["HGETALL", key]),
                "set" => cli(&["SMEMBERS", key]),
                "zset" => cli(&["ZRANGE", key, "0", "-1", "WITHSCORES"]),
                "list" => cli(&["LRANGE", key, "0", "-1"]),
                _ => cli(&["GET", key]),
            };
            dump.push_str(&format!("{key}:\n  {}\n", value.replace('\n', "\n  ")));
        }
        dump
    }

    fn spawn(&mut self) {
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(self.dir.path().join("redis.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is not installed (apt-get install redis-server); scripts/test.sh installs it");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ping(self.port) {
            let exited = child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("redis-server on port {} ({exited:?}) does not answer PING:\n{}", self.port, self.log_tail(20));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// True when a server on `port` answers `PING` with `+PONG`.
fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut answer = [0u8; 7];
    stream.read_exact(&mut answer).is_ok() && &answer == b"+PONG\r\n"
}

/// A free port below the kernel's ephemeral range, so that while the server is down no outgoing connection (of a
/// node reconnecting to it, say) can be handed the same port and connect to itself.
fn free_port() -> u16 {
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    for _ in 0..1000 {
        let port = rand::random_range(10_000..ephemeral_start.max(10_001));
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port below {ephemeral_start}");
}
