//! The live board in the browser: one socket with the operator's token, `admin:stats` joined on it, the join
//! reply's history and every `stats` sample into the [`Board`]. Glue only: the board's rules are in `board`.

use std::{cell::RefCell, rc::Rc};

use futures::StreamExt;
use leptos::prelude::*;
use protocol::{
    admin::{NodeStats, STATS_TOPIC, StatsJoinReply},
    frame::Payload,
    typed::Event,
};
use serde_json::{Map, Value};

use super::board::Board;
use crate::{
    browser,
    pages::room::live::{LONG_POLL_FALLBACK_MS, TOKEN_REFRESH, fetch_socket_token},
    realtime::{
        client::{ChannelEvent, Socket},
        socket::SocketOptions,
        transport::BrowserConnector,
    },
};

/// Connects and joins; the board's note says what it is waiting for while it is empty.
pub(super) fn start(token: String, board: RwSignal<Board>) {
    let mut options = SocketOptions::new(browser::socket_endpoint());
    // Tokens live 24 h and a dashboard stays open for days: as the room page does, a fresh token every 30 minutes
    // for the next reconnect.
    let token = Rc::new(RefCell::new(token));
    let current = token.clone();
    options.params = Box::new(move || vec![("token".to_owned(), current.borrow().clone())]);
    let refresh = move || {
        let token = token.clone();
        wasm_bindgen_futures::spawn_local(async move {
            if let Some(fresh) = fetch_socket_token().await {
                *token.borrow_mut() = fresh;
            }
        });
    };
    let _ = set_interval_with_handle(refresh, TOKEN_REFRESH);
    options.seed = browser::random_seed();
    options.long_poll_fallback_ms = Some(LONG_POLL_FALLBACK_MS);
    let socket = Socket::new(options, BrowserConnector);
    let channel = socket.channel(STATS_TOPIC, Box::new(|| Value::Object(Map::new())));
    let mut events = channel.events();
    socket.connect();
    let _ = channel.join();
    wasm_bindgen_futures::spawn_local(async move {
        // The socket and channel live as long as this loop, which is the page's life.
        let _alive = (socket, channel);
        while let Some(event) = events.next().await {
            match event {
                // Read by hand (`read`): derived deserializers would cost the shared WASM more.
                ChannelEvent::Joined(reply) => match StatsJoinReply::read(&reply) {
                    Some(reply) => board.update(|board| board.joined(reply, browser::now_ms())),
                    None => board.update(|board| board.note = "The server's answer could not be read."),
                },
                // A rejoin refused after a revoke: what was shown goes too.
                ChannelEvent::JoinRefused(_) => board.update(|board| {
                    board.nodes.clear();
                    board.note = "This account is not an operator (any more).";
                }),
                ChannelEvent::Message { event, payload: Payload::Json(sample), .. } if event == NodeStats::EVENT => {
                    if let Some(sample) = NodeStats::read(&sample) {
                        board.update(|board| board.add(sample, browser::now_ms()));
                    }
                }
                _ => {}
            }
        }
    });
}
