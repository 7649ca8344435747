//! The Rust realtime client (`app::realtime`, native transport) against the real server: reconnect after a restart
//! with exact recovery, rejoin after a channel crash, heartbeat-timeout detection against a server that stops
//! answering, and pushes made while offline; over long poll (`longpoll`), the fallback from a broken WebSocket.

#![allow(clippy::unwrap_used)]

#[path = "../integration/support/mod.rs"]
mod support;

mod longpoll;

use std::{cell::Cell, rc::Rc, time::Duration};

use app::realtime::{
    backoff::Schedule,
    client::{ChannelEvent, ChannelHandle, Socket, SocketEvent},
    push::PushReply,
    socket::SocketOptions,
    transport::TungsteniteConnector,
};
use futures::{StreamExt, channel::mpsc::UnboundedReceiver};
use protocol::frame::Payload;
use serde_json::{Value, json};
use support::{Client, TestServer};
use tokio::task::LocalSet;

const WAIT: Duration = Duration::from_secs(10);

fn options(addr: &str, user: &str) -> SocketOptions {
    let mut options = SocketOptions::new(format!("ws://{addr}/socket/websocket"));
    let user = user.to_owned();
    options.params = Box::new(move || vec![("user".to_owned(), user.clone())]);
    options.rejoin = Schedule::Fixed(100);
    options
}

async fn next_where<T: Clone + std::fmt::Debug>(
    events: &mut UnboundedReceiver<T>,
    what: &str,
    accept: impl Fn(&T) -> bool,
) -> T {
    let found = tokio::time::timeout(WAIT, async {
        while let Some(event) = events.next().await {
            if accept(&event) {
                return Some(event);
            }
        }
        None
    })
    .await;
    found
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .unwrap_or_else(|| panic!("stream ended before {what}"))
}

async fn joined(events: &mut UnboundedReceiver<ChannelEvent>) -> Value {
    match next_where(events, "joined", |e| matches!(e, ChannelEvent::Joined(_))).await {
        ChannelEvent::Joined(reply) => reply,
        _ => unreachable!(),
    }
}

async fn send(channel: &ChannelHandle, body: &str) -> u64 {
    match channel.push("message:new", Payload::Json(json!({"body": body})), 5_000).await {
        PushReply::Ok(Payload::Json(reply)) => reply["id"].as_u64().unwrap(),
        other => panic!("push failed: {other:?}"),
    }
}

#[tokio::test]
async fn restart_reconnect_rejoin_recovers_exactly_the_missed_messages() {
    LocalSet::new()
        .run_until(async {
            let mut server = TestServer::start().await;
            let mut options = options(&server.addr.to_string(), "rusty");
            // Slow enough that the writer below gets its messages in while this client is away.
            options.reconnect = Schedule::Fixed(1_500);
            let socket = Socket::new(options, TungsteniteConnector);
            let mut socket_events = socket.events();
            socket.connect();
            let last_seen = Rc::new(Cell::new(0u64));
            let cursor = last_seen.clone();
            let channel = socket.channel("room:recover", Box::new(move || json!({"last_seen_id": cursor.get()})));
            let mut events = channel.events();
            channel.join().unwrap();
            joined(&mut events).await;
            for body in ["one", "two"] {
                send(&channel, body).await;
            }
            while last_seen.get() < 2 {
                let event = next_where(&mut events, "message", |e| matches!(e, ChannelEvent::Message { .. })).await;
                if let ChannelEvent::Message { event, payload: Payload::Json(m), .. } = event
                    && event == "message:new"
                {
                    last_seen.set(m["id"].as_u64().unwrap());
                }
            }

            server.restart().await;
            next_where(&mut socket_events, "close 1012", |e| *e == SocketEvent::Close(1012)).await;
            let mut writer = Client::connect(&server, "user=writer").await;
            let (join_ref, _) = writer.join("room:recover", json!({})).await;
            for body in ["three", "four", "five"] {
                let msg_ref = writer.push(Some(&join_ref), "room:recover", "message:new", json!({"body": body})).await;
                writer.assert_reply(&msg_ref, "ok").await;
            }

            next_where(&mut socket_events, "reopen", |e| *e == SocketEvent::Open).await;
            let reply = joined(&mut events).await;
            assert_eq!(reply["recovered"], json!(true));
            let bodies: Vec<&str> =
                reply["messages"].as_array().unwrap().iter().map(|m| m["body"].as_str().unwrap()).collect();
            assert_eq!(bodies, vec!["three", "four", "five"], "exactly the gap after last_seen_id 2");
            assert_eq!(send(&channel, "six").await, 6, "pushes work after the rejoin");
            socket.disconnect();
        })
        .await;
}

#[tokio::test]
async fn a_crashed_channel_rejoins_with_a_new_join_ref() {
    LocalSet::new()
        .run_until(async {
            let server = TestServer::start().await;
            let socket = Socket::new(options(&server.addr.to_string(), "crashy"), TungsteniteConnector);
            socket.connect();
            let channel = socket.channel("test:crash", Box::new(|| json!({})));
            let mut events = channel.events();
            channel.join().unwrap();
            joined(&mut events).await;
            let first = channel.join_ref();
            let boom = channel.push("boom", Payload::Json(json!({})), 1_000);
            let errored = next_where(&mut events, "errored", |e| matches!(e, ChannelEvent::Errored(_))).await;
            assert_eq!(errored, ChannelEvent::Errored("server".into()));
            joined(&mut events).await;
            assert_ne!(channel.join_ref(), first);
            assert_eq!(boom.await, PushReply::Timeout, "a push the server never answered times out");
            let echo = channel.push("echo", Payload::Json(json!({"ok": 1})), 5_000).await;
            assert_eq!(echo, PushReply::Ok(Payload::Json(json!({"ok": 1}))));
            socket.disconnect();
        })
        .await;
}

#[tokio::test]
async fn a_server_that_stops_answering_is_detected_by_the_heartbeat() {
    LocalSet::new()
        .run_until(async {
            // A WebSocket server that completes handshakes and then ignores everything.
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let accepted = Rc::new(Cell::new(0));
            let count = accepted.clone();
            tokio::task::spawn_local(async move {
                let mut held = Vec::new();
                while let Ok((stream, _)) = listener.accept().await {
                    if let Ok(socket) = tokio_tungstenite::accept_async(stream).await {
                        count.set(count.get() + 1);
                        held.push(socket);
                    }
                }
            });
            let mut options = options(&addr.to_string(), "lonely");
            options.heartbeat_ms = 200;
            options.reconnect = Schedule::Fixed(50);
            let socket = Socket::new(options, TungsteniteConnector);
            let mut socket_events = socket.events();
            socket.connect();
            let channel = socket.channel("room:silent", Box::new(|| json!({})));
            let mut events = channel.events();
            channel.join().unwrap();
            next_where(&mut socket_events, "open", |e| *e == SocketEvent::Open).await;
            let errored = next_where(&mut events, "heartbeat timeout", |e| matches!(e, ChannelEvent::Errored(_))).await;
            assert_eq!(errored, ChannelEvent::Errored("heartbeat_timeout".into()));
            next_where(&mut socket_events, "reconnect", |e| *e == SocketEvent::Open).await;
            assert!(accepted.get() >= 2, "the client reconnected after detecting the dead link");
            socket.disconnect();
        })
        .await;
}

#[tokio::test]
async fn a_push_made_while_offline_is_delivered_after_the_reconnect() {
    LocalSet::new()
        .run_until(async {
            let mut server = TestServer::start().await;
            let mut options = options(&server.addr.to_string(), "patient");
            options.reconnect = Schedule::Fixed(300);
            let socket = Socket::new(options, TungsteniteConnector);
            let mut socket_events = socket.events();
            socket.connect();
            let channel = socket.channel("room:offline", Box::new(|| json!({})));
            let mut events = channel.events();
            channel.join().unwrap();
            joined(&mut events).await;
            server.restart().await;
            next_where(&mut socket_events, "close", |e| matches!(e, SocketEvent::Close(_))).await;
            let id = send(&channel, "sent while offline").await;
            assert_eq!(id, 1);
            socket.disconnect();
        })
        .await;
}
