//! Router assembly: which URL goes where. SSR pages, the built assets, `/healthz` and the socket endpoint, all
//! behind the [`protect`] layers (security headers, cross-site request refusal) and a request body limit (413).
//!
//! Each route gets the narrowest state it needs ([`FromRef`]): the socket route sees only [`SocketRoute`], pages only
//! the Leptos options and their backend.

mod access;
pub(crate) mod probe;
mod protect;

use std::{path::Path, sync::Arc};

use app::{App, api::ssr::Backend, shell};
use axum::{
    Router,
    extract::{FromRef, State},
    http::{StatusCode, header},
    middleware,
    response::IntoResponse,
    routing::get,
};
use leptos::prelude::LeptosOptions;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tower_http::{compression::CompressionLayer, limit::RequestBodyLimitLayer};

use crate::{
    config::Config,
    metrics::Meters,
    node::NodeId,
    transport::{connect::SocketRoute, longpoll, websocket},
};

/// Shared state of the request handlers.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) leptos: LeptosOptions,
    pub(crate) socket: SocketRoute,
    /// `/socket/longpoll` and its sessions.
    pub(crate) longpoll: longpoll::LongPollRoute,
    /// The backend of the pages' server functions.
    pub(crate) pages: Backend,
    /// `/api/*`, the HTTP API for backends.
    pub(crate) api: crate::api::ApiState,
    /// Answers `/healthz` and `/readyz`.
    pub(crate) probes: probe::Probes,
    /// Named in the access log.
    pub(crate) node: NodeId,
    /// Answers `/metrics`.
    pub(crate) meters: Arc<Meters>,
}

/// Leptos rendering options for a configuration: output name fixed at compile time, site root from the config.
pub(crate) fn leptos_options(config: &Config) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name(env!("LEPTOS_OUTPUT_NAME"))
        .site_root(config.site_root.to_string_lossy().into_owned())
        .site_addr(config.addr)
        .build()
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}

impl FromRef<AppState> for probe::Probes {
    fn from_ref(state: &AppState) -> Self {
        state.probes.clone()
    }
}

impl FromRef<AppState> for SocketRoute {
    fn from_ref(state: &AppState) -> Self {
        state.socket.clone()
    }
}

/// The complete HTTP surface of the server; `site_root` holds the built bundle (`pkg/`); bodies over
/// `max_body_bytes` are refused with 413.
pub(crate) fn router(state: AppState, site_root: &Path, max_body_bytes: usize) -> Router {
    let routes = generate_route_list(App);
    let pages = state.pages.clone();
    let origins = state.socket.origins.clone();
    let longpoll = longpoll::routes(state.longpoll.clone());
    let api = crate::api::routes(state.api.clone(), max_body_bytes);
    let node = state.node.clone();
    Router::new()
        // Single-segment paths are rooms; these two are not (docs/protocol.md's reserved segments).
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/robots.txt", get(|| async { "User-agent: *\nDisallow: /socket/\n" }))
        .leptos_routes_with_context(&state, routes, move || leptos::prelude::provide_context(pages.clone()), {
            let options = state.leptos.clone();
            move || shell(options.clone())
        })
        .nest_service("/pkg", crate::assets::service(&site_root.join("pkg")))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        // Pages and server-function answers are compressed on the fly; the bundle arrives precompressed.
        .layer(CompressionLayer::new())
        // Added after the layer, so never compressed: the probe, the scrape and the WebSocket upgrade.
        .route("/healthz", get(probe::healthz))
        .route("/readyz", get(probe::readyz))
        .route("/metrics", get(metrics))
        .route("/socket/websocket", get(websocket::upgrade))
        .with_state(state)
        .layer(middleware::from_fn_with_state(origins, protect::cross_origin_protection))
        .layer(RequestBodyLimitLayer::new(max_body_bytes))
        // Long poll checks the Origin itself and answers in its own JSON; its POSTs carry up to 100 frames.
        .merge(longpoll)
        // Bearer keys in a header, JSON errors, its own body limit: outside the browser-form protection (see `api`).
        .merge(api)
        .layer(middleware::from_fn(protect::security_headers))
        // Outermost, so every route above (long poll and the upgrade included) gets its line: merge new routes before.
        .layer(middleware::from_fn_with_state(node, access::log_request))
}

/// `GET /metrics`: this node's series in the Prometheus text format (version 0.0.4).
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.meters.render())
}
