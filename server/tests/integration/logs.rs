//! `--log-format json` on the real binary: every stderr line is a JSON object, HTTP requests and sockets get their
//! access lines, and no line holds a secret (a real account token in the query, in the `authToken` subprotocol and
//! in long poll's header, the long-poll session token, a cookie, the secret key base from `--secret-key-base-file`,
//! an HTTP API key made with `server api-key create`).

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use base64::Engine;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::{connect_async, tungstenite::client::IntoClientRequest};

use crate::support::{Client, WAIT, http::request_to, tempdir::TempDir};

/// A cookie value the server must never print (it is no session of this server, which does not matter: it is sent).
const COOKIE_VALUE: &str = "cookie-value-4c6f67732d7465737421";

/// The server binary with the secret in a file, and its stderr lines as they come.
struct Binary {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Binary {
    fn start(data: &Path, secret_file: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
            .args(["--log-format", "json", "--addr", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .arg("--secret-key-base-file")
            .arg(secret_file)
            .env("RUST_LOG", "info")
            .env_remove("SECRET_KEY_BASE")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the server binary");
        let stderr = child.stderr.take().expect("piped stderr");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines, seen: Vec::new() }
    }

    /// Reads lines until one satisfies `wanted`; returns it parsed.
    fn wait_for(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no such log line within 60 s; the log so far:\n{}", self.seen.join("\n")));
            self.seen.push(line.clone());
            let parsed: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            if wanted(&parsed) {
                return parsed;
            }
        }
    }

    /// SIGTERM, then every remaining line until the process exits.
    fn stop(mut self) -> Vec<String> {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "the server exited with {exit}; its log:\n{}", self.seen.join("\n"));
        self.seen.extend(self.lines.iter());
        self.seen
    }
}

/// `server token`, run with `--log-format json` and the secret file: its stdout is the token alone.
fn token_for(user: &str, data: &Path, secret_file: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["token", "--log-format", "json", "--user", user, "--data-dir"])
        .arg(data)
        .arg("--secret-key-base-file")
        .arg(secret_file)
        .env_remove("SECRET_KEY_BASE")
        .output()
        .unwrap();
    assert!(output.status.success(), "server token failed: {}", String::from_utf8_lossy(&output.stderr));
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("SFMyNTY."), "a Phoenix.Token: {token}");
    token
}

/// `server api-key create`, run against the test's data directory: its stdout is the key alone.
fn api_key_for(name: &str, data: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["api-key", "create", "--log-format", "json", "--name", name, "--data-dir"])
        .arg(data)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(output.status.success(), "server api-key failed: {}", String::from_utf8_lossy(&output.stderr));
    let key = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(key.starts_with("pk_"), "an API key: {key}");
    key
}

fn access_lines<'a>(lines: &'a [Value], message: &str) -> Vec<&'a Value> {
    lines.iter().filter(|line| line["target"] == "access" && line["message"] == message).collect()
}

#[tokio::test]
async fn json_logs_parse_carry_access_lines_and_no_secret() {
    let data = TempDir::new();
    let secret_dir = TempDir::new();
    let secret = format!("logs-test-secret-{}", "k".repeat(64));
    let secret_file = secret_dir.path().join("secret_key_base");
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    let token = token_for("ada", data.path(), &secret_file);
    let api_key = api_key_for("backend", data.path());
    let mut server = Binary::start(data.path(), &secret_file);
    let listening = server.wait_for(|line| line["message"] == "listening");
    let addr: std::net::SocketAddr = listening["addr"].as_str().unwrap().parse().unwrap();
    let node = listening["node"].as_str().unwrap().to_owned();

    // A socket with the token in the query and a cookie; the token signed with the file's secret is accepted, so
    // the socket is Ada's.
    let mut request = format!("ws://{addr}/socket/websocket?vsn=2.0.0&token={token}").into_client_request().unwrap();
    request.headers_mut().insert("cookie", format!("parley_session={COOKIE_VALUE}").parse().unwrap());
    let (ws, _) = connect_async(request).await.unwrap();
    let mut by_query = Client::from_stream(ws);
    by_query.join("room:logs", json!({})).await;
    let state = by_query.assert_push("room:logs", "presence_state").await;
    assert!(state.payload.get("ada").is_some(), "the token named ada: {:?}", state.payload);

    // A socket with the token in phoenix.js's authToken subprotocol.
    let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&token);
    let mut request = format!("ws://{addr}/socket/websocket?vsn=2.0.0").into_client_request().unwrap();
    let protocols = format!("phoenix, base64url.bearer.phx.{encoded}");
    request.headers_mut().insert("sec-websocket-protocol", protocols.parse().unwrap());
    let (ws, _) = connect_async(request).await.unwrap();
    let mut by_subprotocol = Client::from_stream(ws);
    by_subprotocol.join("room:logs", json!({})).await;

    // A long-poll session opened with the token in its header, then a POST on the session's own token.
    let head =
        format!("GET /socket/longpoll?vsn=2.0.0 HTTP/1.1\r\nx-phoenix-authtoken: {token}\r\nCookie: a={COOKIE_VALUE}");
    let opened = request_to(addr, &head, "").await;
    let opened: Value = serde_json::from_slice(&opened.body).unwrap();
    assert_eq!(opened["status"], 410, "{opened}");
    let session = opened["token"].as_str().unwrap().to_owned();
    let head = format!(
        "POST /socket/longpoll?vsn=2.0.0&token={session} HTTP/1.1\r\nContent-Type: application/x-ndjson\r\nCookie: \
         a={COOKIE_VALUE}"
    );
    let posted = request_to(addr, &head, r#"[null,"1","phoenix","heartbeat",{}]"#).await;
    let posted: Value = serde_json::from_slice(&posted.body).unwrap();
    assert_eq!(posted["status"], 200, "{posted}");

    // Plain requests with a cookie and a token-looking param.
    let page =
        request_to(addr, &format!("GET /logs?token={token} HTTP/1.1\r\nCookie: parley_session={COOKIE_VALUE}"), "")
            .await;
    assert_eq!(page.status, 200);
    assert_eq!(request_to(addr, "GET /healthz HTTP/1.1", "").await.status, 200);
    // The HTTP API with the key made above.
    let head = format!(
        "POST /api/rooms/logs/messages HTTP/1.1\r\nAuthorization: Bearer {api_key}\r\nContent-Type: application/json"
    );
    let posted = request_to(addr, &head, r#"{"user": "bot", "body": "from the backend"}"#).await;
    assert_eq!(posted.status, 201, "{}", String::from_utf8_lossy(&posted.body));
    assert_eq!(request_to(addr, "GET /readyz HTTP/1.1", "").await.status, 200);
    server.wait_for(|line| line["message"] == "request" && line["path"] == "/readyz");

    let log = server.stop();
    // Both sockets were closed by the drain with 1012.
    for client in [&mut by_query, &mut by_subprotocol] {
        let closed = tokio::time::timeout(WAIT, async {
            while let Some(Ok(message)) = client.ws.next().await {
                if let tokio_tungstenite::tungstenite::Message::Close(frame) = message {
                    return frame.map(|frame| u16::from(frame.code));
                }
            }
            None
        })
        .await
        .unwrap();
        assert_eq!(closed, Some(1012));
    }

    let mut lines = Vec::new();
    for line in &log {
        let parsed: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("a line that is not JSON ({e}): {line}"));
        for field in ["timestamp", "level", "target", "message"] {
            assert!(parsed.get(field).is_some(), "no {field} in {line}");
        }
        for secret_text in
            [token.as_str(), encoded.as_str(), session.as_str(), COOKIE_VALUE, secret.as_str(), api_key.as_str()]
        {
            assert!(!line.contains(secret_text), "a secret in the log: {line}");
        }
        // Nor any sizeable piece of one (a token's signature alone, say).
        let signature = token.rsplit('.').next().unwrap();
        assert!(!line.contains(signature), "a token's signature in the log: {line}");
        assert!(!line.contains(&api_key[3..20]), "a piece of the API key in the log: {line}");
        lines.push(parsed);
    }

    let requests = access_lines(&lines, "request");
    for request in &requests {
        assert_eq!(request["node"], json!(node), "{request}");
        assert!(request["method"].is_string() && request["path"].is_string(), "{request}");
        assert!(request["status"].is_u64() && request["duration_ms"].is_number(), "{request}");
        assert_eq!(request["client"], "127.0.0.1", "{request}");
    }
    let find = |method: &str, path: &str| {
        requests
            .iter()
            .find(|line| line["method"] == method && line["path"] == path)
            .unwrap_or_else(|| panic!("no access line for {method} {path} in {requests:#?}"))
    };
    let upgrades: Vec<_> = requests.iter().filter(|line| line["path"] == "/socket/websocket").collect();
    assert_eq!(upgrades.len(), 2, "{upgrades:#?}");
    assert!(upgrades.iter().all(|line| line["status"] == 101), "{upgrades:#?}");
    assert_eq!(upgrades[0]["params"], "vsn,token", "the names of the params, never their values");
    assert_eq!(find("GET", "/socket/longpoll")["params"], "vsn");
    assert_eq!(find("POST", "/socket/longpoll")["params"], "vsn,token");
    assert_eq!(find("GET", "/logs")["status"], 200);
    assert_eq!(find("GET", "/healthz")["status"], 200);
    assert_eq!(find("POST", "/api/rooms/logs/messages")["status"], 201);

    let connects = access_lines(&lines, "socket connect");
    let transports: Vec<_> = connects.iter().map(|line| line["transport"].as_str().unwrap()).collect();
    assert_eq!(transports, ["websocket", "websocket", "longpoll"], "{connects:#?}");
    assert!(connects.iter().all(|line| line["user"] == "ada" && line["node"] == json!(node)), "{connects:#?}");
    let closes = access_lines(&lines, "socket close");
    assert_eq!(closes.len(), 3, "every socket's close is logged: {closes:#?}");
    for close in &closes {
        assert_eq!(close["closed_by"], "server", "{close}");
        assert_eq!(close["code"], 1012, "the drain's close code: {close}");
        assert!(close["duration_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{close}");
        assert_eq!(close["node"], json!(node), "{close}");
    }
}
