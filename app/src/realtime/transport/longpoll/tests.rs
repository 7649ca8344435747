//! The long-poll rules without I/O: answers, tokens and headers, batches and their acks.

#![allow(clippy::unwrap_used)]

use protocol::serializer::WireFrame;

use super::{Answer, BROKEN, FORBIDDEN, LongPoll, MAX_BATCH, Polled, SESSION_GONE, base64, long_poll_url};

fn answer(status: u16, token: Option<&str>, messages: &[&str]) -> Option<Answer> {
    Some(Answer {
        status,
        token: token.map(str::to_owned),
        messages: messages.iter().map(|m| (*m).to_owned()).collect(),
    })
}

/// A connection whose session is open with token `t1`.
fn open() -> LongPoll {
    let mut lp = LongPoll::new("http://h/socket/longpoll?vsn=2.0.0".into(), None);
    assert_eq!(lp.on_poll(answer(410, Some("t1"), &[])), Polled::Opened);
    lp
}

fn header<'a>(headers: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
}

#[test]
fn the_long_poll_url_follows_phoenix_js() {
    assert_eq!(
        long_poll_url("ws://example.com/socket/websocket?user=a&vsn=2.0.0"),
        "http://example.com/socket/longpoll?user=a&vsn=2.0.0"
    );
    assert_eq!(long_poll_url("wss://example.com/chat/websocket"), "https://example.com/chat/longpoll");
    assert_eq!(long_poll_url("ws://h/websocket/socket/websocket"), "http://h/websocket/socket/longpoll");
    assert_eq!(
        long_poll_url("ws://h/socket/websocket?next=%2Fwebsocket"),
        "http://h/socket/longpoll?next=%2Fwebsocket"
    );
}

#[test]
fn answers_parse_with_or_without_token_and_messages() {
    let full = Answer::parse(r#"{"status":200,"token":"T","messages":["[null,null,\"t\",\"e\",{}]"]}"#).unwrap();
    assert_eq!((full.status, full.token.as_deref(), full.messages.len()), (200, Some("T"), 1));
    let bare = Answer::parse(r#"{"status":403}"#).unwrap();
    assert_eq!((bare.status, bare.token, bare.messages.len()), (403, None, 0));
    assert!(Answer::parse("<html>502</html>").is_none());
    assert!(Answer::parse("").is_none());
    assert!(Answer::parse(r#"{"token":"T"}"#).is_none(), "no status");
    assert!(Answer::parse(r#"{"status":"200"}"#).is_none(), "not a number");
}

#[test]
fn the_first_poll_has_no_token_then_the_session_token_travels_as_param_and_header() {
    let mut lp = LongPoll::new("http://h/socket/longpoll?vsn=2.0.0".into(), Some("secret".into()));
    let first = lp.poll();
    assert_eq!(first.url, "http://h/socket/longpoll?vsn=2.0.0");
    assert_eq!(first.body, None);
    assert_eq!(header(&first.headers, "Accept"), Some("application/json"));
    assert_eq!(header(&first.headers, "X-Phoenix-AuthToken"), Some("secret"));
    assert_eq!(header(&first.headers, "X-Phoenix-Longpoll-Token"), None);
    assert_eq!(lp.on_poll(answer(410, Some("a b+c"), &[])), Polled::Opened);
    let next = lp.poll();
    assert_eq!(next.url, "http://h/socket/longpoll?vsn=2.0.0&token=a%20b%2Bc");
    assert_eq!(header(&next.headers, "X-Phoenix-Longpoll-Token"), Some("a b+c"));
    assert_eq!(header(&next.headers, "X-Phoenix-AuthToken"), Some("secret"));
}

#[test]
fn poll_statuses_follow_phoenix_js() {
    let mut lp = open();
    assert_eq!(lp.on_poll(answer(200, Some("t2"), &["a", "b"])), Polled::Messages(vec!["a".into(), "b".into()]));
    assert_eq!(lp.poll().url, "http://h/socket/longpoll?vsn=2.0.0&token=t2", "each answer's token is kept");
    assert_eq!(lp.on_poll(answer(204, Some("t2"), &[])), Polled::Messages(Vec::new()));
    assert!(!lp.is_closed());
    assert_eq!(lp.on_poll(answer(410, Some("t3"), &[])), Polled::Failed(SESSION_GONE), "a 410 with a token");
    assert!(lp.is_closed());

    assert_eq!(open().on_poll(answer(403, None, &[])), Polled::Failed(FORBIDDEN));
    assert_eq!(open().on_poll(answer(500, None, &[])), Polled::Failed(BROKEN));
    assert_eq!(open().on_poll(answer(0, None, &[])), Polled::Failed(BROKEN));
    assert_eq!(open().on_poll(None), Polled::Failed(BROKEN), "no answer counts as status 0");
    assert_eq!(open().on_poll(answer(418, None, &[])), Polled::Failed(BROKEN));
    assert_eq!((SESSION_GONE.code, FORBIDDEN.code, BROKEN.code), (3410, 1008, 1011));
}

#[test]
fn a_refused_first_poll_is_forbidden() {
    let mut lp = LongPoll::new("http://h/socket/longpoll".into(), None);
    assert_eq!(lp.on_poll(answer(403, None, &[])), Polled::Failed(FORBIDDEN));
}

#[test]
fn sends_are_posted_as_ndjson_one_request_at_a_time() {
    let mut lp = open();
    assert!(lp.next_post().is_none(), "nothing to send");
    lp.send(WireFrame::Text("one".into()));
    lp.send(WireFrame::Text("two".into()));
    let post = lp.next_post().unwrap();
    assert_eq!(post.body.as_deref(), Some("one\ntwo"));
    assert_eq!(header(&post.headers, "Content-Type"), Some("application/x-ndjson"));
    assert_eq!(header(&post.headers, "X-Phoenix-Longpoll-Token"), Some("t1"));
    assert_eq!(post.url, "http://h/socket/longpoll?vsn=2.0.0&token=t1");

    lp.send(WireFrame::Text("three".into()));
    lp.send(WireFrame::Text("four".into()));
    assert!(lp.next_post().is_none(), "buffered while the POST is unanswered");
    assert_eq!(lp.queued(), 2);
    lp.on_post(answer(200, None, &[])).unwrap();
    assert_eq!(lp.next_post().unwrap().body.as_deref(), Some("three\nfour"), "sent after the ack, in order");
    lp.on_post(answer(200, None, &[])).unwrap();
    assert!(lp.next_post().is_none());
}

#[test]
fn batches_carry_at_most_a_hundred_lines() {
    let mut lp = open();
    for i in 0..(2 * MAX_BATCH + 5) {
        lp.send(WireFrame::Text(i.to_string()));
    }
    let mut posted = Vec::new();
    while let Some(post) = lp.next_post() {
        let body = post.body.unwrap();
        let lines: Vec<String> = body.split('\n').map(str::to_owned).collect();
        assert!(lines.len() <= MAX_BATCH);
        posted.push(lines.len());
        assert!(lp.next_post().is_none(), "the next batch waits for this one's ack");
        lp.on_post(answer(200, None, &[])).unwrap();
    }
    assert_eq!(posted, vec![100, 100, 5]);
}

#[test]
fn a_refused_post_ends_the_connection_and_drops_what_waits() {
    let mut lp = open();
    lp.send(WireFrame::Text("one".into()));
    let _ = lp.next_post().unwrap();
    lp.send(WireFrame::Text("two".into()));
    assert_eq!(lp.on_post(answer(410, None, &[])), Err(BROKEN));
    assert!(lp.is_closed());
    assert_eq!(lp.queued(), 0);
    lp.send(WireFrame::Text("three".into()));
    assert!(lp.next_post().is_none());

    let mut lp = open();
    lp.send(WireFrame::Text("one".into()));
    let _ = lp.next_post().unwrap();
    assert_eq!(lp.on_post(None), Err(BROKEN), "no answer");
}

#[test]
fn binary_frames_are_base64_lines() {
    let mut lp = open();
    lp.send(WireFrame::Binary(vec![0, 1, 2, 255]));
    assert_eq!(lp.next_post().unwrap().body.as_deref(), Some("AAEC/w=="));
}

#[test]
fn base64_matches_btoa() {
    assert_eq!(base64(b"1234", false), "MTIzNA");
    assert_eq!(base64(b"1234", true), "MTIzNA==");
    assert_eq!(base64(b"", true), "");
    assert_eq!(base64(b"f", true), "Zg==");
    assert_eq!(base64(b"fo", true), "Zm8=");
    assert_eq!(base64(b"foo", true), "Zm9v");
    assert_eq!(base64(b"foob", false), "Zm9vYg");
    assert_eq!(base64(&[0xfb, 0xff], true), "+/8=");
}
