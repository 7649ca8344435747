//! Event names, the heartbeat topic and reply statuses: the reserved Phoenix events (docs/protocol.md §5) and the
//! chat application's events (docs/protocol.md §7).
//!
//! Only names live here. Error reasons and close codes are in [`crate::reasons`]; payload shapes in [`crate::chat`].

/// Client → server: join a channel topic. In phoenix.js the join's `join_ref` equals its `ref`.
pub const PHX_JOIN: &str = "phx_join";
/// Client → server: leave a channel topic (payload `{}`).
pub const PHX_LEAVE: &str = "phx_leave";
/// Server → client: the reply to the message whose `ref` it carries; payload `{"status", "response"}`.
pub const PHX_REPLY: &str = "phx_reply";
/// Server → client: the channel crashed; payload `{"reason": "channel_crash"}`, ref = join_ref.
pub const PHX_ERROR: &str = "phx_error";
/// Server → client: the channel closed gracefully; payload `{}`, ref = join_ref.
pub const PHX_CLOSE: &str = "phx_close";
/// Client → server on [`PHOENIX_TOPIC`]: keep-alive, answered with an `ok` reply and `{}`.
pub const HEARTBEAT: &str = "heartbeat";
/// The socket-level topic that carries heartbeats; never a channel.
pub const PHOENIX_TOPIC: &str = "phoenix";
/// Server → client: the full presence list of a topic, pushed to a joiner right after its join reply.
pub const PRESENCE_STATE: &str = "presence_state";
/// Server → client: presence joins and leaves, broadcast on every track, update and untrack.
pub const PRESENCE_DIFF: &str = "presence_diff";

/// Client push (payload `{"body", "client_id"?}`) and server broadcast (a full `Message`) of a chat message.
pub const MESSAGE_NEW: &str = "message:new";
/// Client push asking for older messages (`{"before_id", "limit"?}`).
pub const HISTORY_BEFORE: &str = "history:before";
/// Client push updating this socket's presence `typing` flag (`{"typing": bool}`).
pub const TYPING: &str = "typing";

/// Reply status of a successful request.
pub const STATUS_OK: &str = "ok";
/// Reply status of a refused request; the response is `{"reason": …}` (see [`crate::reasons`]).
pub const STATUS_ERROR: &str = "error";
