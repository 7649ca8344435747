//! Unit tests of the client state machines, driven by hand: every frame the "server" sends and every tick of the
//! clock is explicit, so timeouts, backoff, buffering and the join_ref rules are checked exactly.

#![allow(clippy::unwrap_used)]

use protocol::{frame::Payload, serializer::WireFrame};
use serde_json::{Value, json};

use super::{
    backoff::Schedule,
    channel::{ChannelId, ChannelState},
    presence::ChannelPresence,
    push::PushReply,
    socket::{ConnState, Output, SocketCore, SocketOptions},
};

/// A socket with a fake clock and a log of what it sent.
struct Harness {
    core: SocketCore,
    now: u64,
    conn: u64,
    outputs: Vec<Output>,
}

impl Harness {
    fn new() -> Self {
        let mut options = SocketOptions::new("ws://example.test/socket/websocket");
        options.seed = 42;
        Self { core: SocketCore::new(options), now: 1_000, conn: 0, outputs: Vec::new() }
    }

    fn with(options: SocketOptions) -> Self {
        Self { core: SocketCore::new(options), now: 1_000, conn: 0, outputs: Vec::new() }
    }

    fn drain(&mut self) {
        while let Some(output) = self.core.poll_output() {
            if let Output::Open { conn, .. } = &output {
                self.conn = *conn;
            }
            self.outputs.push(output);
        }
    }

    /// Connects and opens the transport.
    fn open(&mut self) {
        self.core.connect(self.now);
        self.drain();
        self.core.on_open(self.conn, self.now);
        self.drain();
        self.outputs.retain(|o| !matches!(o, Output::Open { .. } | Output::SocketOpened));
    }

    fn advance(&mut self, ms: u64) {
        self.now += ms;
        self.core.on_timer(self.now);
        self.drain();
    }

    /// Frames sent since the last call, as JSON arrays.
    fn sent(&mut self) -> Vec<Value> {
        self.drain();
        let mut sent = Vec::new();
        self.outputs.retain(|o| match o {
            Output::Send { frame: WireFrame::Text(text), .. } => {
                sent.push(serde_json::from_str(text).unwrap());
                false
            }
            _ => true,
        });
        sent
    }

    /// Outputs other than sends since the last call.
    fn events(&mut self) -> Vec<Output> {
        self.drain();
        let events: Vec<Output> = self.outputs.drain(..).filter(|o| !matches!(o, Output::Send { .. })).collect();
        events
    }

    fn server(&mut self, frame: Value) {
        self.core.on_frame(self.conn, &WireFrame::Text(frame.to_string()), self.now);
        self.drain();
    }

    fn reply(&mut self, join_ref: &Value, msg_ref: &Value, topic: &str, status: &str, response: Value) {
        self.server(json!([join_ref, msg_ref, topic, "phx_reply", {"status": status, "response": response}]));
    }

    fn channel(&mut self, topic: &str) -> ChannelId {
        self.core.channel(topic, Box::new(|| json!({})))
    }

    /// Joins and answers ok; returns the join_ref.
    fn joined(&mut self, topic: &str) -> (ChannelId, Value) {
        let id = self.channel(topic);
        self.core.join(id, self.now).unwrap();
        let join = self.sent().pop().unwrap();
        self.reply(&join[0], &join[1], topic, "ok", json!({}));
        (id, join[0].clone())
    }

    fn replies(&mut self) -> Vec<PushReply> {
        self.events()
            .into_iter()
            .filter_map(|o| match o {
                Output::Reply { reply, .. } => Some(reply),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn refs_come_from_one_counter_shared_by_joins_pushes_and_heartbeats() {
    let mut h = Harness::new();
    h.open();
    let (id, join_ref) = h.joined("room:a");
    assert_eq!(join_ref, json!("1"));
    h.core.push(id, "e", Payload::Json(json!({})), 10_000, h.now);
    assert_eq!(h.sent()[0][1], json!("2"));
    h.advance(30_000);
    let heartbeat = h.sent().pop().unwrap();
    assert_eq!(heartbeat, json!([null, "3", "phoenix", "heartbeat", {}]));
}

#[test]
fn connect_url_carries_params_then_vsn_and_params_are_evaluated_per_connect() {
    let mut count = 0;
    let mut options = SocketOptions::new("ws://h/socket/websocket");
    options.params = Box::new(move || {
        count += 1;
        vec![("user".into(), "Zoë K".into()), ("n".into(), count.to_string())]
    });
    let mut h = Harness::with(options);
    h.core.connect(h.now);
    h.drain();
    h.core.on_close(h.conn, 1006, h.now);
    h.advance(20);
    let urls: Vec<String> = h
        .events()
        .into_iter()
        .filter_map(|o| match o {
            Output::Open { target, .. } => Some(target.url),
            _ => None,
        })
        .collect();
    assert_eq!(urls[0], "ws://h/socket/websocket?user=Zo%C3%AB%20K&n=1&vsn=2.0.0");
    assert_eq!(urls[1], "ws://h/socket/websocket?user=Zo%C3%AB%20K&n=2&vsn=2.0.0");
}

#[test]
fn connect_is_a_no_op_while_connecting_or_open() {
    let mut h = Harness::new();
    h.core.connect(h.now);
    h.core.connect(h.now);
    h.drain();
    assert_eq!(h.events().iter().filter(|o| matches!(o, Output::Open { .. })).count(), 1);
    assert_eq!(h.core.conn_state(), ConnState::Connecting);
}

#[test]
fn frames_made_while_offline_are_flushed_in_order_on_open() {
    let mut h = Harness::new();
    let a = h.channel("room:a");
    let b = h.channel("room:b");
    h.core.join(a, h.now).unwrap();
    h.core.join(b, h.now).unwrap();
    assert!(h.sent().is_empty(), "nothing goes out before the transport opens");
    h.open();
    let sent = h.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!((sent[0][2].clone(), sent[0][3].clone()), (json!("room:a"), json!("phx_join")));
    assert_eq!(sent[1][2], json!("room:b"));
}

#[test]
fn join_ref_equals_the_join_ref_and_params_are_sent() {
    let mut h = Harness::new();
    h.open();
    let id = h.core.channel("room:p", Box::new(|| json!({"last_seen_id": 7})));
    h.core.join(id, h.now).unwrap();
    let join = h.sent().pop().unwrap();
    assert_eq!(join[0], join[1]);
    assert_eq!(join[4], json!({"last_seen_id": 7}));
    assert_eq!(h.core.channel_state(id), ChannelState::Joining);
}

#[test]
fn join_ok_marks_joined_and_reports_the_response() {
    let mut h = Harness::new();
    h.open();
    let id = h.channel("room:ok");
    h.core.join(id, h.now).unwrap();
    let join = h.sent().pop().unwrap();
    h.reply(&join[0], &join[1], "room:ok", "ok", json!({"user": "ada"}));
    assert_eq!(h.core.channel_state(id), ChannelState::Joined);
    assert!(h.events().contains(&Output::Joined { channel: id, response: json!({"user": "ada"}) }));
}

#[test]
fn join_can_only_be_called_once() {
    let mut h = Harness::new();
    let id = h.channel("room:x");
    assert!(h.core.join(id, h.now).is_ok());
    assert!(h.core.join(id, h.now).is_err());
}

#[test]
fn join_error_rejoins_on_the_rejoin_schedule_with_a_new_join_ref() {
    let mut h = Harness::new();
    h.open();
    let id = h.channel("room:err");
    h.core.join(id, h.now).unwrap();
    let first = h.sent().pop().unwrap();
    h.reply(&first[0], &first[1], "room:err", "error", json!({"reason": "nope"}));
    assert_eq!(h.core.channel_state(id), ChannelState::Errored);
    assert!(h.events().iter().any(|o| matches!(o, Output::JoinRefused { .. })));
    h.advance(799);
    assert!(h.sent().is_empty(), "no retry before 1000 ms - 20 %");
    h.advance(401);
    let second = h.sent().pop().unwrap();
    assert_eq!(second[3], json!("phx_join"));
    assert_ne!(second[0], first[0], "a fresh join_ref per attempt");
}

#[test]
fn join_timeout_errors_sends_leave_for_that_join_and_retries() {
    let mut h = Harness::new();
    h.open();
    let id = h.channel("room:slow");
    h.core.join(id, h.now).unwrap();
    let join = h.sent().pop().unwrap();
    h.advance(10_000);
    assert_eq!(h.core.channel_state(id), ChannelState::Errored);
    let leave = h.sent().pop().unwrap();
    assert_eq!((leave[0].clone(), leave[3].clone()), (join[0].clone(), json!("phx_leave")));
    h.advance(1_300);
    let retry = h.sent().pop().unwrap();
    assert_eq!(retry[3], json!("phx_join"));
    // A late reply to the timed-out join is stale and ignored.
    h.reply(&join[0], &join[1], "room:slow", "ok", json!({}));
    assert_eq!(h.core.channel_state(id), ChannelState::Joining);
}

#[test]
fn messages_with_a_stale_join_ref_are_dropped_and_null_join_refs_delivered() {
    let mut h = Harness::new();
    h.open();
    let (id, join_ref) = h.joined("room:m");
    h.events();
    h.server(json!(["999", null, "room:m", "news", {"a": 1}]));
    assert!(h.events().is_empty(), "stale join_ref dropped");
    h.server(json!([null, null, "room:m", "news", {"b": 2}]));
    h.server(json!([join_ref, null, "room:m", "news", {"c": 3}]));
    h.server(json!([null, null, "room:other", "news", {"d": 4}]));
    let payloads: Vec<Value> = h
        .events()
        .into_iter()
        .filter_map(|o| match o {
            Output::Message { channel, payload: Payload::Json(p), .. } if channel == id => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(payloads, vec![json!({"b": 2}), json!({"c": 3})]);
}

#[test]
fn pushes_wait_for_the_join_and_get_fresh_refs_when_sent() {
    let mut h = Harness::new();
    h.open();
    let id = h.channel("room:buf");
    h.core.join(id, h.now).unwrap();
    let join = h.sent().pop().unwrap();
    h.core.push(id, "one", Payload::Json(json!({"n": 1})), 10_000, h.now);
    h.core.push(id, "two", Payload::Json(json!({"n": 2})), 10_000, h.now);
    assert!(h.sent().is_empty(), "buffered until joined");
    h.reply(&join[0], &join[1], "room:buf", "ok", json!({}));
    let sent = h.sent();
    assert_eq!(sent.iter().map(|f| f[3].clone()).collect::<Vec<_>>(), vec![json!("one"), json!("two")]);
    assert!(sent.iter().all(|f| f[0] == join[0]), "sent under the current join_ref");
    assert_eq!((sent[0][1].clone(), sent[1][1].clone()), (json!("2"), json!("3")));
}

#[test]
fn a_buffered_push_that_timed_out_is_never_sent() {
    let mut h = Harness::new();
    h.open();
    let id = h.channel("room:late");
    h.core.join(id, h.now).unwrap();
    let join = h.sent().pop().unwrap();
    h.core.push(id, "quick", Payload::Json(json!({})), 500, h.now);
    h.advance(600);
    assert_eq!(h.replies(), vec![PushReply::Timeout]);
    h.reply(&join[0], &join[1], "room:late", "ok", json!({}));
    assert!(h.sent().iter().all(|f| f[3] != json!("quick")));
}

#[test]
fn push_replies_resolve_ok_and_error() {
    let mut h = Harness::new();
    h.open();
    let (id, join_ref) = h.joined("room:r");
    h.events();
    let ok = h.core.push(id, "a", Payload::Json(json!({})), 10_000, h.now);
    let err = h.core.push(id, "b", Payload::Json(json!({})), 10_000, h.now);
    let sent = h.sent();
    h.reply(&join_ref, &sent[1][1], "room:r", "error", json!({"reason": "rate limited"}));
    h.reply(&join_ref, &sent[0][1], "room:r", "ok", json!({"id": 5}));
    let events = h.events();
    assert!(events.contains(&Output::Reply {
        push: err,
        reply: PushReply::Error(Payload::Json(json!({"reason": "rate limited"})))
    }));
    assert!(events.contains(&Output::Reply { push: ok, reply: PushReply::Ok(Payload::Json(json!({"id": 5}))) }));
}

#[test]
fn push_times_out_and_a_late_reply_is_ignored() {
    let mut h = Harness::new();
    h.open();
    let (id, join_ref) = h.joined("room:t");
    h.events();
    let push = h.core.push(id, "a", Payload::Json(json!({})), 1_000, h.now);
    let sent = h.sent().pop().unwrap();
    h.advance(999);
    assert!(h.replies().is_empty());
    h.advance(1);
    assert_eq!(h.events(), vec![Output::Reply { push, reply: PushReply::Timeout }]);
    h.reply(&join_ref, &sent[1], "room:t", "ok", json!({}));
    assert!(h.replies().is_empty(), "late reply ignored");
}

#[test]
fn heartbeat_every_interval_and_a_reply_schedules_the_next() {
    let mut h = Harness::new();
    h.open();
    h.advance(29_999);
    assert!(h.sent().is_empty());
    h.advance(1);
    let beat = h.sent().pop().unwrap();
    assert_eq!((beat[2].clone(), beat[3].clone()), (json!("phoenix"), json!("heartbeat")));
    h.advance(10_000);
    h.server(json!([null, beat[1], "phoenix", "phx_reply", {"status": "ok", "response": {}}]));
    h.advance(29_999);
    assert!(h.sent().is_empty(), "next heartbeat one interval after the reply");
    h.advance(1);
    assert_eq!(h.sent().len(), 1);
}

#[test]
fn heartbeat_timeout_closes_errors_channels_and_reconnects() {
    let mut h = Harness::new();
    h.open();
    let (id, _) = h.joined("room:hb");
    h.advance(30_000);
    h.sent();
    h.events();
    h.advance(30_000);
    let events = h.events();
    assert!(
        events.iter().any(|o| matches!(o, Output::Close { code: 1000, reason, .. } if reason == "heartbeat timeout"))
    );
    assert!(events.iter().any(|o| matches!(o, Output::ChannelErrored { reason, .. } if reason == "heartbeat_timeout")));
    assert_eq!(h.core.channel_state(id), ChannelState::Errored);
    h.advance(12);
    assert!(h.events().iter().any(|o| matches!(o, Output::Open { .. })), "reconnects on the reconnect schedule");
}

#[test]
fn abnormal_close_reconnects_on_the_phoenix_schedule_and_open_resets_it() {
    let mut h = Harness::new();
    h.core.connect(h.now);
    h.events();
    let mut gaps = Vec::new();
    for _ in 0..4 {
        h.core.on_close(h.conn, 1006, h.now);
        h.drain();
        let start = h.now;
        loop {
            h.advance(1);
            if h.events().iter().any(|o| matches!(o, Output::Open { .. })) {
                break;
            }
        }
        gaps.push(h.now - start);
    }
    let expected = [10u64, 50, 100, 150];
    for (gap, base) in gaps.iter().zip(expected) {
        assert!((base * 8 / 10..=base * 12 / 10 + 1).contains(gap), "gap {gap} vs {base}: {gaps:?}");
    }
    h.core.on_open(h.conn, h.now);
    h.core.on_close(h.conn, 1006, h.now);
    h.drain();
    h.advance(13);
    assert!(h.events().iter().any(|o| matches!(o, Output::Open { .. })), "back to the first delay");
}

#[test]
fn no_reconnect_after_close_code_1000_or_disconnect() {
    let mut h = Harness::new();
    h.open();
    h.core.on_close(h.conn, 1000, h.now);
    h.advance(60_000);
    assert!(!h.events().iter().any(|o| matches!(o, Output::Open { .. })));
    let mut h = Harness::new();
    h.open();
    h.core.disconnect(h.now);
    h.drain();
    assert!(h.events().iter().any(|o| matches!(o, Output::Close { code: 1000, .. })));
    h.advance(60_000);
    assert!(!h.events().iter().any(|o| matches!(o, Output::Open { .. })));
}

#[test]
fn reconnect_rejoins_errored_channels_with_new_join_refs_and_fresh_params() {
    let mut h = Harness::new();
    h.open();
    let seen = std::rc::Rc::new(std::cell::Cell::new(0u64));
    let params_seen = seen.clone();
    let id = h.core.channel("room:rec", Box::new(move || json!({"last_seen_id": params_seen.get()})));
    h.core.join(id, h.now).unwrap();
    let join = h.sent().pop().unwrap();
    h.reply(&join[0], &join[1], "room:rec", "ok", json!({}));
    seen.set(41);
    h.core.on_close(h.conn, 1006, h.now);
    assert_eq!(h.core.channel_state(id), ChannelState::Errored);
    h.advance(15);
    h.core.on_open(h.conn, h.now);
    let rejoin = h.sent().pop().unwrap();
    assert_eq!(rejoin[3], json!("phx_join"));
    assert_ne!(rejoin[0], join[0]);
    assert_eq!(rejoin[4], json!({"last_seen_id": 41}), "params closure re-evaluated");
}

#[test]
fn server_phx_error_errors_the_channel_and_it_rejoins() {
    let mut h = Harness::new();
    h.open();
    let (id, join_ref) = h.joined("room:crash");
    h.server(json!(["stale", "stale", "room:crash", "phx_error", {"reason": "channel_crash"}]));
    assert_eq!(h.core.channel_state(id), ChannelState::Joined, "a stale phx_error is ignored");
    h.server(json!([join_ref, join_ref, "room:crash", "phx_error", {"reason": "channel_crash"}]));
    assert_eq!(h.core.channel_state(id), ChannelState::Errored);
    h.sent();
    h.advance(1_200);
    assert_eq!(h.sent().pop().unwrap()[3], json!("phx_join"));
    assert_eq!(h.core.channel_state(id), ChannelState::Joining);
}

#[test]
fn server_phx_close_closes_the_channel_and_its_pushes_time_out() {
    let mut h = Harness::new();
    h.open();
    let (id, join_ref) = h.joined("room:bye");
    let push = h.core.push(id, "a", Payload::Json(json!({})), 10_000, h.now);
    h.events();
    h.server(json!([join_ref, join_ref, "room:bye", "phx_close", {}]));
    let events = h.events();
    assert!(events.contains(&Output::Reply { push, reply: PushReply::Timeout }));
    assert!(events.contains(&Output::ChannelClosed { channel: id }));
    assert_eq!(h.core.channel_state(id), ChannelState::Closed);
}

#[test]
fn leave_sends_phx_leave_and_closes_locally_at_once() {
    let mut h = Harness::new();
    h.open();
    let (id, join_ref) = h.joined("room:leave");
    h.events();
    h.core.leave(id);
    let leave = h.sent().pop().unwrap();
    assert_eq!((leave[0].clone(), leave[3].clone()), (join_ref, json!("phx_leave")));
    assert_eq!(h.events(), vec![Output::ChannelClosed { channel: id }]);
    h.advance(60_000);
    assert!(h.sent().iter().all(|f| f[3] != json!("phx_join")), "a left channel never rejoins");
}

#[test]
fn leave_while_offline_is_buffered_and_sent_on_open() {
    let mut h = Harness::new();
    let id = h.channel("room:offline");
    h.core.join(id, h.now).unwrap();
    h.core.leave(id);
    assert!(h.sent().is_empty());
    h.open();
    let sent = h.sent();
    assert_eq!(sent.iter().map(|f| f[3].clone()).collect::<Vec<_>>(), vec![json!("phx_join"), json!("phx_leave")]);
}

#[test]
fn events_of_an_old_connection_are_ignored() {
    let mut h = Harness::new();
    h.open();
    let old = h.conn;
    h.core.on_close(old, 1006, h.now);
    h.advance(15);
    h.core.on_open(h.conn, h.now);
    h.events();
    h.core.on_close(old, 1006, h.now);
    assert_eq!(h.core.conn_state(), ConnState::Open, "a late close of the old transport changes nothing");
    h.core.on_frame(old, &WireFrame::Text(json!([null, "1", "phoenix", "phx_reply", {}]).to_string()), h.now);
    assert!(h.events().is_empty());
}

#[test]
fn can_push_needs_an_open_socket_and_a_joined_channel() {
    let mut h = Harness::new();
    h.open();
    let (id, _) = h.joined("room:cp");
    assert!(h.core.can_push(id));
    h.core.on_close(h.conn, 1006, h.now);
    assert!(!h.core.can_push(id));
    h.core.push(id, "queued", Payload::Json(json!({})), 10_000, h.now);
    h.advance(15);
    h.core.on_open(h.conn, h.now);
    let rejoin = h.sent().pop().unwrap();
    h.reply(&rejoin[0], &rejoin[1], "room:cp", "ok", json!({}));
    let sent = h.sent();
    assert_eq!(sent.last().unwrap()[3], json!("queued"), "a push made offline goes out after the rejoin");
    assert_eq!(sent.last().unwrap()[0], rejoin[0]);
}

#[test]
fn transport_close_while_joining_resets_the_join_and_rejoins_on_open() {
    let mut h = Harness::new();
    h.open();
    let id = h.channel("room:j");
    h.core.join(id, h.now).unwrap();
    let join = h.sent().pop().unwrap();
    h.core.on_close(h.conn, 1006, h.now);
    assert_eq!(h.core.channel_state(id), ChannelState::Errored);
    h.advance(11_000);
    assert!(
        !h.events().iter().any(|o| matches!(o, Output::ChannelErrored { reason, .. } if reason == "timeout")),
        "the old join no longer times out"
    );
    h.core.on_open(h.conn, h.now);
    let rejoin = h.sent().pop().unwrap();
    assert_ne!(rejoin[0], join[0]);
}

#[test]
fn a_binary_reply_resolves_its_push() {
    let mut h = Harness::new();
    h.open();
    let (id, join_ref) = h.joined("t:b");
    h.events();
    let push = h.core.push(id, "echo", Payload::Binary(vec![1, 2]), 10_000, h.now);
    let sent = h.sent();
    assert!(sent.is_empty(), "binary pushes go out as binary frames");
    let join_ref = join_ref.as_str().unwrap().to_owned();
    let mut reply = vec![1u8, join_ref.len() as u8, 1, 3, 2];
    reply.extend_from_slice(join_ref.as_bytes());
    reply.extend_from_slice(b"2t:bok");
    reply.extend_from_slice(&[9, 9]);
    h.core.on_frame(h.conn, &WireFrame::Binary(reply), h.now);
    assert_eq!(h.replies(), vec![PushReply::Ok(Payload::Binary(vec![9, 9]))]);
    let _ = push;
}

#[test]
fn fixed_schedules_for_custom_clients() {
    let mut options = SocketOptions::new("ws://h/socket/websocket");
    options.reconnect = Schedule::Fixed(100);
    let mut h = Harness::with(options);
    h.core.connect(h.now);
    h.events();
    h.core.on_close(h.conn, 1006, h.now);
    h.advance(79);
    assert!(!h.events().iter().any(|o| matches!(o, Output::Open { .. })));
    h.advance(42);
    assert!(h.events().iter().any(|o| matches!(o, Output::Open { .. })));
}

#[test]
fn next_deadline_tracks_the_earliest_timer() {
    let mut h = Harness::new();
    assert_eq!(h.core.next_deadline(), None);
    h.open();
    assert_eq!(h.core.next_deadline(), Some(h.now + 30_000), "the heartbeat");
    let id = h.channel("room:d");
    h.core.join(id, h.now).unwrap();
    h.core.push(id, "e", Payload::Json(json!({})), 500, h.now);
    assert_eq!(h.core.next_deadline(), Some(h.now + 500), "the push timeout");
}

#[test]
fn presence_buffers_diffs_until_the_state_of_the_current_join() {
    let mut presence = ChannelPresence::new();
    let diff = json!({"joins": {"bob": {"metas": [{"phx_ref": "b1"}]}}, "leaves": {}});
    assert!(presence.handle("presence_diff", &Payload::Json(diff), Some("1")).is_empty());
    let state = json!({"ada": {"metas": [{"phx_ref": "a1"}]}});
    presence.handle("presence_state", &Payload::Json(state), Some("1"));
    assert_eq!(presence.list(|key, _| key.to_owned()), vec!["ada", "bob"]);
    // A rejoin changes the join_ref: diffs wait for the new state again.
    let leave = json!({"joins": {}, "leaves": {"ada": {"metas": [{"phx_ref": "a1"}]}}});
    presence.handle("presence_diff", &Payload::Json(leave), Some("5"));
    assert_eq!(presence.list(|key, _| key.to_owned()), vec!["ada", "bob"], "held: no state for join 5 yet");
    let state = json!({"ada": {"metas": [{"phx_ref": "a1"}]}, "cy": {"metas": [{"phx_ref": "c1"}]}});
    presence.handle("presence_state", &Payload::Json(state), Some("5"));
    assert_eq!(presence.list(|key, _| key.to_owned()), vec!["cy"]);
    assert!(presence.handle("message:new", &Payload::Json(json!({})), Some("5")).is_empty());
}
