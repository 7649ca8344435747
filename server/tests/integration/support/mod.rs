//! Test harness: a real server on `127.0.0.1:0` and a small Phoenix-speaking client with `assert_reply`,
//! `assert_push` and `assert_broadcast`, in the spirit of Phoenix's ChannelTest.

#![allow(dead_code, clippy::unwrap_used, clippy::print_stderr)]

pub mod http;
pub mod test_channel;

use std::{collections::VecDeque, net::SocketAddr, sync::Arc, time::Duration};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use server::{Server, config::Config, pubsub::PubSub, socket::SocketSettings};
use tokio::{net::TcpStream, sync::oneshot, task::JoinHandle};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{self, Message, client::IntoClientRequest, protocol::frame::coding::CloseCode},
};

/// How long an assertion waits for a frame.
pub const WAIT: Duration = Duration::from_secs(5);

/// A running server.
pub struct TestServer {
    pub addr: SocketAddr,
    pub pubsub: Arc<dyn PubSub>,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
    _data: tempdir::TempDir,
}

pub mod tempdir {
    //! A throwaway directory removed on drop.
    use std::path::{Path, PathBuf};

    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new() -> Self {
            let path = std::env::temp_dir().join(format!("chat-test-{}-{}", std::process::id(), rand_suffix()));
            std::fs::create_dir_all(&path).unwrap();
            Self(path)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    fn rand_suffix() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Waits until the server at `addr` answers HTTP: it has opened its store (and run its migrations), so a test may
/// open the same database beside it.
async fn serving(addr: SocketAddr) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for _ in 0..500 {
        if let Ok(mut tcp) = TcpStream::connect(addr).await {
            let request = "GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
            let mut answer = [0u8; 12];
            if tcp.write_all(request.as_bytes()).await.is_ok() && tcp.read_exact(&mut answer).await.is_ok() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the test server at {addr} never answered");
}

impl TestServer {
    /// The default server plus the `test:*` channel.
    pub async fn start() -> Self {
        Self::start_with(SocketSettings::default()).await
    }

    /// A server with custom socket settings plus the `test:*` channel.
    pub async fn start_with(settings: SocketSettings) -> Self {
        Self::start_configured(settings, |_| {}).await
    }

    /// A server with custom settings and configuration.
    pub async fn start_configured(settings: SocketSettings, configure: impl FnOnce(&mut Config)) -> Self {
        let data = tempdir::TempDir::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = Config::for_data_dir(data.path());
        configure(&mut config);
        let server = Server::new(config).with_settings(settings);
        let pubsub = server.pubsub();
        let server = server.with_channel("test:*", Arc::new(test_channel::TestChannel::new(pubsub.clone())));
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            server
                .run(listener, async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        serving(addr).await;
        Self { addr, pubsub, stop: Some(stop), handle: Some(handle), _data: data }
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        self._data.path()
    }

    pub fn url(&self, query: &str) -> String {
        format!("ws://{}/socket/websocket?{query}", self.addr)
    }

    /// Stops the server and starts a new one on the same address and data directory (a deploy).
    pub async fn restart(&mut self) {
        self.stop().await;
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        let server = Server::new(Config::for_data_dir(self._data.path()));
        self.pubsub = server.pubsub();
        let server = server.with_channel("test:*", Arc::new(test_channel::TestChannel::new(self.pubsub.clone())));
        let (stop, stopped) = oneshot::channel::<()>();
        self.stop = Some(stop);
        self.handle = Some(tokio::spawn(async move {
            server
                .run(listener, async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        }));
        serving(self.addr).await;
    }

    /// Drains the server (sockets get 1012) and waits for it to stop.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.unwrap();
        }
    }
}

/// One decoded V2 frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub join_ref: Value,
    pub msg_ref: Value,
    pub topic: String,
    pub event: String,
    pub payload: Value,
}

impl Frame {
    fn from_v2(value: Value) -> Self {
        let items = value.as_array().expect("a V2 frame is an array").clone();
        assert_eq!(items.len(), 5, "a V2 frame has five elements: {value}");
        Self {
            join_ref: items[0].clone(),
            msg_ref: items[1].clone(),
            topic: items[2].as_str().unwrap().to_owned(),
            event: items[3].as_str().unwrap().to_owned(),
            payload: items[4].clone(),
        }
    }
}

/// What a connection attempt returned when it was refused.
pub async fn refused_status(url: &str) -> Option<u16> {
    refused_status_with(url.into_client_request().unwrap()).await
}

pub async fn refused_status_with(request: tungstenite::handshake::client::Request) -> Option<u16> {
    match connect_async(request).await {
        Ok(_) => None,
        Err(tungstenite::Error::Http(response)) => Some(response.status().as_u16()),
        Err(other) => panic!("unexpected connect error: {other}"),
    }
}

/// A V2 JSON client.
pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_ref: u64,
    pending: VecDeque<Frame>,
}

impl Client {
    /// Connects with `vsn=2.0.0` and extra query params.
    pub async fn connect(server: &TestServer, query: &str) -> Self {
        let query = if query.is_empty() { "vsn=2.0.0".to_owned() } else { format!("vsn=2.0.0&{query}") };
        Self::connect_url(&server.url(&query)).await
    }

    pub async fn connect_url(url: &str) -> Self {
        let (ws, _) = connect_async(url).await.unwrap();
        Self { ws, next_ref: 0, pending: VecDeque::new() }
    }

    /// Wraps an already connected stream.
    pub fn from_stream(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Self {
        Self { ws, next_ref: 0, pending: VecDeque::new() }
    }

    pub fn make_ref(&mut self) -> String {
        self.next_ref += 1;
        self.next_ref.to_string()
    }

    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.ws.send(Message::text(text.into())).await.unwrap();
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.ws.send(Message::binary(bytes)).await.unwrap();
    }

    /// Sends `[join_ref, ref, topic, event, payload]` with a fresh ref; returns the ref.
    pub async fn push(&mut self, join_ref: Option<&str>, topic: &str, event: &str, payload: Value) -> String {
        let msg_ref = self.make_ref();
        self.send_text(json!([join_ref, msg_ref, topic, event, payload]).to_string()).await;
        msg_ref
    }

    /// Joins and asserts the reply is ok; returns (join_ref, response).
    pub async fn join(&mut self, topic: &str, payload: Value) -> (String, Value) {
        let (join_ref, status, response) = self.try_join(topic, payload).await;
        assert_eq!(status, "ok", "join {topic} failed: {response}");
        (join_ref, response)
    }

    /// Joins; returns (join_ref, status, response).
    pub async fn try_join(&mut self, topic: &str, payload: Value) -> (String, String, Value) {
        let join_ref = self.make_ref();
        self.send_text(json!([join_ref, join_ref, topic, "phx_join", payload]).to_string()).await;
        let reply = self.assert_reply_frame(&join_ref).await;
        let status = reply.payload["status"].as_str().unwrap().to_owned();
        if status == "ok" {
            assert_eq!(reply.join_ref, json!(join_ref));
        }
        (join_ref, status, reply.payload["response"].clone())
    }

    /// The next raw message (text, binary or close), or None if the stream ended.
    pub async fn next_message(&mut self) -> Option<Message> {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await.expect("timed out waiting for a message") {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(message)) => return Some(message),
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// The next frame in arrival order (pending ones first).
    pub async fn next_frame(&mut self) -> Frame {
        if let Some(frame) = self.pending.pop_front() {
            return frame;
        }
        match self.next_message().await {
            Some(Message::Text(text)) => Frame::from_v2(serde_json::from_str(text.as_str()).unwrap()),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    async fn find(&mut self, what: &str, mut matches: impl FnMut(&Frame) -> bool) -> Frame {
        if let Some(index) = self.pending.iter().position(&mut matches) {
            return self.pending.remove(index).unwrap();
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let message = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}; pending: {:?}", self.pending));
            match message {
                Some(Ok(Message::Text(text))) => {
                    let frame = Frame::from_v2(serde_json::from_str(text.as_str()).unwrap());
                    if matches(&frame) {
                        return frame;
                    }
                    self.pending.push_back(frame);
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("stream ended while waiting for {what}: {other:?}"),
            }
        }
    }

    /// Waits for the reply to `msg_ref`; returns the whole frame.
    pub async fn assert_reply_frame(&mut self, msg_ref: &str) -> Frame {
        let wanted = json!(msg_ref);
        self.find(&format!("reply to {msg_ref}"), |f| f.event == "phx_reply" && f.msg_ref == wanted).await
    }

    /// Waits for the reply to `msg_ref`; `None` if the connection ends first.
    pub async fn assert_reply_frame_or_close(&mut self, msg_ref: &str) -> Option<Frame> {
        let wanted = json!(msg_ref);
        if let Some(index) = self.pending.iter().position(|f| f.event == "phx_reply" && f.msg_ref == wanted) {
            return self.pending.remove(index);
        }
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let frame = Frame::from_v2(serde_json::from_str(text.as_str()).ok()?);
                    if frame.event == "phx_reply" && frame.msg_ref == wanted {
                        return Some(frame);
                    }
                    self.pending.push_back(frame);
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// The payload of the next broadcast of `event` on `topic` (pending first), or `None` once the connection ended.
    pub async fn next_broadcast_or_end(&mut self, topic: &str, event: &str) -> Option<Value> {
        let matches = |f: &Frame| f.topic == topic && f.event == event && f.join_ref.is_null();
        if let Some(index) = self.pending.iter().position(matches) {
            return self.pending.remove(index).map(|f| f.payload);
        }
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await.ok()? {
                Some(Ok(Message::Text(text))) => {
                    let frame = Frame::from_v2(serde_json::from_str(text.as_str()).ok()?);
                    if matches(&frame) {
                        return Some(frame.payload);
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// Waits for the reply to `msg_ref`, asserts its status, returns the response.
    pub async fn assert_reply(&mut self, msg_ref: &str, status: &str) -> Value {
        let frame = self.assert_reply_frame(msg_ref).await;
        assert_eq!(frame.payload["status"], json!(status), "reply {frame:?}");
        frame.payload["response"].clone()
    }

    /// Waits for a push (join_ref set, ref null) of `event` on `topic`; returns the payload.
    pub async fn assert_push(&mut self, topic: &str, event: &str) -> Frame {
        self.find(&format!("push {event} on {topic}"), |f| {
            f.topic == topic && f.event == event && !f.join_ref.is_null()
        })
        .await
    }

    /// Waits for a broadcast (join_ref and ref null) of `event` on `topic`; returns the payload.
    pub async fn assert_broadcast(&mut self, topic: &str, event: &str) -> Value {
        self.find(&format!("broadcast {event} on {topic}"), |f| {
            f.topic == topic && f.event == event && f.join_ref.is_null() && f.msg_ref.is_null()
        })
        .await
        .payload
    }

    /// Waits for any frame of `event` on `topic`.
    pub async fn find_event(&mut self, topic: &str, event: &str) -> Frame {
        self.find(&format!("{event} on {topic}"), |f| f.topic == topic && f.event == event).await
    }

    /// Asserts no frame of `event` on `topic` arrives within `quiet` (other frames are kept for later assertions).
    pub async fn refute_event(&mut self, topic: &str, event: &str, quiet: Duration) {
        let matches = |f: &Frame| f.topic == topic && f.event == event;
        assert!(!self.pending.iter().any(matches), "unexpected {event}: {:?}", self.pending);
        let deadline = tokio::time::Instant::now() + quiet;
        while let Ok(message) = tokio::time::timeout_at(deadline, self.ws.next()).await {
            match message {
                Some(Ok(Message::Text(text))) => {
                    let frame = Frame::from_v2(serde_json::from_str(text.as_str()).unwrap());
                    assert!(!matches(&frame), "unexpected {frame:?}");
                    self.pending.push_back(frame);
                }
                Some(Ok(_)) => {}
                _ => break,
            }
        }
    }

    /// Asserts nothing arrives for `quiet`.
    pub async fn assert_silent(&mut self, quiet: Duration) {
        assert!(self.pending.is_empty(), "unexpected frames: {:?}", self.pending);
        if let Ok(Some(message)) = tokio::time::timeout(quiet, self.ws.next()).await {
            panic!("expected silence, got {message:?}");
        }
    }

    /// Waits for the server to close the connection; returns the close code (None if it just dropped).
    pub async fn assert_closed(&mut self) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await.expect("connection was not closed") {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// A heartbeat round trip: proves the connection is healthy.
    pub async fn assert_alive(&mut self) {
        let msg_ref = self.push(None, "phoenix", "heartbeat", json!({})).await;
        let reply = self.assert_reply(&msg_ref, "ok").await;
        assert_eq!(reply, json!({}));
    }
}

pub fn close_code(code: u16) -> CloseCode {
    CloseCode::from(code)
}
