//! `POST /api/rooms/{room}/messages` (store and broadcast, through the same [`crate::channels::Posting`] as a
//! member's `message:new`) and `GET /api/rooms/{room}/messages` (history, newest page or before an id).

use std::{sync::Arc, time::Instant};

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use protocol::{
    api::{ApiError, HistoryQuery, INVALID_USER, MessagePage, PostMessage, PostedMessage},
    chat::{NewMessage, page_limit},
    names::{normalize_user_name, room_topic},
};

use super::{
    ApiState,
    caller::ApiCaller,
    checked_room,
    failure::{ApiFailure, JsonBody, QueryParams},
};
use crate::channels::Draft;

/// Stores a message as `user` and broadcasts it to the room's members on every node.
#[utoipa::path(
    post,
    path = "/api/rooms/{room}/messages",
    tag = "messages",
    params(("room" = String, Path, description = "The room's slug")),
    request_body = PostMessage,
    responses(
        (status = 201, description = "Stored and broadcast", body = PostedMessage),
        (status = 200, description = "This `client_id` was stored before: the stored message, not broadcast again",
            body = PostedMessage),
        (status = 400, description = "`invalid room` or a body that is not JSON (`invalid payload`)", body = ApiError),
        (status = 401, description = "Missing, unknown or revoked key", body = ApiError),
        (status = 413, description = "`body too large`", body = ApiError),
        (status = 422, description = "`empty message`, `message too long`, `invalid user`, `invalid payload`",
            body = ApiError),
        (status = 429, description = "`rate limited` (the key's posts per 10 s); see `Retry-After`", body = ApiError),
        (status = 503, description = "`unavailable`: the store cannot take it now; nothing was stored", body = ApiError),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn post_message(
    caller: ApiCaller,
    State(api): State<ApiState>,
    Path(room): Path<String>,
    JsonBody(post): JsonBody<PostMessage>,
) -> Result<(StatusCode, Json<PostedMessage>), ApiFailure> {
    let room = checked_room(&room)?;
    let unprocessable = |error| ApiFailure::new(StatusCode::UNPROCESSABLE_ENTITY, error);
    let user = normalize_user_name(&post.user).map_err(|_| unprocessable(INVALID_USER))?;
    let draft = Draft::check(NewMessage { body: post.body, client_id: post.client_id }).map_err(unprocessable)?;
    api.quota.admit(&caller, Instant::now())?;
    let topic: Arc<str> = room_topic(room).into();
    let appended = api.posting.post(&topic, room, user, draft).await.map_err(|e| ApiFailure::unavailable(&e))?;
    let status = if appended.duplicate { StatusCode::OK } else { StatusCode::CREATED };
    let message = appended.message;
    tracing::debug!(key = caller.name, room, id = message.id, duplicate = appended.duplicate, "api: message posted");
    Ok((
        status,
        Json(PostedMessage {
            room: room.to_owned(),
            id: message.id,
            user: message.user,
            body: message.body,
            timestamp: message.timestamp,
            duplicate: appended.duplicate,
        }),
    ))
}

/// A page of the room's history, oldest first: the newest messages, or those before `before_id`.
#[utoipa::path(
    get,
    path = "/api/rooms/{room}/messages",
    tag = "messages",
    params(("room" = String, Path, description = "The room's slug"), HistoryQuery),
    responses(
        (status = 200, description = "The page, oldest first (empty for a room without messages)", body = MessagePage),
        (status = 400, description = "`invalid room` or `invalid query`", body = ApiError),
        (status = 401, description = "Missing, unknown or revoked key", body = ApiError),
        (status = 503, description = "`unavailable`", body = ApiError),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn history(
    _caller: ApiCaller,
    State(api): State<ApiState>,
    Path(room): Path<String>,
    QueryParams(query): QueryParams<HistoryQuery>,
) -> Result<Json<MessagePage>, ApiFailure> {
    let room = checked_room(&room)?;
    // The protocol's default page, capped as `history:before` is.
    let limit = page_limit(query.limit, api.history_page) as usize;
    let read = match query.before_id {
        Some(before_id) => api.store.before(room, before_id, limit).await,
        None => api.store.latest(room, limit).await,
    };
    let messages = read.map_err(|error| ApiFailure::unavailable(&error))?;
    Ok(Json(MessagePage { messages }))
}
