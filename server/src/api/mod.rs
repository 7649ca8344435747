//! The HTTP API for backends under `/api` (docs/protocol.md §12): post into a room, read its history and presence,
//! list active rooms; JSON in and out, errors as `{"error": "…"}`, every endpoint behind `Authorization: Bearer <key>`
//! (keys from `server api-key create`), and `/api/openapi.json` generated from the handlers below.
//!
//! * `caller`: the key extractor and the per-key message limit; `failure`: error answers and the extractors that
//!   produce them; `messages` and `rooms`: the handlers (`server api-key`, which makes the keys, is in `commands`).
//!
//! The router is merged outside the cross-site request refusal meant for browser forms: a request here carries its
//! credential in a header a browser never adds by itself (and no CORS header lets another site's script send one), so
//! there is nothing to forge, and curl and backends send no `Origin`. It has its own body limit and its errors are
//! JSON, the 404, 405 and 413 of the layers below the handlers included.

mod caller;
mod failure;
mod messages;
mod rooms;

use std::sync::Arc;

use axum::{
    Router,
    http::{StatusCode, header},
    middleware,
    routing::{any, get},
};
use protocol::{api::NOT_FOUND, names::validate_room_slug, reasons};
use tower_http::limit::RequestBodyLimitLayer;
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{channels::Posting, metrics::Meters, presence::Tracker, pubsub::PubSub, store::Store};
use caller::Quota;
use failure::ApiFailure;

/// What the API's handlers share.
#[derive(Clone)]
pub(crate) struct ApiState {
    store: Arc<dyn Store>,
    posting: Posting,
    presence: Arc<Tracker>,
    quota: Arc<Quota>,
    /// The largest history page (`--max-history-page`, as for `history:before`).
    history_page: u32,
}

impl ApiState {
    /// Posts go through `pubsub` (the cluster's when there is one) like a member's `message:new`; each key may post
    /// `max_messages_per_10s` (0: no limit; refusals counted in `meters`); history pages hold at most `history_page`
    /// messages.
    pub(crate) fn new(
        store: Arc<dyn Store>,
        pubsub: Arc<dyn PubSub>,
        presence: Arc<Tracker>,
        max_messages_per_10s: usize,
        history_page: u32,
        meters: Arc<Meters>,
    ) -> Self {
        let posting = Posting::new(store.clone(), pubsub);
        let quota = Arc::new(Quota::new(max_messages_per_10s, meters));
        Self { store, posting, presence, quota, history_page }
    }
}

/// The document's fixed parts; the paths and schemas come from the handlers' `#[utoipa::path]`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Parley HTTP API",
        description = "Post into rooms, read history and presence, list active rooms. Every endpoint needs \
                       `Authorization: Bearer <key>` with a key from `server api-key create --name NAME`; errors are \
                       `{\"error\": \"…\"}`."
    ),
    modifiers(&BearerKey),
    tags((name = "messages", description = "Post and read a room's messages"),
         (name = "rooms", description = "Active rooms and who is online"))
)]
struct ApiDoc;

/// Declares the `api_key` security scheme the paths name.
struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("pk_…").build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("api_key", SecurityScheme::Http(scheme));
    }
}

/// `/api/*`: the endpoints, `/api/openapi.json`, and a JSON 404 for any other path under `/api`; bodies over
/// `max_body_bytes` are refused with 413.
pub(crate) fn routes(state: ApiState, max_body_bytes: usize) -> Router {
    let (router, description) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(messages::post_message, messages::history))
        .routes(routes!(rooms::rooms))
        .routes(routes!(rooms::presence))
        .split_for_parts();
    // Rendered once: the description cannot change while the server runs.
    let description: Arc<str> = match description.to_json() {
        Ok(json) => json.into(),
        Err(error) => {
            tracing::error!(%error, "openapi description not encodable");
            "{}".into()
        }
    };
    let openapi = get(move || {
        let description = description.clone();
        async move { ([(header::CONTENT_TYPE, "application/json")], description.to_string()) }
    });
    router
        .route("/api/openapi.json", openapi)
        .route("/api", any(not_found))
        .route("/api/{*rest}", any(not_found))
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(max_body_bytes))
        .layer(middleware::map_response(failure::json_errors))
}

async fn not_found() -> ApiFailure {
    ApiFailure::new(StatusCode::NOT_FOUND, NOT_FOUND)
}

/// The room's slug, or 400 `invalid room`. A 400 rather than a 404: no room is missing (any valid slug is a room,
/// empty until someone posts), the request is malformed; a 404 stays the answer for a path that is no endpoint.
fn checked_room(slug: &str) -> Result<&str, ApiFailure> {
    validate_room_slug(slug).map(|()| slug).map_err(|_| ApiFailure::new(StatusCode::BAD_REQUEST, reasons::INVALID_ROOM))
}
