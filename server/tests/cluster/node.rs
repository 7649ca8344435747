//! One cluster node: the real `server` binary as a child process with its own data directory, sharing PostgreSQL,
//! Redis and the secret key base with the other nodes.

use std::{
    collections::VecDeque,
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::support::tempdir::TempDir;

/// Shared by every node, so a token signed by one is accepted by all (at least 64 bytes).
pub const SECRET_KEY_BASE: &str = "cluster-tests-secret-key-base-cluster-tests-secret-key-base-0123456789abcdef";

/// How many log lines of each node are kept for the report of a failed test.
const LOG_TAIL: usize = 400;

/// The last lines a node wrote to stderr.
pub type Log = Arc<Mutex<VecDeque<String>>>;

/// What every node of a cluster is started with.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub database_url: String,
    pub redis_url: String,
    /// More flags, such as `--max-messages-per-10s`.
    pub extra_args: Vec<String>,
}

pub struct Node {
    /// `node1`, `node2`, …: for messages.
    pub name: String,
    /// Where it listens (`127.0.0.1:PORT`).
    pub addr: String,
    /// The node id it logged (and `/healthz` reports).
    pub id: String,
    pub log: Log,
    child: Child,
    _data: TempDir,
}

/// The log filter: `RUST_LOG` when set, else info with the server's debug lines. The tests need the info line
/// `listening addr=… node=…`. Set `CLUSTER_LOG=1` to see every node's log as it is written.
fn log_filter() -> String {
    std::env::var("RUST_LOG").unwrap_or_else(|_| "info,server=debug".to_owned())
}

impl Node {
    /// Starts the binary and waits until it listens and `/readyz` answers 200 (its store answers and its Redis bus is
    /// subscribed).
    pub fn start(name: &str, config: &NodeConfig) -> Self {
        let data = TempDir::new();
        let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
            .args(["--addr", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .args(["--database-url", &config.database_url, "--redis-url", &config.redis_url])
            .args(["--secret-key-base", SECRET_KEY_BASE])
            .args(&config.extra_args)
            .env("RUST_LOG", log_filter())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the server binary");
        let stderr = child.stderr.take().expect("piped stderr");
        let log: Log = Arc::default();
        let (listening, listened) = std::sync::mpsc::channel();
        let echo = std::env::var_os("CLUSTER_LOG").is_some();
        // Keeps draining the log so the server never blocks on a full pipe; remembers the tail.
        std::thread::spawn({
            let log = log.clone();
            let name = name.to_owned();
            move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if echo {
                        eprintln!("[{name}] {line}");
                    }
                    if let Some(rest) = line.split("listening addr=").nth(1) {
                        let addr = rest.split_whitespace().next().unwrap_or_default().to_owned();
                        let id = line.split(" node=").nth(1).and_then(|rest| rest.split_whitespace().next());
                        let id = id.unwrap_or_default().trim_matches('"').to_owned();
                        let _ = listening.send((addr, id));
                    }
                    let mut log = log.lock().unwrap();
                    if log.len() == LOG_TAIL {
                        log.pop_front();
                    }
                    log.push_back(line);
                }
            }
        });
        let (addr, id) = match listened.recv_timeout(Duration::from_secs(60)) {
            Ok(found) => found,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                panic!("{name} did not log `listening addr=` ({status:?}); its log:\n{}", tail(&log, 60));
            }
        };
        assert!(!id.is_empty(), "{name} logged no node= on its listening line; its log:\n{}", tail(&log, 20));
        let mut node = Self { name: name.to_owned(), addr, id, log, child, _data: data };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match http_get(&node.addr, "/readyz") {
                Ok((200, _)) => break,
                other if Instant::now() >= deadline => {
                    panic!("{name} never became ready: {other:?}; its log:\n{}", tail(&node.log, 60))
                }
                _ if !node.running() => panic!("{name} exited while starting; its log:\n{}", tail(&node.log, 60)),
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        node
    }

    /// The WebSocket URL for a guest named `user`.
    pub fn url(&self, user: &str) -> String {
        format!("ws://{}/socket/websocket?vsn=2.0.0&user={user}", self.addr)
    }

    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, and reaps the process.
    pub fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM (a graceful stop) without waiting.
    pub fn sigterm(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -TERM {}", self.child.id());
    }

    /// Waits up to `within` for the process to exit; panics (after killing it) if it does not.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if Instant::now() >= deadline {
                self.kill_9();
                panic!("{} did not exit within {within:?}; its log:\n{}", self.name, tail(&self.log, 40));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// The last `lines` lines of a node's log.
pub fn tail(log: &Log, lines: usize) -> String {
    let log = log.lock().unwrap();
    log.iter().skip(log.len().saturating_sub(lines)).cloned().collect::<Vec<_>>().join("\n")
}

/// One HTTP/1.1 GET on a fresh connection (`Connection: close`): the status and the body. Blocking, with a 10 s
/// timeout on every step (a health check of an unreachable database may take a few seconds).
pub fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    let timeout = Duration::from_secs(10);
    let socket_addr = addr.parse().map_err(std::io::Error::other)?;
    let mut stream = TcpStream::connect_timeout(&socket_addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| std::io::Error::other("incomplete response"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line: {head}")))?;
    let chunked = head.lines().any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding: chunked"));
    let body = if chunked { dechunk(body) } else { body.to_owned() };
    Ok((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else { break };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// `GET /healthz`: the status and the body as JSON (`Value::String` when it is not JSON).
pub async fn healthz(addr: &str) -> std::io::Result<(u16, Value)> {
    probe(addr, "/healthz").await
}

/// `GET path` (a probe: `/healthz`, `/readyz`) from async code: the status and the body as JSON.
pub async fn probe(addr: &str, path: &'static str) -> std::io::Result<(u16, Value)> {
    let addr = addr.to_owned();
    let (status, body) = tokio::task::spawn_blocking(move || http_get(&addr, path)).await.expect("no panic")?;
    Ok((status, serde_json::from_str(&body).unwrap_or(Value::String(body))))
}
