//! The sidebar's other rooms, live (browser only): each room this browser visited is watched over the page's socket
//! (`room:<slug>` joined with `{"watch": true, "last_seen_id": …}`: no presence there, no history, only its
//! `message:new` broadcasts), so its unread count starts from the server's count and moves with every message.
//!
//! The rooms and what was read in each live in `localStorage` ([`Visited`]); this room's newest id is written there as
//! messages arrive, so another tab's sidebar counts from what was read here.

use futures::StreamExt;
use leptos::prelude::*;
use protocol::{
    chat::{JoinParams, Message},
    names::room_topic,
    typed::{Event, from_payload},
};
use serde_json::Value;

use super::{
    state::{RoomLink, RoomState},
    visited::{STORAGE_KEY, Visited},
};
use crate::{
    api::RoomPageData,
    browser,
    realtime::client::{ChannelEvent, Socket},
};

fn load() -> Visited {
    Visited::parse(browser::stored(STORAGE_KEY).as_deref())
}

/// Records this visit, then watches every other visited room on `socket` and keeps `room.rooms` current.
pub(super) fn start(socket: &Socket, room: RoomState, page: &RoomPageData) {
    let mut visited = load();
    visited.visit(&page.slug);
    // An empty room has read "up to 0", so a watch from another room counts every message it gets later.
    visited.saw(&page.slug, page.messages.last().map_or(0, |newest| newest.id));
    browser::store(STORAGE_KEY, &visited.to_stored());
    let others = visited.others(&page.slug);
    room.rooms.set(others.iter().map(|r| RoomLink { slug: r.slug.clone(), unread: 0 }).collect());
    for other in others {
        let (slug, seen_at_start) = (other.slug.clone(), other.seen);
        // The count restarts from what this browser has read there whenever the watch (re)joins.
        let channel = socket.channel(
            &room_topic(&other.slug),
            Box::new(move || {
                let seen = load().0.into_iter().find(|r| r.slug == slug).and_then(|r| r.seen);
                serde_json::to_value(JoinParams { last_seen_id: seen.or(seen_at_start), watch: true })
                    .unwrap_or(Value::Null)
            }),
        );
        let mut events = channel.events();
        let slug = other.slug;
        wasm_bindgen_futures::spawn_local(async move {
            while let Some(event) = events.next().await {
                match event {
                    ChannelEvent::Joined(reply) => {
                        // A `WatchReply`, read by hand: only `unread` matters here, and a derived deserializer for
                        // it would cost the WASM more than this line.
                        let unread = reply.get("unread").and_then(Value::as_u64).unwrap_or(0);
                        set_unread(room, &slug, |_| u32::try_from(unread).unwrap_or(u32::MAX));
                    }
                    ChannelEvent::Message { event, payload, .. } if event == Message::EVENT => {
                        let mine = from_payload::<Message>(&payload).is_ok_and(|m| m.user == room.me.get_untracked());
                        if !mine {
                            set_unread(room, &slug, |unread| unread.saturating_add(1));
                        }
                    }
                    _ => {}
                }
            }
        });
        let _ = channel.join();
    }
}

fn set_unread(room: RoomState, slug: &str, next: impl FnOnce(u32) -> u32) {
    room.rooms.update(|rooms| {
        if let Some(link) = rooms.iter_mut().find(|r| r.slug == slug) {
            link.unread = next(link.unread);
        }
    });
}

/// Messages up to `id` were shown in the room `slug`.
pub(super) fn saw(slug: &str, id: u64) {
    let mut visited = load();
    let before = visited.clone();
    visited.saw(slug, id);
    if visited != before {
        browser::store(STORAGE_KEY, &visited.to_stored());
    }
}
