//! `/socket/longpoll` (docs/protocol.md §2.1): every status code, the ndjson batch limit, malformed bodies, session
//! expiry, a session dropped mid-poll, and long poll and WebSocket clients in one room.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::{Value, json};
use server::socket::SocketSettings;

use crate::support::{Client, TestServer, WAIT, http};

/// A raw long-poll client: the requests phoenix.js makes, one HTTP connection each.
struct LongPoll<'a> {
    server: &'a TestServer,
    /// The connect params (`vsn=2.0.0&user=…`).
    query: String,
    token: Option<String>,
    /// Frames polled but not yet looked at.
    unread: std::collections::VecDeque<Value>,
}

/// The JSON body of a long-poll answer, after checking the HTTP envelope every answer shares.
fn answer(response: &http::Response) -> Value {
    assert_eq!(response.status, 200, "long poll answers HTTP 200 whatever happened");
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.header("cache-control"), Some("no-store"));
    serde_json::from_slice(&response.body).unwrap()
}

impl<'a> LongPoll<'a> {
    fn new(server: &'a TestServer, query: &str) -> Self {
        Self { server, query: query.to_owned(), token: None, unread: Default::default() }
    }

    fn path(&self) -> String {
        match &self.token {
            Some(token) => format!("/socket/longpoll?{}&token={token}", self.query),
            None => format!("/socket/longpoll?{}", self.query),
        }
    }

    async fn get_with(&self, headers: &str) -> Value {
        let head = format!("GET {} HTTP/1.1\r\nAccept: application/json{headers}", self.path());
        answer(&http::request(self.server, &head, "").await)
    }

    /// One poll; remembers the token it answers with.
    async fn get(&mut self) -> Value {
        let body = self.get_with("").await;
        if let Some(token) = body["token"].as_str() {
            self.token = Some(token.to_owned());
        }
        body
    }

    /// Opens the session: the first poll answers 410 with its token.
    async fn open(server: &'a TestServer, query: &str) -> Self {
        let mut client = Self::new(server, query);
        let body = client.get().await;
        assert_eq!(body["status"], 410, "a poll without a session opens one: {body}");
        assert!(body["token"].as_str().is_some_and(|t| !t.is_empty()));
        assert_eq!(body["messages"], json!([]), "{body}");
        client
    }

    async fn post_raw(&self, content_type: &str, body: &str) -> Value {
        let head = format!("POST {} HTTP/1.1\r\nContent-Type: {content_type}", self.path());
        answer(&http::request(self.server, &head, body).await)
    }

    /// POSTs frames as phoenix.js does: one per line.
    async fn post(&self, frames: &[Value]) -> Value {
        let lines: Vec<String> = frames.iter().map(Value::to_string).collect();
        self.post_raw("application/x-ndjson", &lines.join("\n")).await
    }

    /// Polls until `want` frames arrived (each decoded), failing on anything but 200/204.
    async fn frames(&mut self, want: usize) -> Vec<Value> {
        let mut frames: Vec<Value> = self.unread.drain(..).collect();
        let deadline = tokio::time::Instant::now() + WAIT * 2;
        while frames.len() < want {
            assert!(tokio::time::Instant::now() < deadline, "only {} of {want} frames: {frames:?}", frames.len());
            let body = self.get().await;
            match body["status"].as_u64() {
                Some(200) => frames.extend(
                    body["messages"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|m| serde_json::from_str(m.as_str().unwrap()).unwrap()),
                ),
                Some(204) => {}
                other => panic!("unexpected poll status {other:?}: {body}"),
            }
        }
        frames
    }

    /// Polls until a frame with `event` on `topic` arrives; returns it.
    async fn find(&mut self, topic: &str, event: &str) -> Value {
        loop {
            let mut frames = self.frames(1).await.into_iter();
            if let Some(found) = frames.by_ref().find(|frame| frame[2] == topic && frame[3] == event) {
                self.unread.extend(frames);
                return found;
            }
        }
    }
}

fn join(topic: &str, join_ref: &str, payload: Value) -> Value {
    json!([join_ref, join_ref, topic, "phx_join", payload])
}

fn settings(window_ms: u64) -> SocketSettings {
    SocketSettings { poll_window: Duration::from_millis(window_ms), ..SocketSettings::default() }
}

#[tokio::test]
async fn a_session_opens_joins_chats_and_polls_with_either_token_form() {
    let server = TestServer::start().await;
    let mut ada = LongPoll::open(&server, "vsn=2.0.0&user=Ada").await;
    assert_eq!(ada.post(&[join("room:longpoll-lobby", "1", json!({}))]).await, json!({"status": 200}));
    let reply = ada.find("room:longpoll-lobby", "phx_reply").await;
    assert_eq!(reply[4]["status"], "ok", "{reply}");
    let state = ada.find("room:longpoll-lobby", "presence_state").await;
    assert!(state[4].get("Ada").is_some(), "the connect params name the user: {state}");
    let sent = ada.post(&[json!(["1", "2", "room:longpoll-lobby", "message:new", {"body": "over long poll"}])]).await;
    assert_eq!(sent["status"], 200);
    let mut seen = Vec::new();
    while !(seen.iter().any(|f: &Value| f[3] == "phx_reply") && seen.iter().any(|f: &Value| f[3] == "message:new")) {
        seen.extend(ada.frames(1).await);
    }
    let broadcast = seen.iter().find(|f| f[3] == "message:new").unwrap();
    assert_eq!(broadcast[4]["body"], "over long poll");
    assert_eq!(broadcast[4]["user"], "Ada");
    // phoenix.js 1.9 sends the session token as a header instead of a query param.
    let token = ada.token.take().unwrap();
    let heartbeat = json!([null, "3", "phoenix", "heartbeat", {}]).to_string();
    assert_eq!(ada.post_raw("application/x-ndjson", &heartbeat).await["status"], 410, "no token, no session");
    let head = format!(
        "POST /socket/longpoll?vsn=2.0.0 HTTP/1.1\r\nContent-Type: application/x-ndjson\r\nX-Phoenix-Longpoll-Token: {token}"
    );
    assert_eq!(answer(&http::request(&server, &head, &heartbeat).await)["status"], 200);
    let by_header = ada.get_with(&format!("\r\nX-Phoenix-Longpoll-Token: {token}")).await;
    assert_eq!(by_header["status"], 200, "the header names the session: {by_header}");
    assert_eq!(serde_json::from_str::<Value>(by_header["messages"][0].as_str().unwrap()).unwrap()[1], "3");
}

#[tokio::test]
async fn refused_connects_answer_403_with_the_reason() {
    let server = TestServer::start().await;
    let bad_vsn = LongPoll::new(&server, "vsn=9.0.0").get_with("").await;
    assert_eq!(bad_vsn, json!({"status": 403, "reason": "unsupported protocol version"}));
    let bad_name = LongPoll::new(&server, "vsn=2.0.0&user=%07").get_with("").await;
    assert_eq!(bad_name, json!({"status": 403, "reason": "invalid user name"}));
    let bad_token = LongPoll::new(&server, "vsn=2.0.0&token=forged").get_with("").await;
    assert_eq!(bad_token, json!({"status": 403, "reason": "invalid token"}));
    let bad_auth = LongPoll::new(&server, "vsn=2.0.0").get_with("\r\nX-Phoenix-AuthToken: forged").await;
    assert_eq!(bad_auth, json!({"status": 403, "reason": "invalid token"}));
    let foreign = LongPoll::new(&server, "vsn=2.0.0").get_with("\r\nOrigin: http://evil.example").await;
    assert_eq!(foreign, json!({"status": 403, "reason": "origin not allowed"}));
    // A session token is not a user token: a garbage `token` that is neither is refused as a user token.
    let unknown_session = LongPoll::new(&server, "vsn=2.0.0").post_raw("application/x-ndjson", "[]").await;
    assert_eq!(unknown_session, json!({"status": 410}), "a POST without a session");
}

#[tokio::test]
async fn an_account_token_and_the_session_token_travel_side_by_side() {
    let server = TestServer::start().await;
    let token = crate::auth::signer(&server).0.socket_token("Grace");
    let mut grace = LongPoll::open(&server, &format!("vsn=2.0.0&user=mallory&token={token}")).await;
    grace.post(&[join("room:longpoll-accounts", "1", json!({}))]).await;
    let state = grace.find("room:longpoll-accounts", "presence_state").await;
    assert!(state[4].get("Grace").is_some(), "the account token decides the name, not `user`: {state}");
    // phoenix.js's `authToken` travels as a header over long poll.
    let mut header = LongPoll::new(&server, "vsn=2.0.0");
    let opened = header.get_with(&format!("\r\nX-Phoenix-AuthToken: {token}")).await;
    assert_eq!(opened["status"], 410);
    header.token = opened["token"].as_str().map(str::to_owned);
    header.post(&[join("room:longpoll-accounts", "1", json!({}))]).await;
    let state = header.find("room:longpoll-accounts", "presence_state").await;
    assert!(state[4].get("Grace").is_some(), "{state}");
}

#[tokio::test]
async fn an_empty_window_answers_204_and_output_wakes_a_waiting_poll() {
    let server = TestServer::start_with(settings(300)).await;
    let mut ada = LongPoll::open(&server, "vsn=2.0.0&user=Ada").await;
    let quiet = ada.get().await;
    assert_eq!(quiet, json!({"status": 204, "token": ada.token.clone().unwrap(), "messages": []}));
    ada.post(&[join("test:wake", "1", json!({}))]).await;
    ada.frames(1).await;
    // A WebSocket client's broadcast reaches a poll that is already waiting.
    let mut bob = Client::connect(&server, "vsn=2.0.0&user=Bob").await;
    bob.join("test:wake", json!({})).await;
    let waiting = async {
        for _ in 0..20 {
            let frames = ada.frames(1).await;
            if let Some(frame) = frames.into_iter().find(|f| f[3] == "shout") {
                return Some(frame);
            }
        }
        None
    };
    let shouting = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let pushed = bob.push(None, "test:wake", "broadcast", json!({"hello": "poller"})).await;
        bob.assert_reply(&pushed, "ok").await;
    };
    let (shout, ()) = tokio::join!(waiting, shouting);
    let shout = shout.expect("the broadcast reaches the long-poll client");
    assert_eq!(shout[4], json!({"hello": "poller"}));
}

#[tokio::test]
async fn a_batch_holds_at_most_100_frames() {
    let server = TestServer::start_with(settings(300)).await;
    let mut ada = LongPoll::open(&server, "vsn=2.0.0").await;
    let heartbeat = |n: usize| json!([null, n.to_string(), "phoenix", "heartbeat", {}]);
    let over: Vec<Value> = (0..101).map(heartbeat).collect();
    let refused = ada.post(&over).await;
    assert_eq!(refused, json!({"status": 413, "reason": "too many frames (at most 100 per request)"}));
    assert_eq!(ada.get().await["status"], 204, "nothing of a refused batch was dispatched");
    let full: Vec<Value> = (0..100).map(heartbeat).collect();
    assert_eq!(ada.post(&full).await["status"], 200);
    let replies = ada.frames(100).await;
    let refs: Vec<String> = replies.iter().map(|f| f[1].as_str().unwrap().to_owned()).collect();
    let expected: Vec<String> = (0..100).map(|n| n.to_string()).collect();
    assert_eq!(refs, expected, "every frame answered, in order");
}

#[tokio::test]
async fn malformed_bodies_are_refused_whole_and_the_session_lives_on() {
    let server = TestServer::start_with(settings(300)).await;
    let mut ada = LongPoll::open(&server, "vsn=2.0.0").await;
    let heartbeat = json!([null, "1", "phoenix", "heartbeat", {}]).to_string();
    let cases = [
        (format!("{heartbeat}\n[\"not\", \"a frame\""), 400, "invalid frame"),
        (format!("{heartbeat}\nnot base64!"), 400, "invalid frame"),
        (format!("{heartbeat}\n[\"{}\"]", "x".repeat(64 * 1024)), 413, "frame too large"),
        (format!("{heartbeat}\n{}", "[1]\n".repeat(300_000)), 413, "body too large"),
    ];
    for (body, status, reason) in cases {
        let refused = ada.post_raw("application/x-ndjson", &body).await;
        assert_eq!(refused, json!({"status": status, "reason": reason}));
    }
    assert_eq!(ada.get().await["status"], 204, "no frame of a refused body was dispatched");
    assert_eq!(ada.post_raw("application/x-ndjson", &heartbeat).await["status"], 200);
    assert_eq!(ada.frames(1).await[0][1], "1", "the session still answers");
    // A body of another content type is one text frame (clients before Phoenix 1.7).
    assert_eq!(ada.post_raw("application/json", &heartbeat).await["status"], 200);
    assert_eq!(ada.frames(1).await[0][3], "phx_reply");
    // V2 binary frames travel as base64 lines: a binary heartbeat push (kind 0).
    let mut binary = vec![0u8, 0, 1, 7, 9];
    binary.extend_from_slice(b"1phoenixheartbeat");
    let line = STANDARD.encode(&binary);
    assert_eq!(ada.post_raw("application/x-ndjson", &line).await["status"], 200);
    assert_eq!(ada.frames(1).await[0][1], "1");
}

#[tokio::test]
async fn a_session_nobody_polls_expires_and_its_presence_leaves() {
    // A 400 ms window: the session expires 600 ms after its last poll.
    let server = TestServer::start_with(settings(400)).await;
    let mut bob = Client::connect(&server, "vsn=2.0.0&user=Bob").await;
    bob.join("room:longpoll-expiry", json!({})).await;
    let mut ada = LongPoll::open(&server, "vsn=2.0.0&user=Ada").await;
    ada.post(&[join("room:longpoll-expiry", "1", json!({}))]).await;
    ada.find("room:longpoll-expiry", "presence_state").await;
    while bob.find_event("room:longpoll-expiry", "presence_diff").await.payload["joins"].get("Ada").is_none() {}
    // Ada stops polling. Her presence leaves as a dropped WebSocket's would.
    let stopped = tokio::time::Instant::now();
    while bob.find_event("room:longpoll-expiry", "presence_diff").await.payload["leaves"].get("Ada").is_none() {}
    assert!(stopped.elapsed() >= Duration::from_millis(300), "not before the expiry");
    // What the session buffered before it ended is still delivered; then the poll opens a new session.
    let mut after = ada.get().await;
    if after["status"] == 200 {
        after = ada.get().await;
    }
    assert_eq!(after["status"], 410, "the expired session is gone; a poll opens a new one: {after}");
    assert_eq!(ada.post(&[json!([null, "1", "phoenix", "heartbeat", {}])]).await["status"], 200);
}

#[tokio::test]
async fn a_session_dropped_mid_poll_answers_the_waiting_poll_with_410() {
    // A socket that joined nothing is closed once it shows a sign of life after the join timeout: here the poll
    // itself, which then waits with nothing buffered when its session ends.
    let settings = SocketSettings { join_timeout: Duration::from_millis(200), ..settings(5_000) };
    let server = TestServer::start_with(settings).await;
    let mut ada = LongPoll::open(&server, "vsn=2.0.0").await;
    let token = ada.token.clone().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = tokio::time::Instant::now();
    let waited = ada.get_with("").await;
    assert_eq!(waited, json!({"status": 410}), "the waiting poll learns its session is gone");
    assert!(started.elapsed() < Duration::from_secs(4), "answered when the session ended, not at the window's end");
    let reopened = ada.get().await;
    assert_eq!(reopened["status"], 410, "the old token opens a new session: {reopened}");
    assert_ne!(ada.token.as_deref(), Some(token.as_str()));
}

#[tokio::test]
async fn a_session_whose_buffer_fills_without_polls_ends() {
    // Direct replies (not broadcasts) fill the buffer: the outbox never overflows, the missing polls end it.
    let settings = SocketSettings { outbound_capacity: 16, ..settings(400) };
    let server = TestServer::start_with(settings).await;
    let topic = "room:longpoll-full";
    let mut bob = Client::connect(&server, "vsn=2.0.0&user=Bob").await;
    bob.join(topic, json!({})).await;
    let mut ada = LongPoll::open(&server, "vsn=2.0.0&user=Ada").await;
    ada.post(&[join(topic, "1", json!({}))]).await;
    ada.find(topic, "presence_state").await;
    let heartbeats: Vec<Value> = (0..40).map(|n| json!([null, n.to_string(), "phoenix", "heartbeat", {}])).collect();
    let stuck = ada.post(&heartbeats).await;
    assert_eq!(stuck, json!({"status": 408}), "the buffer is full and nobody polls");
    while bob.find_event(topic, "presence_diff").await.payload["leaves"].get("Ada").is_none() {}
    let leftovers = ada.get_with("").await;
    assert_eq!(leftovers["status"], 200, "what was buffered is still delivered: {leftovers}");
    assert_eq!(leftovers["messages"].as_array().unwrap().len(), 16);
}

#[tokio::test]
async fn a_long_poll_session_that_stops_reading_is_a_slow_consumer() {
    let settings = SocketSettings { outbound_capacity: 16, ..settings(5_000) };
    let server = TestServer::start_with(settings).await;
    let mut ada = LongPoll::open(&server, "vsn=2.0.0").await;
    ada.post(&[join("test:longpoll-flood", "1", json!({}))]).await;
    ada.frames(1).await;
    let flood = json!(["1", "2", "test:longpoll-flood", "flood", {"count": 200, "size": 10}]);
    assert_eq!(ada.post(&[flood]).await["status"], 200);
    // The buffer holds `outbound_capacity` frames; the queue behind it overflows and the session ends.
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let body = ada.get_with("").await;
        statuses.push(body["status"].as_u64().unwrap());
        if body["status"] == 410 {
            break;
        }
    }
    assert_eq!(statuses.first(), Some(&200), "what was buffered is delivered: {statuses:?}");
    assert_eq!(statuses.last(), Some(&410), "then the session is gone: {statuses:?}");
}

#[tokio::test]
async fn long_poll_and_websocket_clients_chat_in_one_room() {
    let server = TestServer::start().await;
    let topic = "room:longpoll-mixed";
    let mut bob = Client::connect(&server, "vsn=2.0.0&user=Bob").await;
    bob.join(topic, json!({})).await;
    let mut ada = LongPoll::open(&server, "vsn=2.0.0&user=Ada").await;
    ada.post(&[join(topic, "1", json!({}))]).await;
    ada.find(topic, "presence_state").await;
    ada.post(&[json!(["1", "2", topic, "message:new", {"body": "from long poll"}])]).await;
    let received = bob.assert_broadcast(topic, "message:new").await;
    assert_eq!((received["user"].as_str(), received["body"].as_str()), (Some("Ada"), Some("from long poll")));
    let pushed = bob.push(None, topic, "message:new", json!({"body": "from a websocket"})).await;
    bob.assert_reply(&pushed, "ok").await;
    let mut bodies = Vec::new();
    while !bodies.contains(&"from a websocket".to_owned()) {
        let frame = ada.find(topic, "message:new").await;
        bodies.push(frame[4]["body"].as_str().unwrap().to_owned());
    }
}

#[tokio::test]
async fn cross_site_pages_get_cors_only_when_allowed() {
    let server = TestServer::start_configured(SocketSettings::default(), |config| {
        config.allowed_origins = vec!["https://app.example.com".into()];
    })
    .await;
    let head = "OPTIONS /socket/longpoll?vsn=2.0.0 HTTP/1.1\r\nOrigin: https://app.example.com\r\n\
                Access-Control-Request-Method: POST";
    let preflight = http::request(&server, head, "").await;
    assert_eq!(preflight.status, 200);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("https://app.example.com"));
    assert!(preflight.header("access-control-allow-headers").unwrap().contains("x-phoenix-longpoll-token"));
    let head = "GET /socket/longpoll?vsn=2.0.0 HTTP/1.1\r\nOrigin: https://app.example.com";
    let opened = http::request(&server, head, "").await;
    assert_eq!(answer(&opened)["status"], 410);
    assert_eq!(opened.header("access-control-allow-origin"), Some("https://app.example.com"));
    let head = "OPTIONS /socket/longpoll?vsn=2.0.0 HTTP/1.1\r\nOrigin: https://evil.example";
    assert_eq!(http::request(&server, head, "").await.header("access-control-allow-origin"), None);
}
