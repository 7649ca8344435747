//! The room page's reactive state ([`RoomState`], what the views render) and the pure rules that shape it: lines,
//! who is online, labels, the clock.

use leptos::prelude::*;
use protocol::{
    chat::{MemberStatus, Message},
    presence::Presence,
};

use crate::browser::local_offset_minutes;

/// The socket's state as the banner shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// First connection in progress (also what the server renders).
    Connecting,
    /// Joined and live.
    Online,
    /// Lost the connection; retrying.
    Reconnecting,
}

/// Delivery state of one of my messages.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// Stored by the server (has an id).
    Stored,
    /// Sent or queued, no ack yet.
    Pending,
    /// Refused or timed out; can be retried with the same client id.
    Failed(String),
}

/// One line of the message list.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Stable key: `m<id>` when stored, `c<client_id>` while pending.
    pub key: String,
    /// Server id once stored.
    pub id: Option<u64>,
    /// Client id of my own messages.
    pub client_id: Option<String>,
    pub user: String,
    /// Text, never HTML: rendered escaped.
    pub body: String,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    pub delivery: Delivery,
}

impl Line {
    /// A stored message.
    pub fn stored(message: &Message) -> Self {
        Self {
            key: format!("m{}", message.id),
            id: Some(message.id),
            client_id: None,
            user: message.user.clone(),
            body: message.body.clone(),
            timestamp: message.timestamp,
            delivery: Delivery::Stored,
        }
    }
}

/// A person in the room.
#[derive(Debug, Clone, PartialEq)]
pub struct OnlineUser {
    /// The presence key.
    pub name: String,
    /// Earliest `online_at` over their connections.
    pub since: i64,
    /// Typing in any tab.
    pub typing: bool,
    /// Open connections (tabs) under this name.
    pub tabs: usize,
}

/// Who is online, from a presence entry (metas without the chat fields count as tabs, nothing more).
pub fn online_user(name: &str, presence: &Presence) -> OnlineUser {
    let statuses = || presence.metas.iter().filter_map(MemberStatus::from_meta);
    let since = statuses().map(|s| s.online_at).min().unwrap_or(0);
    let typing = statuses().any(|s| s.typing);
    OnlineUser { name: name.to_owned(), since, typing, tabs: presence.metas.len() }
}

/// Who's online in order of arrival, then name. An insertion sort: the list is short, and the standard library's
/// sorts would add several KB to the WASM for this one call.
pub fn by_arrival(users: Vec<OnlineUser>) -> Vec<OnlineUser> {
    let mut sorted: Vec<OnlineUser> = Vec::with_capacity(users.len());
    for user in users {
        let at = sorted.partition_point(|o| (o.since, &o.name) <= (user.since, &user.name));
        sorted.insert(at, user);
    }
    sorted
}

/// "alice is typing…", "alice and bob are typing…", "3 people are typing…" (never including me).
pub fn typing_label(online: &[OnlineUser], me: &str) -> Option<String> {
    let typing: Vec<&str> = online.iter().filter(|u| u.typing && u.name != me).map(|u| u.name.as_str()).collect();
    match typing.as_slice() {
        [] => None,
        [one] => Some(format!("{one} is typing…")),
        [a, b] => Some(format!("{a} and {b} are typing…")),
        many => Some(format!("{} people are typing…", many.len())),
    }
}

/// `HH:MM` of a timestamp, in the browser's time zone once `local` is set (UTC before, as on the server, so the
/// hydrated page matches the server-rendered one).
pub fn clock(timestamp: i64, local: bool) -> String {
    let offset = if local { local_offset_minutes(timestamp).unwrap_or(0) } else { 0 };
    let minutes = timestamp.div_euclid(60_000) + offset;
    format!("{:02}:{:02}", minutes.div_euclid(60).rem_euclid(24), minutes.rem_euclid(60))
}

/// Another room this browser visited, as the sidebar shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomLink {
    pub slug: String,
    /// Messages by others since I last read the room (capped by the server at `MAX_UNREAD`).
    pub unread: u32,
}

/// Everything the room page's components read and write.
#[derive(Clone, Copy)]
pub struct RoomState {
    /// My display name.
    pub me: RwSignal<String>,
    /// Message lines, oldest first.
    pub lines: RwSignal<Vec<Line>>,
    /// Ids with a "some messages were skipped" marker before them.
    pub gaps: RwSignal<Vec<u64>>,
    /// Who is online.
    pub online: RwSignal<Vec<OnlineUser>>,
    /// Connection state for the banner.
    pub connection: RwSignal<Connection>,
    /// Older messages may exist (scrolling up loads them).
    pub more_above: RwSignal<bool>,
    /// New messages arrived while the reader was scrolled up.
    pub unseen: RwSignal<usize>,
    /// Times are shown in the browser's zone (set after hydration).
    pub local_time: RwSignal<bool>,
    /// Other rooms this browser visited (filled in the browser).
    pub rooms: RwSignal<Vec<RoomLink>>,
    /// Notifications for messages that mention me (opted in by a click).
    pub notify: RwSignal<bool>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use protocol::presence::Meta;

    use super::*;

    #[test]
    fn by_arrival_orders_by_since_then_name() {
        let online = |name: &str, since| OnlineUser { name: name.to_owned(), since, typing: false, tabs: 1 };
        let sorted = by_arrival(vec![online("zoe", 5), online("bob", 9), online("amy", 5), online("cat", 1)]);
        let names: Vec<_> = sorted.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["cat", "amy", "zoe", "bob"]);
    }

    #[test]
    fn online_user_takes_the_earliest_tab_and_any_typing() {
        let presence = Presence::new(vec![
            Meta::with_ref("a").with("online_at", 200).with("typing", false),
            Meta::with_ref("b").with("online_at", 100).with("typing", true),
        ]);
        assert_eq!(online_user("ada", &presence), OnlineUser { name: "ada".into(), since: 100, typing: true, tabs: 2 });
    }

    #[test]
    fn typing_label_names_others_only() {
        let user = |name: &str, typing| OnlineUser { name: name.into(), since: 0, typing, tabs: 1 };
        assert_eq!(typing_label(&[user("me", true)], "me"), None);
        assert_eq!(typing_label(&[user("alice", true), user("me", true)], "me").unwrap(), "alice is typing…");
        assert_eq!(typing_label(&[user("a", true), user("b", true)], "me").unwrap(), "a and b are typing…");
        assert_eq!(
            typing_label(&[user("a", true), user("b", true), user("c", true)], "me").unwrap(),
            "3 people are typing…"
        );
    }

    #[test]
    fn clock_is_utc_until_local_time_is_known() {
        assert_eq!(clock(1_763_780_000_000, false), "02:53");
        assert_eq!(clock(0, false), "00:00");
    }
}
