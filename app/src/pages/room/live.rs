//! The live room in the browser: connects the realtime client, feeds what arrives to the [`RoomSession`], sends
//! what the session returns, serves the views' actions, and publishes the session into [`RoomState`].
//!
//! Glue only: every rule lives in the session (and in `reading` and `visited`), which are tested natively. What is
//! here needs a browser: the socket, timers, the token refresh over `fetch`, the document title while the
//! tab is hidden, notifications, and `watch` (the sidebar's other rooms on the same socket).

use std::{
    cell::{Cell, RefCell},
    rc::Rc,
    time::Duration,
};

use futures::{StreamExt, channel::mpsc::UnboundedReceiver};
use leptos::{prelude::*, server_fn::ServerFn};
use protocol::{
    chat::{JoinReply, Message, Typing},
    typed::{Event, from_json, from_payload},
};
use serde_json::Value;

use super::{
    actions::Action,
    page::room_title,
    reading::mentions,
    session::{RoomSession, TYPING_IDLE_MS},
    state::{Connection, RoomState},
    watch,
};
use crate::{
    api::RoomPageData,
    browser,
    realtime::{
        client::{ChannelEvent, ChannelHandle, Socket, SocketEvent},
        socket::SocketOptions,
        transport::BrowserConnector,
    },
};

/// How long a message push may wait (also while offline) before it shows as failed with a retry button.
const SEND_TIMEOUT_MS: u64 = 60_000;
/// How long the WebSocket may take to open and answer a heartbeat before the page falls back to long poll (what
/// Phoenix's generator uses); the dashboard uses the same.
pub(crate) const LONG_POLL_FALLBACK_MS: u64 = 2_500;
/// How long a typing or history push may wait for its reply.
const REQUEST_TIMEOUT_MS: u64 = 10_000;
/// Tokens live 24 h; a laptop that sleeps for a day must still reconnect, so the page fetches a fresh one this often
/// and the next (re)connect sends the newest.
pub(crate) const TOKEN_REFRESH: Duration = Duration::from_secs(30 * 60);

/// The session shared by the socket's callbacks, the event loop and the actions.
type Shared = Rc<RefCell<RoomSession>>;

/// Connects and joins, then serves the views' `requests`; called once after hydration.
pub(super) fn start(room: RoomState, mut requests: UnboundedReceiver<Action>, page: RoomPageData) {
    let session: Shared = Rc::new(RefCell::new(RoomSession::new(&page)));
    let mut options = SocketOptions::new(browser::socket_endpoint());
    let params = session.clone();
    options.params = Box::new(move || params.borrow().connect_params());
    options.seed = browser::random_seed();
    options.long_poll_fallback_ms = Some(LONG_POLL_FALLBACK_MS);
    if session.borrow().has_token() {
        keep_token_fresh(session.clone());
    }
    let socket = Socket::new(options, BrowserConnector);
    watch::start(&socket, room, &page);
    // What was read here is recorded only while the tab is visible (and once it is shown again), so the sidebar of
    // another room counts what arrived while this one was in the background.
    let read_session = session.clone();
    let read_slug = page.slug.clone();
    let mark_read = move || {
        if let Some(seen) = read_session.borrow().join_params().last_seen_id {
            watch::saw(&read_slug, seen);
        }
    };
    let attention = Attention::new(&page.slug, mark_read.clone());
    let cursor = session.clone();
    let channel = socket.channel(
        &protocol::names::room_topic(&page.slug),
        Box::new(move || serde_json::to_value(cursor.borrow().join_params()).unwrap_or(Value::Null)),
    );
    let mut socket_events = socket.events();
    let mut channel_events = channel.events();
    let transport = socket.clone();
    wasm_bindgen_futures::spawn_local(async move {
        while let Some(event) = socket_events.next().await {
            match event {
                SocketEvent::Open => browser::mark_room_transport(transport.transport().name()),
                SocketEvent::Close(_) => room.connection.set(Connection::Reconnecting),
            }
        }
    });
    let events_session = session.clone();
    wasm_bindgen_futures::spawn_local(async move {
        while let Some(event) = channel_events.next().await {
            // Only a join or a new message moves what has been read here (presence events do not).
            let read = match &event {
                ChannelEvent::Joined(_) => true,
                ChannelEvent::Message { event, .. } => event == Message::EVENT,
                _ => false,
            };
            on_channel_event(room, &events_session, &attention, event);
            if read && !browser::page_hidden() {
                mark_read();
            }
        }
    });
    let live = Live { room, slug: page.slug.clone(), session, channel: channel.clone(), _socket: socket.clone() };
    wasm_bindgen_futures::spawn_local(async move {
        while let Some(action) = requests.next().await {
            live.act(action);
        }
    });
    socket.connect();
    let _ = channel.join();
}

/// Publishes the session's lines into the signals the views read. Only the lines change with every message: the
/// other signals are set where they can change (a join names me and may mark a gap; an older page may end the
/// history), because setting a signal re-renders its readers even to an equal value.
fn publish(room: RoomState, session: &RoomSession) {
    room.lines.set(session.lines());
}

/// The document title's unread count while the tab is hidden, and notifications for mentions.
#[derive(Clone)]
struct Attention {
    title: Rc<str>,
    slug: Rc<str>,
    unread: Rc<Cell<u32>>,
}

impl Attention {
    /// Starts counting for the room `slug`; the count clears, and `on_shown` runs, when the tab is shown again.
    fn new(slug: &str, on_shown: impl Fn() + 'static) -> Self {
        let title = room_title(slug).into();
        let attention = Self { title, slug: slug.into(), unread: Rc::new(Cell::new(0)) };
        let shown = attention.clone();
        let _ = window_event_listener(leptos::ev::visibilitychange, move |_| {
            if !browser::page_hidden() {
                shown.unread.set(0);
                browser::set_title(&shown.title);
                on_shown();
            }
        });
        attention
    }

    /// Someone else's message arrived.
    fn arrived(&self, message: &Message, me: &str, notify: bool) {
        if !browser::page_hidden() {
            return;
        }
        self.unread.set(self.unread.get() + 1);
        browser::set_title(&format!("({}) {}", self.unread.get(), self.title));
        if notify && mentions(&message.body, me) {
            browser::notify(&format!("{} in #{}", message.user, self.slug), &message.body);
        }
    }
}

fn on_channel_event(room: RoomState, session: &Shared, attention: &Attention, event: ChannelEvent) {
    match event {
        ChannelEvent::Joined(reply) => {
            if let Ok(reply) = from_json::<JoinReply>(&reply) {
                let mut session = session.borrow_mut();
                session.joined(&reply);
                room.me.set(session.me().to_owned());
                room.gaps.set(session.gaps());
                publish(room, &session);
            }
            room.connection.set(Connection::Online);
        }
        ChannelEvent::Errored(_) | ChannelEvent::JoinRefused(_) => room.connection.set(Connection::Reconnecting),
        ChannelEvent::Closed => {}
        ChannelEvent::Message { event, payload, join_ref } => {
            let mut session = session.borrow_mut();
            if event == Message::EVENT {
                if let Ok(message) = from_payload::<Message>(&payload) {
                    if message.user != session.me() {
                        attention.arrived(&message, session.me(), room.notify.get_untracked());
                    }
                    session.message(message);
                    publish(room, &session);
                }
            } else if let Some(online) = session.presence(&event, &payload, join_ref.as_deref()) {
                room.online.set(online);
            }
        }
    }
}

/// Everything an action needs.
#[derive(Clone)]
struct Live {
    room: RoomState,
    /// The room's slug, for the read marks of [`watch`].
    slug: String,
    session: Shared,
    channel: ChannelHandle,
    _socket: Socket,
}

impl Live {
    fn act(&self, action: Action) {
        match action {
            Action::Send(body) => {
                let client_id = browser::random_id();
                let (stop, request) = {
                    let mut session = self.session.borrow_mut();
                    let stop = session.stop_typing();
                    let request = session.compose(&body, client_id.clone(), browser::now_ms() as i64);
                    publish(self.room, &session);
                    (stop, request)
                };
                self.typing(stop);
                if let Some(request) = request {
                    self.deliver(client_id, request);
                }
            }
            Action::Retry(client_id) => {
                let request = self.session.borrow_mut().retry(&client_id);
                if let Some(request) = request {
                    publish(self.room, &self.session.borrow());
                    self.deliver(client_id, request);
                }
            }
            Action::Typed => {
                let keystroke = self.session.borrow_mut().keystroke(browser::now_ms());
                self.typing(keystroke.push);
                let live = self.clone();
                set_timeout(
                    move || {
                        let idle = live.session.borrow_mut().typing_idle(keystroke.generation);
                        live.typing(idle);
                    },
                    Duration::from_millis(TYPING_IDLE_MS),
                );
            }
            Action::LoadOlder => {
                let Some(request) = self.session.borrow_mut().older_request() else { return };
                let reply = self.channel.request(&request, REQUEST_TIMEOUT_MS);
                let (room, session) = (self.room, self.session.clone());
                wasm_bindgen_futures::spawn_local(async move {
                    let page = reply.await.ok();
                    let mut session = session.borrow_mut();
                    session.older_page(page);
                    room.more_above.set(session.more_above());
                    publish(room, &session);
                });
            }
        }
    }

    /// Pushes a typing change; its reply carries nothing, so nobody waits for it.
    fn typing(&self, typing: Option<Typing>) {
        if let Some(typing) = typing {
            drop(self.channel.request(&typing, REQUEST_TIMEOUT_MS));
        }
    }

    /// Pushes one of my messages and records the server's answer.
    fn deliver(&self, client_id: String, request: protocol::chat::NewMessage) {
        let reply = self.channel.request(&request, SEND_TIMEOUT_MS);
        let (room, session, slug) = (self.room, self.session.clone(), self.slug.clone());
        wasm_bindgen_futures::spawn_local(async move {
            let outcome = reply.await;
            // My own message is read, even if I leave before its broadcast comes back.
            if let Ok(stored) = &outcome {
                watch::saw(&slug, stored.id);
            }
            let mut session = session.borrow_mut();
            session.sent(&client_id, outcome);
            publish(room, &session);
        });
    }
}

/// Asks the `socket_token` server function for a fresh token.
pub(crate) async fn fetch_socket_token() -> Option<String> {
    let text = browser::post(crate::api::SocketToken::PATH).await?;
    serde_json::from_str::<Option<String>>(&text).ok().flatten()
}

fn keep_token_fresh(session: Shared) {
    let refresh = move || {
        let session = session.clone();
        wasm_bindgen_futures::spawn_local(async move {
            if let Some(fresh) = fetch_socket_token().await {
                session.borrow_mut().set_token(fresh);
            }
        });
    };
    let _ = set_interval_with_handle(refresh, TOKEN_REFRESH);
}
