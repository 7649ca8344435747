//! Server functions the pages call, and the [`ssr::ChatBackend`] the server plugs in to answer them.
//!
//! The app crate cannot see the server's store, so the server provides an implementation of `ChatBackend` as Leptos
//! context (for SSR and for server-function requests alike).

use leptos::prelude::*;
use protocol::chat::Message;
use serde::{Deserialize, Serialize};

/// A room with recent activity, for the home page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecentRoom {
    /// Slug.
    pub slug: String,
    /// Newest message, ms since the epoch.
    pub last_message_at: i64,
}

/// What the room page renders on the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomPageData {
    /// The room slug.
    pub slug: String,
    /// Whether the slug is a valid room name.
    pub valid: bool,
    /// The display name to connect as: `?user=` when valid, else a fresh random guest name.
    pub user: String,
    /// True when `user` came from the URL rather than being generated.
    pub user_chosen: bool,
    /// The latest messages, oldest first.
    pub messages: Vec<Message>,
}

/// Recently active rooms.
#[server]
pub async fn recent_rooms() -> Result<Vec<RecentRoom>, ServerFnError> {
    let backend = expect_context::<ssr::Backend>();
    Ok(backend.0.recent_rooms(8).await)
}

/// Everything the room page needs to render before the socket connects.
#[server]
pub async fn room_page(slug: String, user: Option<String>) -> Result<RoomPageData, ServerFnError> {
    let backend = expect_context::<ssr::Backend>();
    let valid = protocol::names::validate_room_slug(&slug).is_ok();
    let chosen = user.as_deref().and_then(|u| protocol::names::normalize_user_name(u).ok());
    let user_chosen = chosen.is_some();
    let user = chosen.unwrap_or_else(|| backend.0.random_guest_name());
    let messages = if valid { backend.0.latest(slug.clone()).await } else { Vec::new() };
    Ok(RoomPageData { slug, valid, user, user_chosen, messages })
}

/// Creates a fresh memorable room name and sends the browser there (works without JavaScript too).
#[server]
pub async fn create_random_room(name: Option<String>) -> Result<(), ServerFnError> {
    let backend = expect_context::<ssr::Backend>();
    let slug = backend.0.random_room_slug();
    let query = name
        .as_deref()
        .and_then(|n| protocol::names::normalize_user_name(n).ok())
        .map(|n| format!("?user={}", crate::url::encode(&n)))
        .unwrap_or_default();
    leptos_axum::redirect(&format!("/{slug}{query}"));
    Ok(())
}

#[cfg(feature = "ssr")]
pub mod ssr {
    //! The server side of the server functions.

    use std::sync::Arc;

    use futures::future::BoxFuture;
    use protocol::chat::Message;

    use super::RecentRoom;

    /// What the pages need from the server.
    pub trait ChatBackend: Send + Sync + 'static {
        /// Rooms with the newest messages.
        fn recent_rooms(&self, limit: usize) -> BoxFuture<'_, Vec<RecentRoom>>;
        /// The latest messages of a room (what a join would return), oldest first.
        fn latest(&self, room: String) -> BoxFuture<'_, Vec<Message>>;
        /// A fresh random room slug.
        fn random_room_slug(&self) -> String;
        /// A fresh random guest name.
        fn random_guest_name(&self) -> String;
    }

    /// The backend as Leptos context.
    #[derive(Clone)]
    pub struct Backend(pub Arc<dyn ChatBackend>);
}
