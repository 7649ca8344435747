//! `GET /api/rooms` (recently active rooms, from the store's `rooms` table) and `GET /api/rooms/{room}/presence`
//! (who is online, from the presence tracker, in the room's `presence_state` shape).

use axum::{
    Json,
    extract::{Path, State},
    http::header,
    response::IntoResponse,
};
use protocol::{
    api::{ApiError, RoomList, RoomSummary, RoomsQuery},
    chat::RoomPresenceState,
    names::room_topic,
};

use super::{
    ApiState,
    caller::ApiCaller,
    checked_room,
    failure::{ApiFailure, QueryParams},
};

/// Rooms by their newest message, most recent first.
#[utoipa::path(
    get,
    path = "/api/rooms",
    tag = "rooms",
    params(RoomsQuery),
    responses(
        (status = 200, description = "The rooms, most recently active first", body = RoomList),
        (status = 400, description = "`invalid query`", body = ApiError),
        (status = 401, description = "Missing, unknown or revoked key", body = ApiError),
        (status = 503, description = "`unavailable`", body = ApiError),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn rooms(
    _caller: ApiCaller,
    State(api): State<ApiState>,
    QueryParams(query): QueryParams<RoomsQuery>,
) -> Result<Json<RoomList>, ApiFailure> {
    let active = api.store.recent_rooms(query.effective_limit() as usize).await;
    let rooms = active.map_err(|error| ApiFailure::unavailable(&error))?;
    let rooms = rooms.into_iter().map(|r| RoomSummary { room: r.room, last_message_at: r.last_message_at }).collect();
    Ok(Json(RoomList { rooms }))
}

/// Who is in the room now, on every node: `{name: {"metas": [{online_at, typing, phx_ref}, …]}}`, as a joiner's
/// `presence_state` (one meta per connection; watchers are in nobody's presence).
#[utoipa::path(
    get,
    path = "/api/rooms/{room}/presence",
    tag = "rooms",
    params(("room" = String, Path, description = "The room's slug")),
    responses(
        (status = 200, description = "The room's presence (`{}` when nobody is in it)", body = RoomPresenceState),
        (status = 400, description = "`invalid room`", body = ApiError),
        (status = 401, description = "Missing, unknown or revoked key", body = ApiError),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn presence(
    _caller: ApiCaller,
    State(api): State<ApiState>,
    Path(room): Path<String>,
) -> Result<impl IntoResponse, ApiFailure> {
    let topic = room_topic(checked_room(&room)?).into();
    // The encoded state, as joiners get it, sent as is; in a cluster, a room this node does not follow is read from
    // the registry once, without following it afterwards.
    let state = api.presence.peek_state(&topic).await.map_or_else(|| "{}".to_owned(), |json| json.get().to_owned());
    Ok(([(header::CONTENT_TYPE, "application/json")], state))
}
