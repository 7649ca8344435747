//! Router assembly: which URL goes where. SSR pages, the built assets, `/healthz` and the socket endpoint.

use std::sync::{Arc, atomic::AtomicU64};

use app::{App, shell};
use axum::{Router, extract::FromRef, extract::State, http::StatusCode, routing::get};
use leptos::prelude::LeptosOptions;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tower_http::compression::CompressionLayer;

use crate::{
    config::Config, socket::SocketServices, store::Store, transport::connect::OriginPolicy, transport::websocket,
};

/// Shared state of every request handler.
#[derive(Clone)]
pub struct AppState {
    /// Leptos rendering options (site root, output name).
    pub leptos: LeptosOptions,
    /// The configuration the server was started with.
    pub config: Arc<Config>,
    /// What socket connections share (router, pubsub, limits, drain signal).
    pub sockets: Arc<SocketServices>,
    /// Which origins may open sockets.
    pub origins: Arc<OriginPolicy>,
    /// Source of connection ids.
    pub next_conn_id: Arc<AtomicU64>,
    /// Message history and accounts.
    pub store: Arc<dyn Store>,
    /// Token signing and verification.
    pub auth: Arc<crate::auth::Auth>,
}

impl AppState {
    /// Leptos options for a configuration: output name fixed at compile time, site root from the config.
    pub fn leptos_options(config: &Config) -> LeptosOptions {
        LeptosOptions::builder()
            .output_name(env!("LEPTOS_OUTPUT_NAME"))
            .site_root(config.site_root.to_string_lossy().into_owned())
            .site_addr(config.addr)
            .build()
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}

/// The complete HTTP surface of the server.
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let backend = crate::pages::StoreBackend::context(state.store.clone(), state.auth.clone());
    let assets = state.config.site_root.join("pkg");
    Router::new()
        // Single-segment paths are rooms; these two are not (chat-protocol.md's reserved segments).
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/robots.txt", get(|| async { "User-agent: *\nDisallow: /socket/\n" }))
        .leptos_routes_with_context(&state, routes, move || leptos::prelude::provide_context(backend.clone()), {
            let options = state.leptos.clone();
            move || shell(options.clone())
        })
        .nest_service("/pkg", crate::assets::service(&assets))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        // Pages and server-function answers are compressed on the fly; the bundle arrives precompressed.
        .layer(CompressionLayer::new())
        // Added after the layer, so never compressed: a probe and the WebSocket upgrade.
        .route("/healthz", get(healthz))
        .route("/socket/websocket", get(websocket::upgrade))
        .with_state(state)
}

/// `GET /healthz`: 200 while the store answers, 503 otherwise.
async fn healthz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    match state.store.health().await {
        Ok(()) => (StatusCode::OK, "ok"),
        Err(error) => {
            tracing::warn!(%error, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
        }
    }
}
