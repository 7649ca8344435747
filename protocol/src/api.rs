//! Bodies of the HTTP API for backends (`/api`, docs/protocol.md §12): what a backend posts and reads, and the error
//! texts it can get. The server derives `/api/openapi.json` from these types (the `openapi` feature adds their
//! schemas; the browser's WASM never enables it).
//!
//! Messages and presence reuse the socket protocol's types ([`Message`], [`crate::chat::RoomPresenceState`]), so a message read
//! through the API is byte for byte the one a member got as `message:new`.

use serde::{Deserialize, Serialize};

use crate::chat::Message;

/// Error text of a request whose key is missing, unknown or revoked (401).
pub const UNAUTHORIZED: &str = crate::reasons::UNAUTHORIZED;
/// Error text of a path under `/api` that names no endpoint (404).
pub const NOT_FOUND: &str = "not found";
/// Error text of a method an endpoint does not answer (405).
pub const METHOD_NOT_ALLOWED: &str = "method not allowed";
/// Error text of a request body over the server's body limit (413).
pub const BODY_TOO_LARGE: &str = "body too large";
/// Error text of a body that is not JSON or not `application/json` (400, 415), or a field of the wrong type (422).
pub const INVALID_PAYLOAD: &str = crate::reasons::INVALID_PAYLOAD;
/// Error text of a `user` that is not a valid display name (422).
pub const INVALID_USER: &str = "invalid user";
/// Error text of a query parameter that is not a number (400).
pub const INVALID_QUERY: &str = "invalid query";
/// Rooms `GET /api/rooms` lists when no `limit` is given.
pub const ROOMS_DEFAULT_LIMIT: u32 = 20;
/// Most rooms one `GET /api/rooms` lists.
pub const ROOMS_MAX_LIMIT: u32 = 100;

/// Every error answer: `{"error": "…"}` with the status saying what kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiError {
    /// What went wrong, lowercase; the socket protocol's reason text where there is one (`empty message`,
    /// `message too long`, `invalid room`, `rate limited`, `unavailable`).
    pub error: String,
}

impl ApiError {
    /// An error with this text.
    pub fn new(error: &str) -> Self {
        Self { error: error.to_owned() }
    }
}

/// `POST /api/rooms/{room}/messages`: a message to store and broadcast as `user`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PostMessage {
    /// The author's display name, under the same rules as a guest's (1–32 letters, digits, spaces and `-_.'`).
    pub user: String,
    /// The body, normalized as a `message:new` body is (trimmed, at most 4000 characters).
    pub body: String,
    /// Makes a retry idempotent within the room: the same `client_id` again answers the stored message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// The answer to a post: the stored message, 201 when it is new, 200 when its `client_id` was stored before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PostedMessage {
    /// The room's slug.
    pub room: String,
    /// The message's per-room id.
    pub id: u64,
    /// The author as stored.
    pub user: String,
    /// The body as stored (normalized).
    pub body: String,
    /// Server clock when stored, milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// True when the `client_id` was stored before: nothing new was stored or broadcast.
    pub duplicate: bool,
}

/// `GET /api/rooms/{room}/messages` query: the page of messages before `before_id` (the newest without it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct HistoryQuery {
    /// Exclusive upper bound on ids; the newest messages when absent.
    #[serde(default)]
    pub before_id: Option<u64>,
    /// Page size: 50 when absent, at most the server's page cap, as for `history:before` (100 unless the server's
    /// `--max-history-page` says otherwise; larger values are clamped).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// A page of a room's history, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessagePage {
    /// The messages, oldest first.
    pub messages: Vec<Message>,
}

/// `GET /api/rooms` query.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct RoomsQuery {
    /// How many rooms: 20 when absent, at most 100.
    #[serde(default)]
    pub limit: Option<u32>,
}

impl RoomsQuery {
    /// The number of rooms to list.
    pub fn effective_limit(&self) -> u32 {
        self.limit.unwrap_or(ROOMS_DEFAULT_LIMIT).min(ROOMS_MAX_LIMIT)
    }
}

/// One recently active room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoomSummary {
    /// The room's slug.
    pub room: String,
    /// When its newest message was stored, milliseconds since the Unix epoch.
    pub last_message_at: i64,
}

/// `GET /api/rooms`: rooms by their newest message, most recent first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoomList {
    /// The rooms, most recently active first.
    pub rooms: Vec<RoomSummary>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_post_without_client_id_reads_and_limits_clamp() {
        let post: PostMessage = serde_json::from_str(r#"{"user": "bot", "body": "hi"}"#).unwrap();
        assert_eq!(post.client_id, None);
        assert_eq!(RoomsQuery { limit: Some(5) }.effective_limit(), 5);
        assert_eq!(serde_json::to_string(&ApiError::new("unavailable")).unwrap(), r#"{"error":"unavailable"}"#);
    }
}
