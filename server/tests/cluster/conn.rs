//! One joined room channel on its own socket, read by a background task so nothing queues up on the server while a
//! test waits for something else: every reply, `message:new` broadcast and presence change is recorded as it
//! arrives, with the time it arrived. Tests read these records and wait for conditions with deadlines
//! ([`eventually`]).

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::{SinkExt, StreamExt, stream::SplitSink};
use serde_json::{Value, json};
use tokio::{net::TcpStream, task::JoinHandle};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

use crate::support::Client;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Sink = Arc<tokio::sync::Mutex<SplitSink<Ws, Message>>>;

/// How long a join may take on a busy two-core machine running debug builds.
pub const JOIN_WAIT: Duration = Duration::from_secs(20);
/// How long a push may wait for its reply.
pub const REPLY_WAIT: Duration = Duration::from_secs(15);

/// Polls `check` every 20 ms until it returns `Ok` or `within` has passed; then panics with its last `Err`, which
/// describes what was seen instead. A `check` that sees something that can never become right panics itself.
pub async fn eventually<T>(within: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + within;
    loop {
        match check() {
            Ok(value) => return value,
            Err(why) if Instant::now() >= deadline => panic!("still not true after {within:?}: {why}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// A presence view as phoenix.js keeps it: `presence_state` replaces it, a `presence_diff` adds its joins (by
/// `phx_ref`, so a meta seen twice is kept once) and then removes its leaves. Diffs that arrive before the state are
/// held back until it comes.
#[derive(Debug, Clone, Default)]
pub struct PresenceView {
    metas: BTreeMap<String, Vec<Value>>,
    has_state: bool,
    early_diffs: Vec<Value>,
    /// When each `phx_ref` left this view.
    left_at: HashMap<String, Instant>,
}

impl PresenceView {
    fn set_state(&mut self, state: &Value) {
        self.metas.clear();
        for (key, entry) in state.as_object().into_iter().flatten() {
            self.metas.insert(key.clone(), entry["metas"].as_array().cloned().unwrap_or_default());
        }
        self.has_state = true;
        for diff in std::mem::take(&mut self.early_diffs) {
            self.apply_diff(&diff, Instant::now());
        }
    }

    fn apply_diff(&mut self, diff: &Value, at: Instant) {
        if !self.has_state {
            self.early_diffs.push(diff.clone());
            return;
        }
        for (key, entry) in diff["joins"].as_object().into_iter().flatten() {
            let metas = self.metas.entry(key.clone()).or_default();
            for meta in entry["metas"].as_array().into_iter().flatten() {
                if !metas.iter().any(|m| m["phx_ref"] == meta["phx_ref"]) {
                    metas.push(meta.clone());
                }
            }
        }
        for (key, entry) in diff["leaves"].as_object().into_iter().flatten() {
            let gone: Vec<&Value> = entry["metas"].as_array().into_iter().flatten().map(|m| &m["phx_ref"]).collect();
            if let Some(metas) = self.metas.get_mut(key) {
                metas.retain(|m| !gone.contains(&&m["phx_ref"]));
                if metas.is_empty() {
                    self.metas.remove(key);
                }
            }
            for phx_ref in gone.iter().filter_map(|r| r.as_str()) {
                self.left_at.entry(phx_ref.to_owned()).or_insert(at);
            }
        }
    }

    /// The metas of `key` (empty when absent).
    pub fn metas(&self, key: &str) -> &[Value] {
        self.metas.get(key).map(Vec::as_slice).unwrap_or_default()
    }

    pub fn has(&self, key: &str) -> bool {
        self.metas.contains_key(key)
    }

    /// When `phx_ref` left the view, if it did.
    pub fn left_at(&self, phx_ref: &str) -> Option<Instant> {
        self.left_at.get(phx_ref).copied()
    }

    pub fn keys(&self) -> Vec<&str> {
        self.metas.keys().map(String::as_str).collect()
    }
}

/// Everything a socket received, recorded by its reader task.
#[derive(Debug, Default)]
pub struct Seen {
    /// `message:new` broadcasts in arrival order.
    pub messages: Vec<Value>,
    /// The `presence_state` push, once it came.
    pub presence_state: Option<Value>,
    /// Every `presence_diff` with its arrival time.
    pub diffs: Vec<(Instant, Value)>,
    pub presence: PresenceView,
    /// Replies by ref: the `{"status", "response"}` payload.
    replies: HashMap<String, Value>,
    /// `phx_error` and `phx_close` frames of the channel.
    pub channel_ends: Vec<Value>,
    /// When the connection ended and the close code, if the server sent one.
    pub closed: Option<(Instant, Option<u16>)>,
}

impl Seen {
    fn record(&mut self, frame: &Value) {
        let Some([join_ref, msg_ref, _topic, event, payload]) = frame.as_array().map(Vec::as_slice) else {
            panic!("not a V2 frame: {frame}");
        };
        let now = Instant::now();
        match event.as_str().unwrap_or_default() {
            "phx_reply" => {
                let key = msg_ref.as_str().unwrap_or_default().to_owned();
                self.replies.insert(key, payload.clone());
            }
            "message:new" if join_ref.is_null() => self.messages.push(payload.clone()),
            "presence_state" => {
                self.presence_state = Some(payload.clone());
                self.presence.set_state(payload);
            }
            "presence_diff" => {
                self.diffs.push((now, payload.clone()));
                self.presence.apply_diff(payload, now);
            }
            "phx_error" | "phx_close" => self.channel_ends.push(frame.clone()),
            _ => {}
        }
    }
}

/// What became of a `message:new`.
#[derive(Debug, Clone, PartialEq)]
pub enum Sent {
    Acked(u64),
    /// An error reply: its response (`{"reason": …}`).
    Refused(Value),
    /// The connection ended before a reply.
    Closed,
    TimedOut,
}

/// A socket joined to one room.
pub struct Conn {
    /// The identity the join reply named.
    pub user: String,
    pub topic: String,
    pub join_ref: String,
    /// The join reply's response (`user`, `messages`, `recovered`).
    pub joined: Value,
    /// When the join reply arrived.
    pub joined_at: Instant,
    sink: Sink,
    next_ref: u64,
    seen: Arc<Mutex<Seen>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Conn {
    /// Connects to `url` and joins `topic` with `payload`; panics unless the join is accepted within [`JOIN_WAIT`].
    pub async fn join(url: &str, topic: &str, payload: Value) -> Self {
        match Self::try_join(url, topic, payload).await {
            Ok(conn) => conn,
            Err(reply) => panic!("join {topic} at {url} failed: {reply}"),
        }
    }

    /// Like [`Conn::join`], but a refused join (or a connection that ended first) comes back as its reply.
    pub async fn try_join(url: &str, topic: &str, payload: Value) -> Result<Self, Value> {
        let ws = Client::connect_url(url).await.ws;
        let (sink, mut stream) = ws.split();
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let reader = tokio::spawn({
            let seen = seen.clone();
            async move {
                loop {
                    let next = stream.next().await;
                    let mut seen = seen.lock().unwrap();
                    match next {
                        Some(Ok(Message::Text(text))) => {
                            let frame: Value = serde_json::from_str(text.as_str()).expect("the server sends JSON");
                            seen.record(&frame);
                        }
                        Some(Ok(Message::Close(frame))) => {
                            seen.closed = Some((Instant::now(), frame.map(|f| u16::from(f.code))));
                            return;
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => {
                            seen.closed.get_or_insert((Instant::now(), None));
                            return;
                        }
                    }
                }
            }
        });
        let sink: Sink = Arc::new(tokio::sync::Mutex::new(sink));
        // The server closes a socket that sends nothing for 60 s; some tests outlast that.
        let heartbeat = tokio::spawn({
            let sink = sink.clone();
            async move {
                for n in 1u64.. {
                    tokio::time::sleep(Duration::from_secs(20)).await;
                    let frame = json!([null, format!("hb{n}"), "phoenix", "heartbeat", {}]).to_string();
                    if sink.lock().await.send(Message::text(frame)).await.is_err() {
                        return;
                    }
                }
            }
        });
        let mut conn = Self {
            user: String::new(),
            topic: topic.to_owned(),
            join_ref: String::new(),
            joined: Value::Null,
            joined_at: Instant::now(),
            sink,
            next_ref: 0,
            seen,
            tasks: vec![reader, heartbeat],
        };
        let join_ref = conn.make_ref();
        conn.send_frame(json!([join_ref, join_ref, topic, "phx_join", payload])).await;
        let reply = match conn.wait_reply(&join_ref, JOIN_WAIT).await {
            Some(reply) => reply,
            None => return Err(json!({"status": "no reply", "closed": format!("{:?}", conn.closed())})),
        };
        if reply["status"] != json!("ok") {
            return Err(reply);
        }
        conn.joined_at = Instant::now();
        conn.join_ref = join_ref;
        conn.joined = reply["response"].clone();
        conn.user = conn.joined["user"].as_str().unwrap_or_default().to_owned();
        Ok(conn)
    }

    fn make_ref(&mut self) -> String {
        self.next_ref += 1;
        self.next_ref.to_string()
    }

    async fn send_frame(&mut self, frame: Value) {
        // A send on a dead connection is not an error here: the missing reply tells.
        let _ = self.sink.lock().await.send(Message::text(frame.to_string())).await;
    }

    /// Pushes `event` on the joined topic; returns its ref.
    pub async fn push(&mut self, event: &str, payload: Value) -> String {
        let msg_ref = self.make_ref();
        let frame = json!([self.join_ref, msg_ref, self.topic, event, payload]);
        self.send_frame(frame).await;
        msg_ref
    }

    /// The reply (`{"status", "response"}`) to `msg_ref`, or `None` if the connection ended or `within` passed first.
    pub async fn wait_reply(&self, msg_ref: &str, within: Duration) -> Option<Value> {
        let deadline = Instant::now() + within;
        loop {
            {
                let mut seen = self.seen.lock().unwrap();
                if let Some(reply) = seen.replies.remove(msg_ref) {
                    return Some(reply);
                }
                if seen.closed.is_some() || Instant::now() >= deadline {
                    return None;
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The reply to `msg_ref`; panics without one within `within`.
    pub async fn reply(&self, msg_ref: &str, within: Duration) -> Value {
        match self.wait_reply(msg_ref, within).await {
            Some(reply) => reply,
            None => panic!(
                "{}: no reply to {msg_ref} within {within:?} (connection ended: {:?}, channel ends: {:?})",
                self.user,
                self.closed().is_some(),
                self.seen(|seen| seen.channel_ends.clone())
            ),
        }
    }

    /// Sends `message:new` and waits up to `within` for what became of it.
    pub async fn send(&mut self, body: &str, client_id: &str, within: Duration) -> Sent {
        let msg_ref = self.push("message:new", json!({"body": body, "client_id": client_id})).await;
        self.outcome(&msg_ref, within).await
    }

    /// What became of the `message:new` pushed as `msg_ref`.
    pub async fn outcome(&self, msg_ref: &str, within: Duration) -> Sent {
        match self.wait_reply(msg_ref, within).await {
            Some(reply) if reply["status"] == json!("ok") => {
                Sent::Acked(reply["response"]["id"].as_u64().unwrap_or_else(|| panic!("ok without an id: {reply}")))
            }
            Some(reply) => Sent::Refused(reply["response"].clone()),
            None if self.closed().is_some() => Sent::Closed,
            None => Sent::TimedOut,
        }
    }

    /// Leaves the channel (`phx_leave`) and waits for its ok.
    pub async fn leave(&mut self) {
        let msg_ref = self.push("phx_leave", json!({})).await;
        let reply = self.reply(&msg_ref, REPLY_WAIT).await;
        assert_eq!(reply["status"], json!("ok"), "phx_leave: {reply}");
    }

    /// Closes the socket with a close frame, as a browser tab does.
    pub async fn close(self) {
        let _ = self.sink.lock().await.close().await;
    }

    /// Runs `f` on what the socket received so far.
    pub fn seen<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&self.seen.lock().unwrap())
    }

    /// The `message:new` broadcasts so far.
    pub fn messages(&self) -> Vec<Value> {
        self.seen(|seen| seen.messages.clone())
    }

    /// The ids of the `message:new` broadcasts so far.
    pub fn ids(&self) -> Vec<u64> {
        self.seen(|seen| ids(&seen.messages))
    }

    pub fn presence(&self) -> PresenceView {
        self.seen(|seen| seen.presence.clone())
    }

    pub fn closed(&self) -> Option<(Instant, Option<u16>)> {
        self.seen(|seen| seen.closed)
    }

    /// Waits until this socket's broadcasts are exactly `first..=last`, in order; panics at once when they can no
    /// longer become that (a gap, a duplicate, a reordering or an extra message) and after `within` otherwise.
    pub async fn wait_for_ids(&self, first: u64, last: u64, within: Duration) {
        self.wait_ids(first, last, true, within).await;
    }

    /// Waits until this socket's broadcasts run `first, first + 1, …` without a gap, a duplicate or a reordering up to
    /// at least `last` (more may follow).
    pub async fn wait_caught_up(&self, first: u64, last: u64, within: Duration) {
        self.wait_ids(first, last, false, within).await;
    }

    async fn wait_ids(&self, first: u64, last: u64, exact: bool, within: Duration) {
        let user = self.user.clone();
        eventually(within, || {
            let got = self.ids();
            let in_order = got.iter().zip(first..).all(|(id, expected)| *id == expected);
            let end = first + got.len() as u64;
            assert!(
                in_order && (!exact || end <= last + 1),
                "{user} received message:new ids out of order, twice or unexpected: expected {first}..={last}, got {}",
                describe_ids(&got)
            );
            if end > last {
                Ok(())
            } else {
                Err(format!("{user} has {} of {first}..={last}: {}", got.len(), describe_ids(&got)))
            }
        })
        .await;
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The ids of a list of messages.
pub fn ids(messages: &[Value]) -> Vec<u64> {
    messages.iter().map(|m| m["id"].as_u64().unwrap_or_else(|| panic!("message without id: {m}"))).collect()
}

/// A short rendering of an id list: runs of consecutive ids as `a..=b`.
pub fn describe_ids(ids: &[u64]) -> String {
    let mut runs: Vec<String> = Vec::new();
    let mut start = None;
    for (index, id) in ids.iter().enumerate() {
        let begin = *start.get_or_insert(*id);
        if ids.get(index + 1) != Some(&(id + 1)) {
            runs.push(if begin == *id { id.to_string() } else { format!("{begin}..={id}") });
            start = None;
        }
    }
    format!("[{}] ({} ids)", runs.join(", "), ids.len())
}
