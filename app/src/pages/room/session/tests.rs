//! The room session's rules, driven by hand: identity and connect params, the join cursor, pending messages and
//! retries, the typing throttle, older pages and presence.

use protocol::{
    chat::{HistoryReply, JoinReply, Message, NewMessage, NewMessageReply, Typing},
    frame::Payload,
};
use serde_json::json;

use super::*;

fn message(id: u64, user: &str, body: &str) -> Message {
    Message { id, user: user.into(), body: body.into(), timestamp: 1_000 * id as i64 }
}

fn page(user: &str, token: Option<&str>, messages: Vec<Message>) -> RoomPageData {
    RoomPageData {
        slug: "lobby".into(),
        valid: true,
        user: user.into(),
        token: token.map(Into::into),
        name_refused: None,
        login_required: false,
        messages,
        now: 0,
        rename_problem: None,
    }
}

fn keys(session: &RoomSession) -> Vec<String> {
    session.lines().into_iter().map(|l| l.key).collect()
}

#[test]
fn guests_connect_by_the_name_the_server_gave_accounts_by_their_freshest_token() {
    let guest = RoomSession::new(&page("quiet-otter", None, vec![]));
    assert_eq!(guest.connect_params(), [("user".to_owned(), "quiet-otter".to_owned())]);
    assert!(!guest.has_token());
    let mut account = RoomSession::new(&page("Ada", Some("t1"), vec![]));
    assert_eq!(account.connect_params(), [("token".to_owned(), "t1".to_owned())]);
    account.set_token("t2".into());
    assert_eq!(account.connect_params(), [("token".to_owned(), "t2".to_owned())], "a refreshed token is used next");
}

#[test]
fn the_join_reply_names_me_and_the_cursor_follows_everything_seen() {
    let mut session = RoomSession::new(&page("guest", None, vec![message(1, "a", "one"), message(2, "a", "two")]));
    assert_eq!(session.join_params().last_seen_id, Some(2));
    session.joined(&JoinReply { user: "guest-2".into(), messages: vec![message(3, "b", "three")], recovered: true });
    assert_eq!(session.me(), "guest-2");
    session.message(message(4, "b", "four"));
    assert_eq!(session.join_params().last_seen_id, Some(4));
    assert_eq!(keys(&session), ["m1", "m2", "m3", "m4"]);
    let empty = RoomSession::new(&page("guest", None, vec![]));
    assert_eq!(empty.join_params().last_seen_id, None);
}

#[test]
fn my_message_is_pending_then_stored_and_shown_once() {
    let mut session = RoomSession::new(&page("me", None, vec![message(1, "a", "hi")]));
    let request = session.compose("  hello  ", "c1".into(), 5).unwrap();
    assert_eq!(request, NewMessage { body: "hello".into(), client_id: Some("c1".into()) });
    let pending = session.lines().pop().unwrap();
    assert_eq!((pending.key.as_str(), pending.delivery, pending.user.as_str()), ("cc1", Delivery::Pending, "me"));
    session.sent("c1", Ok(NewMessageReply { id: 2 }));
    assert_eq!(session.lines().last().unwrap().delivery, Delivery::Stored);
    session.message(message(2, "me", "hello"));
    assert_eq!(keys(&session), ["m1", "m2"], "the broadcast replaces the pending line");
    assert!(session.compose("   ", "c2".into(), 6).is_none(), "blank messages are not sent");
}

#[test]
fn a_broadcast_before_the_ack_still_shows_the_message_once() {
    let mut session = RoomSession::new(&page("me", None, vec![]));
    session.compose("hello", "c1".into(), 5).unwrap();
    session.message(message(1, "me", "hello"));
    session.sent("c1", Ok(NewMessageReply { id: 1 }));
    assert_eq!(keys(&session), ["m1"]);
}

#[test]
fn a_refused_message_can_be_retried_with_the_same_client_id() {
    let mut session = RoomSession::new(&page("me", None, vec![]));
    session.compose("again", "c1".into(), 5).unwrap();
    session.sent("c1", Err(PushFailure::Refused("rate limited".into())));
    assert_eq!(session.lines()[0].delivery, Delivery::Failed("rate limited".into()));
    session.sent("c9", Err(PushFailure::Timeout));
    let retry = session.retry("c1").unwrap();
    assert_eq!(retry, NewMessage { body: "again".into(), client_id: Some("c1".into()) });
    assert_eq!(session.lines()[0].delivery, Delivery::Pending);
    session.sent("c1", Err(PushFailure::Timeout));
    assert_eq!(session.lines()[0].delivery, Delivery::Failed("no answer from the server".into()));
    assert!(session.retry("unknown").is_none());
}

#[test]
fn typing_is_sent_once_refreshed_while_it_lasts_and_stopped_after_a_pause() {
    let mut session = RoomSession::new(&page("me", None, vec![]));
    let first = session.keystroke(0.0);
    assert_eq!(first.push, Some(Typing { typing: true }));
    let second = session.keystroke(1_000.0);
    assert_eq!(second.push, None, "no second push inside the refresh interval");
    assert_eq!(session.typing_idle(first.generation), None, "a later keystroke keeps it alive");
    let refresh = session.keystroke(1_000.0 + TYPING_REFRESH_MS + 1.0);
    assert_eq!(refresh.push, Some(Typing { typing: true }));
    assert_eq!(session.typing_idle(refresh.generation), Some(Typing { typing: false }));
    assert_eq!(session.typing_idle(refresh.generation), None, "stopped once");
    session.keystroke(20_000.0);
    assert_eq!(session.stop_typing(), Some(Typing { typing: false }), "sending a message stops typing");
    assert_eq!(session.stop_typing(), None);
}

#[test]
fn older_pages_load_one_at_a_time_until_the_start() {
    let latest: Vec<Message> = (51..=100).map(|id| message(id, "a", "x")).collect();
    let mut session = RoomSession::new(&page("me", None, latest));
    assert!(session.more_above());
    let request = session.older_request().unwrap();
    assert_eq!((request.before_id, request.limit), (51, Some(protocol::chat::HISTORY_DEFAULT_LIMIT)));
    assert!(session.older_request().is_none(), "one page at a time");
    session.older_page(Some(HistoryReply { messages: (1..=50).map(|id| message(id, "a", "x")).collect() }));
    assert!(session.more_above(), "a full page: there may be more");
    assert_eq!(session.older_request().unwrap().before_id, 1);
    session.older_page(None);
    assert!(session.more_above(), "a failed page is asked for again");
    session.older_request().unwrap();
    session.older_page(Some(HistoryReply { messages: vec![] }));
    assert!(!session.more_above());
    assert!(session.older_request().is_none());
    let short = RoomSession::new(&page("me", None, vec![message(1, "a", "x")]));
    assert!(!short.more_above(), "a room with fewer than a page has nothing older");
}

#[test]
fn presence_events_update_who_is_online_other_events_do_not() {
    let mut session = RoomSession::new(&page("me", None, vec![]));
    let state = Payload::Json(json!({
        "bob": {"metas": [{"online_at": 20, "typing": true, "phx_ref": "b1"}]},
        "amy": {"metas": [{"online_at": 10, "typing": false, "phx_ref": "a1"}]}
    }));
    let online = session.presence("presence_state", &state, Some("1")).unwrap();
    let names: Vec<&str> = online.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["amy", "bob"], "in order of arrival");
    assert!(online[1].typing);
    let leave = Payload::Json(json!({"joins": {}, "leaves": {"bob": {"metas": [{"phx_ref": "b1"}]}}}));
    let online = session.presence("presence_diff", &leave, Some("1")).unwrap();
    assert_eq!(online.len(), 1);
    assert!(session.presence("message:new", &Payload::Json(json!({})), Some("1")).is_none());
}
