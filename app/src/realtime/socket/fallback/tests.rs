//! The fallback rule driven by hand: when the socket gives up on the WebSocket, what it closes and opens, what it
//! remembers, and that long poll runs without heartbeats.

#![allow(clippy::unwrap_used)]

use protocol::serializer::WireFrame;
use serde_json::{Value, json};

use crate::realtime::{
    channel::{ChannelId, ChannelState},
    socket::{CONNECTION_CLOSED, ConnState, Output, SocketCore, SocketOptions},
    transport::{Target, TransportKind},
};

const FALLBACK_MS: u64 = 2_500;

struct Harness {
    core: SocketCore,
    now: u64,
    outputs: Vec<Output>,
}

impl Harness {
    fn new(fallback: Option<u64>) -> Self {
        let mut options = SocketOptions::new("ws://example.test/socket/websocket");
        options.params = Box::new(|| vec![("user".into(), "ann".into())]);
        options.long_poll_fallback_ms = fallback;
        options.seed = 7;
        Self { core: SocketCore::new(options), now: 1_000, outputs: Vec::new() }
    }

    fn drain(&mut self) -> &mut Vec<Output> {
        while let Some(output) = self.core.poll_output() {
            self.outputs.push(output);
        }
        &mut self.outputs
    }

    /// The transports opened since the last call.
    fn opened(&mut self) -> Vec<(u64, Target)> {
        let mut opened = Vec::new();
        self.drain().retain(|o| match o {
            Output::Open { conn, target } => {
                opened.push((*conn, target.clone()));
                false
            }
            _ => true,
        });
        opened
    }

    /// Connects and returns the connection's generation and target.
    fn connect(&mut self) -> (u64, Target) {
        self.core.connect(self.now);
        self.opened().pop().unwrap()
    }

    fn advance(&mut self, ms: u64) {
        self.now += ms;
        self.core.on_timer(self.now);
    }

    /// Frames sent since the last call, as JSON.
    fn sent(&mut self) -> Vec<Value> {
        let mut sent = Vec::new();
        self.drain().retain(|o| match o {
            Output::Send { frame: WireFrame::Text(text), .. } => {
                sent.push(serde_json::from_str(text).unwrap());
                false
            }
            _ => true,
        });
        sent
    }

    fn has(&mut self, wanted: &Output) -> bool {
        self.drain().iter().any(|o| o == wanted)
    }

    fn closes(&mut self) -> Vec<u64> {
        self.drain()
            .iter()
            .filter_map(|o| if let Output::Close { conn, .. } = o { Some(*conn) } else { None })
            .collect()
    }

    fn server(&mut self, conn: u64, frame: Value) {
        self.core.on_frame(conn, &WireFrame::Text(frame.to_string()), self.now);
    }

    fn channel(&mut self, topic: &str) -> ChannelId {
        let id = self.core.channel(topic, Box::new(|| json!({})));
        self.core.join(id, self.now).unwrap();
        id
    }
}

fn is_heartbeat(frame: &Value) -> bool {
    frame[2] == "phoenix" && frame[3] == "heartbeat"
}

#[test]
fn without_the_option_a_failing_websocket_just_reconnects() {
    let mut h = Harness::new(None);
    let (conn, target) = h.connect();
    assert_eq!(target.kind, TransportKind::WebSocket);
    h.core.on_error(conn, h.now);
    h.core.on_close(conn, 1006, h.now);
    h.advance(10_000);
    let (_, again) = h.opened().pop().unwrap();
    assert_eq!(again.kind, TransportKind::WebSocket);
    assert_eq!(h.core.next_deadline(), None, "nothing watched");
}

#[test]
fn a_websocket_that_has_not_opened_in_time_is_replaced_by_long_poll() {
    let mut h = Harness::new(Some(FALLBACK_MS));
    let id = h.channel("room:a");
    let (ws, _) = h.connect();
    assert_eq!(h.core.next_deadline(), Some(h.now + FALLBACK_MS));
    h.advance(FALLBACK_MS - 1);
    assert!(h.opened().is_empty(), "still waiting");
    h.advance(1);
    assert_eq!(h.closes(), vec![ws], "the WebSocket attempt is closed");
    let (lp, target) = h.opened().pop().unwrap();
    assert_eq!(target.kind, TransportKind::LongPoll);
    assert_eq!(target.url, "http://example.test/socket/longpoll?user=ann&vsn=2.0.0");
    assert_eq!(h.core.transport(), TransportKind::LongPoll);
    assert!(!h.drain().iter().any(|o| matches!(o, Output::SocketClosed { .. })), "nothing had opened, so no close");
    assert!(!h.drain().iter().any(|o| matches!(o, Output::ChannelErrored { .. })));

    // Events of the abandoned WebSocket are ignored.
    h.core.on_open(ws, h.now);
    assert_eq!(h.core.conn_state(), ConnState::Connecting);

    h.core.on_open(lp, h.now);
    let sent = h.sent();
    assert_eq!(sent.len(), 1, "the join buffered meanwhile goes out on long poll, and no health check");
    assert_eq!(sent[0][3], "phx_join");
    assert!(h.has(&Output::RememberLongPoll), "long poll remembered for the browser session");
    assert_eq!(h.core.channel_state(id), ChannelState::Joining);
}

#[test]
fn a_websocket_error_before_it_opened_falls_back_at_once() {
    let mut h = Harness::new(Some(FALLBACK_MS));
    let (ws, _) = h.connect();
    h.core.on_error(ws, h.now);
    assert_eq!(h.closes(), vec![ws]);
    let (lp, target) = h.opened().pop().unwrap();
    assert_eq!(target.kind, TransportKind::LongPoll);
    h.core.on_close(ws, 1006, h.now);
    assert_eq!(h.core.conn_state(), ConnState::Connecting, "the old close is ignored");
    h.core.on_open(lp, h.now);
    assert_eq!(h.core.conn_state(), ConnState::Open);
}

#[test]
fn a_websocket_closed_before_it_opened_falls_back_too() {
    let mut h = Harness::new(Some(FALLBACK_MS));
    let (ws, _) = h.connect();
    h.core.on_close(ws, 1006, h.now);
    assert_eq!(h.opened().pop().unwrap().1.kind, TransportKind::LongPoll);
}

#[test]
fn an_open_websocket_must_answer_a_health_check_in_time() {
    let mut h = Harness::new(Some(FALLBACK_MS));
    let id = h.channel("room:a");
    let (ws, _) = h.connect();
    h.advance(1_000);
    h.core.on_open(ws, h.now);
    let sent = h.sent();
    assert_eq!(sent[0][3], "phx_join", "the join first");
    assert!(is_heartbeat(&sent[1]), "then the health check");
    assert_eq!(h.core.next_deadline(), Some(h.now + FALLBACK_MS), "a new period for the health check");
    let join_ref = sent[0][0].clone();
    h.server(ws, json!([join_ref, join_ref, "room:a", "phx_reply", {"status": "ok", "response": {}}]));
    assert_eq!(h.core.channel_state(id), ChannelState::Joined);

    h.advance(FALLBACK_MS);
    assert_eq!(h.closes(), vec![ws]);
    assert!(!h.drain().iter().any(|o| matches!(o, Output::SocketClosed { .. })), "a switch is not a close");
    let errored = Output::ChannelErrored { channel: id, reason: CONNECTION_CLOSED.into() };
    assert!(h.has(&errored), "the join over the WebSocket is lost");
    let (lp, target) = h.opened().pop().unwrap();
    assert_eq!(target.kind, TransportKind::LongPoll);

    h.core.on_open(lp, h.now);
    let rejoin = h.sent();
    assert_eq!(rejoin.len(), 1);
    assert_eq!(rejoin[0][3], "phx_join");
    assert_ne!(rejoin[0][0], join_ref, "rejoined with a new join_ref");
    assert!(h.has(&Output::RememberLongPoll), "the WebSocket never passed a health check");
}

#[test]
fn a_join_the_websocket_never_answered_is_sent_again_over_long_poll_without_an_error() {
    let mut h = Harness::new(Some(FALLBACK_MS));
    let id = h.channel("room:a");
    let (ws, _) = h.connect();
    h.core.on_open(ws, h.now);
    let first = h.sent();
    assert_eq!(first[0][3], "phx_join");
    h.advance(FALLBACK_MS);
    assert!(!h.drain().iter().any(|o| matches!(o, Output::ChannelErrored { .. } | Output::SocketClosed { .. })));
    let (lp, _) = h.opened().pop().unwrap();
    h.core.on_open(lp, h.now);
    let again = h.sent();
    assert_eq!((again.len(), &again[0][3]), (1, &json!("phx_join")));
    assert_ne!(again[0][0], first[0][0], "a fresh join_ref");
    assert_eq!(h.core.channel_state(id), ChannelState::Joining);
    h.server(lp, json!([again[0][0], again[0][0], "room:a", "phx_reply", {"status": "ok", "response": {}}]));
    assert_eq!(h.core.channel_state(id), ChannelState::Joined);
}

#[test]
fn a_healthy_websocket_stays_and_later_failures_just_reconnect_it() {
    let mut h = Harness::new(Some(FALLBACK_MS));
    let (ws, _) = h.connect();
    h.core.on_open(ws, h.now);
    let ping = h.sent().pop().unwrap();
    assert!(is_heartbeat(&ping));
    h.advance(500);
    h.server(ws, json!([null, ping[1], "phoenix", "phx_reply", {"status": "ok", "response": {}}]));
    h.advance(FALLBACK_MS * 4);
    assert!(h.closes().is_empty() && h.opened().is_empty(), "healthy: no fallback");
    assert_eq!(h.core.transport(), TransportKind::WebSocket);

    // A restart: the connection drops and the next attempts are refused for a while.
    h.core.on_close(ws, 1012, h.now);
    h.advance(100);
    let (again, target) = h.opened().pop().unwrap();
    assert_eq!(target.kind, TransportKind::WebSocket);
    h.core.on_error(again, h.now);
    h.core.on_close(again, 1006, h.now);
    h.advance(FALLBACK_MS * 2);
    let (_, target) = h.opened().pop().unwrap();
    assert_eq!(target.kind, TransportKind::WebSocket, "a WebSocket that worked is not given up");
    assert!(!h.has(&Output::RememberLongPoll));
}

#[test]
fn the_regular_heartbeat_reply_is_not_the_health_check() {
    let mut h = Harness::new(Some(FALLBACK_MS));
    let (ws, _) = h.connect();
    h.core.on_open(ws, h.now);
    assert!(is_heartbeat(&h.sent().pop().unwrap()));
    h.server(ws, json!([null, "999", "phoenix", "phx_reply", {"status": "ok", "response": {}}]));
    h.advance(FALLBACK_MS);
    assert_eq!(h.opened().pop().unwrap().1.kind, TransportKind::LongPoll, "only the ping's own ref counts");
}

#[test]
fn a_remembered_fallback_starts_on_long_poll() {
    let mut h = Harness::new(Some(FALLBACK_MS));
    h.core.use_remembered_long_poll();
    let (lp, target) = h.connect();
    assert_eq!(target.kind, TransportKind::LongPoll);
    assert_eq!(h.core.next_deadline(), None, "long poll is not watched");
    h.core.on_open(lp, h.now);
    assert!(h.has(&Output::RememberLongPoll));

    let mut h = Harness::new(None);
    h.core.use_remembered_long_poll();
    assert_eq!(h.connect().1.kind, TransportKind::WebSocket, "only with the fallback on");
}

#[test]
fn long_poll_sends_no_heartbeats_and_reconnects_over_long_poll() {
    let mut h = Harness::new(Some(FALLBACK_MS));
    let (ws, _) = h.connect();
    h.core.on_error(ws, h.now);
    let (lp, _) = h.opened().pop().unwrap();
    h.core.on_open(lp, h.now);
    h.sent();
    h.advance(120_000);
    assert!(h.sent().is_empty(), "no heartbeat over long poll");
    assert_eq!(h.core.conn_state(), ConnState::Open, "and no heartbeat timeout");

    h.core.on_close(lp, 3410, h.now);
    h.advance(100);
    let (_, target) = h.opened().pop().unwrap();
    assert_eq!(target.kind, TransportKind::LongPoll, "the socket stays on long poll");
}

#[test]
fn a_socket_configured_for_long_poll_skips_heartbeats_and_remembers_nothing() {
    let mut options = SocketOptions::new("wss://example.test/socket/websocket");
    options.transport = TransportKind::LongPoll;
    let mut h = Harness { core: SocketCore::new(options), now: 0, outputs: Vec::new() };
    let (lp, target) = h.connect();
    assert_eq!(target.url, "https://example.test/socket/longpoll?vsn=2.0.0");
    h.core.on_open(lp, h.now);
    assert_eq!(h.core.next_deadline(), None);
    assert!(!h.has(&Output::RememberLongPoll));
}

#[test]
fn disconnect_stops_the_watch() {
    let mut h = Harness::new(Some(FALLBACK_MS));
    h.connect();
    h.core.disconnect(h.now);
    h.advance(FALLBACK_MS * 2);
    assert!(h.opened().is_empty());
    assert_eq!(h.core.transport(), TransportKind::WebSocket);
}

#[test]
fn the_auth_token_is_evaluated_per_connect() {
    let mut options = SocketOptions::new("ws://example.test/socket/websocket");
    let mut n = 0;
    options.auth_token = Some(Box::new(move || {
        n += 1;
        format!("token-{n}")
    }));
    let mut h = Harness { core: SocketCore::new(options), now: 0, outputs: Vec::new() };
    let (conn, first) = h.connect();
    assert_eq!(first.auth_token.as_deref(), Some("token-1"));
    h.core.on_close(conn, 1006, h.now);
    h.advance(100);
    assert_eq!(h.opened().pop().unwrap().1.auth_token.as_deref(), Some("token-2"));
}
