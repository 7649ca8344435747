//! The realtime client over long poll against the real server (`server::Server` on `127.0.0.1:0`): connect, join,
//! send (more than one batch at once) and receive; the fallback from a WebSocket that never opens, or is refused, or
//! opens but never answers its health check; and a lost long-poll session (server restart) that reconnects and
//! rejoins. A small proxy in front of the server plays the broken WebSocket while passing long poll through.

use std::{net::SocketAddr, time::Duration};

use app::realtime::{
    backoff::Schedule,
    client::{ChannelEvent, ChannelHandle, Socket, SocketEvent},
    push::PushReply,
    socket::SocketOptions,
    transport::{NativeConnector, TransportKind, memory::FallbackMemory},
};
use futures::{SinkExt, StreamExt, channel::mpsc::UnboundedReceiver, future::join_all};
use protocol::frame::Payload;
use serde_json::json;
use server::socket::SocketSettings;
use tokio::{
    net::{TcpListener, TcpStream},
    task::{JoinHandle, LocalSet},
};
use tokio_tungstenite::tungstenite::Message;

use crate::{joined, next_where, send, support::TestServer};

/// What the proxy does with a WebSocket upgrade (everything else, long poll included, goes to the server).
#[derive(Clone, Copy)]
enum BrokenWebSocket {
    /// Accepts the connection and never answers.
    Silent,
    /// Closes the connection at once.
    Refused,
    /// Relays the WebSocket but drops every heartbeat, so the health check never gets its reply.
    Deaf,
}

/// A proxy in front of `server` on its own port.
struct Proxy {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    async fn start(server: SocketAddr, websocket: BrokenWebSocket) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut silent = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                if !is_websocket(&stream).await {
                    tokio::spawn(pipe(stream, server));
                    continue;
                }
                match websocket {
                    BrokenWebSocket::Silent => silent.push(stream),
                    BrokenWebSocket::Refused => drop(stream),
                    BrokenWebSocket::Deaf => {
                        tokio::spawn(without_heartbeats(stream, server));
                    }
                }
            }
        });
        Self { addr, task }
    }

    fn endpoint(&self) -> String {
        format!("ws://{}/socket/websocket", self.addr)
    }
}

/// Whether the request on `stream` (not consumed) is the WebSocket upgrade.
async fn is_websocket(stream: &TcpStream) -> bool {
    const UPGRADE: &[u8] = b"GET /socket/websocket";
    let mut head = [0u8; UPGRADE.len()];
    for _ in 0..200 {
        match stream.peek(&mut head).await {
            Ok(n) if n >= head.len() || n == 0 => return n == head.len() && head == UPGRADE,
            Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            Err(_) => return false,
        }
    }
    false
}

async fn pipe(mut stream: TcpStream, server: SocketAddr) {
    if let Ok(mut upstream) = TcpStream::connect(server).await {
        let _ = tokio::io::copy_bidirectional(&mut stream, &mut upstream).await;
    }
}

/// Relays a WebSocket to the server, dropping the client's heartbeats.
// tungstenite's handshake callback returns its large error response type.
#[allow(clippy::result_large_err)]
async fn without_heartbeats(stream: TcpStream, server: SocketAddr) {
    let mut path = None;
    let accepted = tokio_tungstenite::accept_hdr_async(
        stream,
        |request: &tokio_tungstenite::tungstenite::handshake::server::Request, response| {
            path = Some(request.uri().to_string());
            Ok(response)
        },
    )
    .await;
    let (Ok(client), Some(path)) = (accepted, path) else { return };
    let Ok((upstream, _)) = tokio_tungstenite::connect_async(format!("ws://{server}{path}")).await else { return };
    let (mut to_client, mut from_client) = client.split();
    let (mut to_server, mut from_server) = upstream.split();
    loop {
        tokio::select! {
            message = from_client.next() => match message {
                Some(Ok(Message::Text(text))) if text.contains(r#""phoenix","heartbeat""#) => {}
                Some(Ok(message)) => { let _ = to_server.send(message).await; }
                _ => return,
            },
            message = from_server.next() => match message {
                Some(Ok(message)) => { let _ = to_client.send(message).await; }
                _ => return,
            },
        }
    }
}

fn options(endpoint: String, user: &str) -> SocketOptions {
    let mut options = SocketOptions::new(endpoint);
    let user = user.to_owned();
    options.params = Box::new(move || vec![("user".to_owned(), user.clone())]);
    options.rejoin = Schedule::Fixed(100);
    options
}

fn direct(server: &TestServer) -> String {
    format!("ws://{}/socket/websocket", server.addr)
}

/// A server that takes a client's 120 pushes in one go (the default allows 20 per 10 s).
async fn server() -> TestServer {
    let mut settings = SocketSettings::default();
    settings.message_rate.max = 1_000;
    TestServer::start_with(settings).await
}

/// Waits for a `message:new` with `body`.
async fn received(events: &mut UnboundedReceiver<ChannelEvent>, body: &str) {
    next_where(events, body, |e| {
        matches!(e, ChannelEvent::Message { event, payload: Payload::Json(m), .. }
            if event == "message:new" && m["body"] == body)
    })
    .await;
}

/// Joins `topic` on a new socket; returns the socket, the channel and its events (after the join).
async fn join(
    options: SocketOptions,
    memory: FallbackMemory,
    topic: &str,
) -> (Socket, ChannelHandle, UnboundedReceiver<ChannelEvent>) {
    let socket = Socket::with_memory(options, NativeConnector, memory);
    let channel = socket.channel(topic, Box::new(|| json!({})));
    let mut events = channel.events();
    channel.join().unwrap();
    socket.connect();
    joined(&mut events).await;
    (socket, channel, events)
}

#[tokio::test]
async fn long_poll_joins_sends_batches_and_receives() {
    LocalSet::new()
        .run_until(async {
            let server = server().await;
            let mut lp_options = options(direct(&server), "poller");
            lp_options.transport = TransportKind::LongPoll;
            let (poller, lp_channel, mut lp_events) = join(lp_options, FallbackMemory::default(), "room:lp").await;
            assert_eq!(poller.transport(), TransportKind::LongPoll);

            // 120 pushes in one turn: two POSTs (100 lines, then 20 after the first one's ack), replies in order.
            let replies =
                join_all((0..120).map(|i| {
                    lp_channel.push("message:new", Payload::Json(json!({"body": format!("lp {i}")})), 10_000)
                }))
                .await;
            let ids: Vec<u64> = replies
                .into_iter()
                .map(|reply| match reply {
                    PushReply::Ok(Payload::Json(reply)) => reply["id"].as_u64().unwrap(),
                    other => panic!("push failed: {other:?}"),
                })
                .collect();
            assert_eq!(ids, (1..=120).collect::<Vec<u64>>(), "every push stored, in the order sent");

            let (writer, ws_channel, _) =
                join(options(direct(&server), "writer"), FallbackMemory::default(), "room:lp").await;
            assert_eq!(writer.transport(), TransportKind::WebSocket);
            send(&ws_channel, "hello from a WebSocket").await;
            received(&mut lp_events, "hello from a WebSocket").await;

            poller.disconnect();
            writer.disconnect();
        })
        .await;
}

#[tokio::test]
async fn a_websocket_that_never_opens_falls_back_to_long_poll_and_is_remembered() {
    LocalSet::new()
        .run_until(async {
            let server = server().await;
            let proxy = Proxy::start(server.addr, BrokenWebSocket::Silent).await;
            let memory = FallbackMemory::default();
            let mut fallback = options(proxy.endpoint(), "patient");
            fallback.long_poll_fallback_ms = Some(300);
            let (socket, channel, _) = join(fallback, memory.clone(), "room:fallback").await;
            assert_eq!(socket.transport(), TransportKind::LongPoll);
            assert!(memory.long_poll(), "remembered for the session");
            assert_eq!(send(&channel, "over long poll").await, 1);

            // The next "page load" of the same session goes straight to long poll.
            let mut again = options(proxy.endpoint(), "patient-again");
            again.long_poll_fallback_ms = Some(60_000);
            let next = Socket::with_memory(again, NativeConnector, memory.clone());
            assert_eq!(next.transport(), TransportKind::LongPoll);
            let next_channel = next.channel("room:fallback", Box::new(|| json!({})));
            let mut next_events = next_channel.events();
            next_channel.join().unwrap();
            next.connect();
            joined(&mut next_events).await;
            socket.disconnect();
            next.disconnect();
        })
        .await;
}

#[tokio::test]
async fn a_refused_websocket_falls_back_at_once() {
    LocalSet::new()
        .run_until(async {
            let server = server().await;
            let proxy = Proxy::start(server.addr, BrokenWebSocket::Refused).await;
            let mut fallback = options(proxy.endpoint(), "refused");
            fallback.long_poll_fallback_ms = Some(60_000);
            let started = tokio::time::Instant::now();
            let (socket, channel, _) = join(fallback, FallbackMemory::default(), "room:refused").await;
            assert!(started.elapsed() < Duration::from_secs(5), "no wait for the fallback time");
            assert_eq!(socket.transport(), TransportKind::LongPoll);
            assert_eq!(send(&channel, "after a refusal").await, 1);
            socket.disconnect();
        })
        .await;
}

#[tokio::test]
async fn a_websocket_without_heartbeat_replies_switches_to_long_poll_and_the_channel_rejoins() {
    LocalSet::new()
        .run_until(async {
            let server = server().await;
            let proxy = Proxy::start(server.addr, BrokenWebSocket::Deaf).await;
            let memory = FallbackMemory::default();
            let mut fallback = options(proxy.endpoint(), "switcher");
            fallback.long_poll_fallback_ms = Some(1_000);
            let socket = Socket::with_memory(fallback, NativeConnector, memory.clone());
            let mut socket_events = socket.events();
            let channel = socket.channel("room:switch", Box::new(|| json!({})));
            let mut events = channel.events();
            channel.join().unwrap();
            socket.connect();
            joined(&mut events).await;
            assert_eq!(socket.transport(), TransportKind::WebSocket, "joined over the WebSocket first");
            let first_join = channel.join_ref().unwrap();
            next_where(&mut socket_events, "open over the WebSocket", |e| *e == SocketEvent::Open).await;

            // The switch is no close for the socket (it opens again, over long poll); the channel's join is lost.
            next_where(&mut events, "the join lost", |e| *e == ChannelEvent::Errored("connection_closed".into())).await;
            next_where(&mut socket_events, "open over long poll", |e| *e == SocketEvent::Open).await;
            joined(&mut events).await;
            assert_eq!(socket.transport(), TransportKind::LongPoll);
            assert_ne!(channel.join_ref().unwrap(), first_join, "rejoined with a new join_ref");
            assert!(memory.long_poll(), "the WebSocket never passed its health check");

            assert_eq!(send(&channel, "after the switch").await, 1);
            let (writer, ws_channel, _) =
                join(options(direct(&server), "writer"), FallbackMemory::default(), "room:switch").await;
            send(&ws_channel, "to the switched client").await;
            received(&mut events, "to the switched client").await;
            socket.disconnect();
            writer.disconnect();
        })
        .await;
}

#[tokio::test]
async fn a_lost_long_poll_session_reconnects_and_rejoins() {
    LocalSet::new()
        .run_until(async {
            let mut server = server().await;
            let mut lp_options = options(direct(&server), "survivor");
            lp_options.transport = TransportKind::LongPoll;
            let (socket, channel, mut events) = join(lp_options, FallbackMemory::default(), "room:restart").await;
            let mut socket_events = socket.events();
            let before = channel.join_ref().unwrap();

            server.restart().await;
            next_where(&mut socket_events, "the session lost", |e| matches!(e, SocketEvent::Close(_))).await;
            next_where(&mut socket_events, "reopened", |e| *e == SocketEvent::Open).await;
            joined(&mut events).await;
            assert_ne!(channel.join_ref().unwrap(), before);
            assert_eq!(socket.transport(), TransportKind::LongPoll);
            assert_eq!(send(&channel, "after the restart").await, 1);
            socket.disconnect();
        })
        .await;
}
