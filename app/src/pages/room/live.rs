//! The browser side of a room: connects the realtime client, and keeps [`RoomState`] in step with history, presence,
//! my pending messages and the connection.
//!
//! One room per page, so the live state is a thread-local (the browser is single-threaded).

use std::{cell::RefCell, rc::Rc};

use futures::StreamExt;
use leptos::{html, prelude::*};
use protocol::{
    chat::{HistoryReply, JoinReply, Message},
    events::{HISTORY_BEFORE, MESSAGE_NEW, TYPING},
    frame::Payload,
};
use serde_json::json;

use super::state::{Connection, Delivery, Line, RoomState, by_arrival, online_user};
use crate::{
    api::RoomPageData,
    realtime::{
        client::{ChannelEvent, ChannelHandle, Socket, SocketEvent},
        history::RoomHistory,
        presence::ChannelPresence,
        push::PushReply,
        socket::SocketOptions,
        transport::WebSocketConnector,
    },
};

/// How long a message push may wait (also while offline) before it shows as failed with a retry button.
const SEND_TIMEOUT_MS: u64 = 60_000;
/// `typing: true` is re-sent at most this often while someone keeps typing.
const TYPING_REFRESH_MS: f64 = 3_000.0;
/// `typing: false` goes out after this long without a keystroke.
const TYPING_IDLE_MS: u64 = 4_000;
/// Where a chosen random guest name is remembered, so a reload keeps the same identity.
const NAME_KEY: &str = "parley:name";

struct Outgoing {
    client_id: String,
    body: String,
    timestamp: i64,
    id: Option<u64>,
    delivery: Delivery,
}

struct Live {
    channel: ChannelHandle,
    _socket: Socket,
    history: Rc<RefCell<RoomHistory>>,
    presence: ChannelPresence,
    outbox: Vec<Outgoing>,
    typing: bool,
    typing_sent_at: f64,
    typing_generation: u64,
    loading_older: bool,
}

thread_local! {
    static LIVE: RefCell<Option<Live>> = const { RefCell::new(None) };
}

fn with_live<T>(f: impl FnOnce(&mut Live) -> T) -> Option<T> {
    LIVE.with(|live| live.borrow_mut().as_mut().map(f))
}

fn now() -> f64 {
    js_sys::Date::now()
}

fn random_id() -> String {
    (0..4)
        .map(|_| format!("{:08x}", (js_sys::Math::random() * f64::from(u32::MAX)) as u32))
        .collect::<Vec<_>>()
        .join("-")
}

fn socket_endpoint() -> String {
    let location = web_sys::window().map(|w| w.location());
    let host = location.as_ref().and_then(|l| l.host().ok()).unwrap_or_default();
    let secure = location.and_then(|l| l.protocol().ok()).is_some_and(|p| p.starts_with("https"));
    format!("{}://{host}/socket/websocket", if secure { "wss" } else { "ws" })
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window().and_then(|w| w.local_storage().ok().flatten())
}

/// Rebuilds the visible lines: stored history, then my messages not yet in it.
fn refresh(room: RoomState, live: &Live) {
    let history = live.history.borrow();
    let mut lines: Vec<Line> = history.messages().map(Line::stored).collect();
    let me = room.me.get_untracked();
    for out in &live.outbox {
        if out.id.is_some_and(|id| lines.iter().any(|l| l.id == Some(id))) {
            continue;
        }
        lines.push(Line {
            key: format!("c{}", out.client_id),
            id: out.id,
            client_id: Some(out.client_id.clone()),
            user: me.clone(),
            body: out.body.clone(),
            timestamp: out.timestamp,
            delivery: out.delivery.clone(),
        });
    }
    room.gaps.set(history.gaps().to_vec());
    room.lines.set(lines);
}

/// Tokens live 24 h; a laptop that sleeps for a day must still reconnect, so the page fetches a fresh one every
/// [`TOKEN_REFRESH_MS`] and the params closure sends the newest on every (re)connect.
const TOKEN_REFRESH_MS: u64 = 30 * 60 * 1000;

/// Asks the `socket_token` server function for a fresh token with a bare `fetch` (the generic server-function client
/// would add its whole request and streaming machinery to the WASM for this one call).
async fn fetch_socket_token() -> Option<String> {
    use leptos::server_fn::ServerFn;
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;

    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    let promise = web_sys::window()?.fetch_with_str_and_init(crate::api::SocketToken::PATH, &init);
    let response: web_sys::Response = JsFuture::from(promise).await.ok()?.dyn_into().ok()?;
    if !response.ok() {
        return None;
    }
    let text = JsFuture::from(response.text().ok()?).await.ok()?.as_string()?;
    serde_json::from_str::<Option<String>>(&text).ok().flatten()
}

fn keep_token_fresh(token: Rc<RefCell<Option<String>>>) {
    let refresh = move || {
        let token = token.clone();
        wasm_bindgen_futures::spawn_local(async move {
            if let Some(fresh) = fetch_socket_token().await {
                *token.borrow_mut() = Some(fresh);
            }
        });
    };
    let _ = set_interval_with_handle(refresh, std::time::Duration::from_millis(TOKEN_REFRESH_MS));
}

/// Connects and joins; called once after hydration.
pub fn start(room: RoomState, page: RoomPageData) {
    let mut me = page.user.clone();
    if page.token.is_some() {
        // The account's name; nothing to remember locally.
    } else if let Some(storage) = storage() {
        if page.user_chosen {
            let _ = storage.set_item(NAME_KEY, &me);
        } else if let Ok(Some(saved)) = storage.get_item(NAME_KEY) {
            if protocol::names::normalize_user_name(&saved).is_ok() {
                me = saved;
            }
        } else {
            let _ = storage.set_item(NAME_KEY, &me);
        }
    }
    room.me.set(me.clone());

    let mut options = SocketOptions::new(socket_endpoint());
    let user = me.clone();
    // A logged-in page connects with its account's token (refreshed well before it expires); guests by name.
    let token = Rc::new(RefCell::new(page.token.clone()));
    let current = token.clone();
    options.params = Box::new(move || match current.borrow().clone() {
        Some(token) => vec![("token".to_owned(), token)],
        None => vec![("user".to_owned(), user.clone())],
    });
    if page.token.is_some() {
        keep_token_fresh(token);
    }
    options.seed = (js_sys::Math::random() * 1e15) as u64;
    let socket = Socket::new(options, WebSocketConnector);
    let history = Rc::new(RefCell::new(RoomHistory::from_messages(page.messages)));
    let cursor = history.clone();
    let channel = socket.channel(
        &protocol::names::room_topic(&page.slug),
        Box::new(move || match cursor.borrow().last_seen_id() {
            Some(id) => json!({ "last_seen_id": id }),
            None => json!({}),
        }),
    );
    let mut socket_events = socket.events();
    let mut channel_events = channel.events();
    LIVE.with(|live| {
        *live.borrow_mut() = Some(Live {
            channel: channel.clone(),
            _socket: socket.clone(),
            history,
            presence: ChannelPresence::new(),
            outbox: Vec::new(),
            typing: false,
            typing_sent_at: 0.0,
            typing_generation: 0,
            loading_older: false,
        })
    });
    wasm_bindgen_futures::spawn_local(async move {
        while let Some(event) = socket_events.next().await {
            if let SocketEvent::Close(_) = event {
                room.connection.set(Connection::Reconnecting);
            }
        }
    });
    wasm_bindgen_futures::spawn_local(async move {
        while let Some(event) = channel_events.next().await {
            on_channel_event(room, event);
        }
    });
    socket.connect();
    let _ = channel.join();
}

fn on_channel_event(room: RoomState, event: ChannelEvent) {
    match event {
        ChannelEvent::Joined(reply) => {
            if let Ok(reply) = serde_json::from_value::<JoinReply>(reply) {
                room.me.set(reply.user.clone());
                with_live(|live| {
                    live.history.borrow_mut().on_join_reply(&reply);
                    refresh(room, live);
                });
            }
            room.connection.set(Connection::Online);
        }
        ChannelEvent::Errored(_) | ChannelEvent::JoinRefused(_) => room.connection.set(Connection::Reconnecting),
        ChannelEvent::Closed => {}
        ChannelEvent::Message { event, payload, join_ref } => {
            if event == MESSAGE_NEW {
                if let Payload::Json(value) = payload
                    && let Ok(message) = serde_json::from_value::<Message>(value)
                {
                    with_live(|live| {
                        let id = message.id;
                        live.history.borrow_mut().on_message(message);
                        live.outbox.retain(|o| o.id != Some(id));
                        refresh(room, live);
                    });
                }
                return;
            }
            with_live(|live| {
                live.presence.handle(&event, &payload, join_ref.as_deref());
                room.online.set(by_arrival(live.presence.list(online_user)));
            });
        }
    }
}

fn push_message(room: RoomState, client_id: String) {
    let Some((channel, body)) = with_live(|live| {
        let out = live.outbox.iter_mut().find(|o| o.client_id == client_id)?;
        out.delivery = Delivery::Pending;
        let body = out.body.clone();
        refresh(room, live);
        Some((live.channel.clone(), body))
    })
    .flatten() else {
        return;
    };
    let reply =
        channel.push(MESSAGE_NEW, Payload::Json(json!({"body": body, "client_id": client_id})), SEND_TIMEOUT_MS);
    wasm_bindgen_futures::spawn_local(async move {
        let reply = reply.await;
        with_live(|live| {
            let Some(out) = live.outbox.iter_mut().find(|o| o.client_id == client_id) else { return };
            match &reply {
                PushReply::Ok(_) => {
                    out.id = reply.ok_json().and_then(|r| r["id"].as_u64());
                    out.delivery = Delivery::Stored;
                }
                PushReply::Error(_) => out.delivery = Delivery::Failed(reply.reason().unwrap_or("refused").to_owned()),
                PushReply::Timeout => out.delivery = Delivery::Failed("no answer from the server".to_owned()),
            }
            refresh(room, live);
        });
    });
}

/// Sends a message (queued while offline; shown as pending until the server stored it).
pub fn send(room: RoomState, body: String) {
    let client_id = random_id();
    with_live(|live| {
        live.outbox.push(Outgoing {
            client_id: client_id.clone(),
            body: body.trim().to_owned(),
            timestamp: now() as i64,
            id: None,
            delivery: Delivery::Pending,
        });
    });
    stop_typing();
    push_message(room, client_id);
}

/// Sends a failed message again with the same client id (the server stores it at most once).
pub fn retry(room: RoomState, client_id: String) {
    push_message(room, client_id);
}

/// A keystroke in the composer: `typing: true` (throttled), and `typing: false` after a pause.
pub fn typed(_room: RoomState) {
    let Some((channel, send_now, generation)) = with_live(|live| {
        let send_now = !live.typing || now() - live.typing_sent_at > TYPING_REFRESH_MS;
        if send_now {
            live.typing = true;
            live.typing_sent_at = now();
        }
        live.typing_generation += 1;
        (live.channel.clone(), send_now, live.typing_generation)
    }) else {
        return;
    };
    if send_now {
        drop(channel.push(TYPING, Payload::Json(json!({"typing": true})), 10_000));
    }
    set_timeout(
        move || {
            if with_live(|live| live.typing && live.typing_generation == generation) == Some(true) {
                stop_typing();
            }
        },
        std::time::Duration::from_millis(TYPING_IDLE_MS),
    );
}

fn stop_typing() {
    if let Some(Some(channel)) = with_live(|live| {
        if !live.typing {
            return None;
        }
        live.typing = false;
        Some(live.channel.clone())
    }) {
        drop(channel.push(TYPING, Payload::Json(json!({"typing": false})), 10_000));
    }
}

/// Loads the page of messages before the oldest one shown, keeping the reader's scroll position.
pub fn load_older(room: RoomState, list: NodeRef<html::Div>) {
    let Some(Some((channel, before_id))) = with_live(|live| {
        if live.loading_older {
            return None;
        }
        let oldest = live.history.borrow().oldest_id()?;
        live.loading_older = true;
        Some((live.channel.clone(), oldest))
    }) else {
        return;
    };
    let reply = channel.push(HISTORY_BEFORE, Payload::Json(json!({"before_id": before_id, "limit": 50})), 10_000);
    wasm_bindgen_futures::spawn_local(async move {
        let reply = reply.await;
        let height_before = list.get_untracked().map_or(0, |e| e.scroll_height());
        with_live(|live| {
            live.loading_older = false;
            if let Some(page) = reply.ok_json().and_then(|v| serde_json::from_value::<HistoryReply>(v.clone()).ok()) {
                if page.messages.len() < 50 {
                    room.more_above.set(false);
                }
                live.history.borrow_mut().prepend(page.messages);
                refresh(room, live);
            }
        });
        request_animation_frame(move || {
            if let Some(element) = list.get_untracked() {
                element.set_scroll_top(element.scroll_top() + element.scroll_height() - height_before);
            }
        });
    });
}
