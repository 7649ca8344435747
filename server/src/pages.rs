//! What the Leptos pages need from the server: the [`ChatBackend`] behind the app's server functions (recent rooms,
//! a room's latest history, random names), answered from the message store.

use std::sync::Arc;

use app::api::{
    RecentRoom,
    ssr::{Backend, ChatBackend},
};
use futures::{FutureExt, future::BoxFuture};
use protocol::chat::{JOIN_HISTORY, Message};

use crate::store::MessageStore;

/// The store-backed implementation.
pub struct StoreBackend {
    store: Arc<dyn MessageStore>,
}

impl StoreBackend {
    /// As Leptos context.
    pub fn context(store: Arc<dyn MessageStore>) -> Backend {
        Backend(Arc::new(Self { store }))
    }
}

impl ChatBackend for StoreBackend {
    fn recent_rooms(&self, limit: usize) -> BoxFuture<'_, Vec<RecentRoom>> {
        async move {
            match self.store.recent_rooms(limit).await {
                Ok(rooms) => {
                    rooms.into_iter().map(|r| RecentRoom { slug: r.room, last_message_at: r.last_message_at }).collect()
                }
                Err(error) => {
                    tracing::warn!(%error, "recent rooms unavailable");
                    Vec::new()
                }
            }
        }
        .boxed()
    }

    fn latest(&self, room: String) -> BoxFuture<'_, Vec<Message>> {
        async move {
            self.store.latest(&room, JOIN_HISTORY).await.unwrap_or_else(|error| {
                tracing::warn!(%error, room, "history unavailable for the page");
                Vec::new()
            })
        }
        .boxed()
    }

    fn random_room_slug(&self) -> String {
        crate::names::random_room_slug()
    }

    fn random_guest_name(&self) -> String {
        crate::names::random_guest_name()
    }
}
