//! The chat server as a library: `main.rs` and the integration tests use the same [`Server`].
//!
//! Crate map:
//! * [`config`]: flags, environment variables and limits.
//! * [`http`]: router assembly (SSR pages, `/healthz`, `/socket/websocket`); [`assets`]: the precompressed bundle.
//! * [`transport`]: WebSocket upgrade and connect-time checks; the only code that knows HTTP.
//! * [`socket`]: the per-connection state machine (dispatch table, outbound queue, rate limits).
//! * [`channel`]: the `Channel` contract and the topic router; [`channels`]: the chat room channel.
//! * [`pubsub`]: topic fan-out, encode-once broadcasts.
//! * [`presence`]: who is online per topic, diffs coalesced per topic.
//! * [`store`]: the `MessageStore` contract and its implementations.
//! * [`clock`]: milliseconds since the epoch.
//! * [`names`]: random guest names and room slugs; [`pages`]: the backend of the app's server functions.
//! * [`auth`]: Phoenix.Token-compatible socket tokens and the secret key base.
//! * [`shutdown`], [`telemetry`]: signals and logging.

// Leptos view types nest deeply; the default limit (128) is too low for the room page.
#![recursion_limit = "256"]

pub mod assets;
pub mod auth;
pub mod channel;
pub mod channels;
pub mod clock;
pub mod config;
pub mod http;
pub mod names;
pub mod pages;
pub mod presence;
pub mod pubsub;
pub mod shutdown;
pub mod socket;
pub mod store;
pub mod telemetry;
pub mod transport;

use std::{
    future::Future,
    sync::{Arc, atomic::AtomicU64},
    time::Duration,
};

use thiserror::Error;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    channel::{Channel, ChannelRouter, router::InvalidPattern},
    channels::RoomChannel,
    config::{Cli, Command, Config},
    presence::Tracker,
    pubsub::{LocalPubSub, PubSub},
    socket::{SocketServices, SocketSettings},
    store::{LocalCache, MessageStore, SqlStore, Store},
    transport::connect::OriginPolicy,
};

/// Presence diffs of one topic are coalesced over this window: short enough to feel instant, long enough that a
/// join storm sends tens of diffs per second instead of one per joiner.
const PRESENCE_WINDOW: Duration = Duration::from_millis(50);

/// How long a draining server waits for its connections to send their close frames.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// Why the server could not start or stopped with an error.
#[derive(Debug, Error)]
pub enum ServerError {
    /// Binding or serving the listening socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// A channel route was malformed.
    #[error(transparent)]
    Route(#[from] InvalidPattern),
    /// The message store could not be opened.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// No usable secret key base.
    #[error(transparent)]
    Secret(#[from] auth::secret::SecretError),
}

/// Runs what the command line asks for.
pub async fn main_with(cli: Cli) -> Result<(), ServerError> {
    match cli.command {
        Some(Command::Serve(config)) => serve(config).await,
        Some(Command::Token(args)) => {
            let secret = auth::secret::load_or_create(&args.data_dir, args.secret_key_base.as_deref())?;
            let token = auth::Auth::new(&secret).socket_token(&args.user);
            #[allow(clippy::print_stdout)]
            {
                println!("{token}");
            }
            Ok(())
        }
        None => serve(cli.serve).await,
    }
}

/// Binds `config.addr` and serves until Ctrl-C or SIGTERM.
pub async fn serve(config: Config) -> Result<(), ServerError> {
    let listener = TcpListener::bind(config.addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "listening");
    Server::new(config).run(listener, shutdown::signal()).await
}

/// Serves on an already bound listener until `shutdown` completes, with the default channels.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    Server::new(config).run(listener, shutdown).await
}

/// A configured server, before it runs.
pub struct Server {
    config: Config,
    settings: SocketSettings,
    store: Option<Arc<dyn Store>>,
    pubsub: Arc<dyn PubSub>,
    presence_window: Duration,
    extra_channels: Vec<(String, Arc<dyn Channel>)>,
}

impl Server {
    /// A server with the embedded defaults.
    pub fn new(config: Config) -> Self {
        let mut settings = SocketSettings::default();
        settings.message_rate.max = config.max_messages_per_10s;
        Self {
            config,
            settings,
            store: None,
            pubsub: Arc::new(LocalPubSub::new()),
            presence_window: PRESENCE_WINDOW,
            extra_channels: Vec::new(),
        }
    }

    /// Replaces the socket limits (tests shorten timeouts and queues).
    pub fn with_settings(mut self, settings: SocketSettings) -> Self {
        self.settings = settings;
        self
    }

    /// The pubsub the server will use (tests publish through it).
    pub fn pubsub(&self) -> Arc<dyn PubSub> {
        self.pubsub.clone()
    }

    /// Uses `store` instead of the one the configuration names.
    pub fn with_store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Registers an additional channel, matched before the built-in `room:*`.
    pub fn with_channel(mut self, pattern: &str, channel: Arc<dyn Channel>) -> Self {
        self.extra_channels.push((pattern.to_owned(), channel));
        self
    }

    /// Serves on `listener` until `shutdown` completes; then closes every socket with 1012 and waits briefly for
    /// the close frames to go out.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        std::fs::create_dir_all(&self.config.data_dir)?;
        let store = match self.store {
            Some(store) => store,
            None => open_store(&self.config).await?,
        };
        let secret = auth::secret::load_or_create(&self.config.data_dir, self.config.secret_key_base.as_deref())?;
        let auth = Arc::new(auth::Auth::new(&secret).requiring_tokens(self.config.require_accounts));
        let mut router = ChannelRouter::new();
        for (pattern, channel) in self.extra_channels {
            router = router.route(&pattern, channel)?;
        }
        let presence = Tracker::new(self.pubsub.clone(), self.presence_window);
        let messages: Arc<dyn MessageStore> = store.clone();
        let room: Arc<dyn Channel> = Arc::new(RoomChannel::new(messages, self.pubsub.clone(), presence));
        router = router.route("room:*", room)?;
        if self.config.bench_topics {
            router = router.route("bench:*", Arc::new(channels::BenchChannel::new(self.pubsub.clone())))?;
        }
        let drain = CancellationToken::new();
        let connections = tokio_util::task::TaskTracker::new();
        let sockets = Arc::new(SocketServices {
            router,
            pubsub: self.pubsub,
            settings: self.settings,
            drain: drain.clone(),
            connections: connections.clone(),
        });
        let state = http::AppState {
            leptos: http::AppState::leptos_options(&self.config),
            origins: Arc::new(OriginPolicy { allowed: self.config.allowed_origins.clone() }),
            config: Arc::new(self.config),
            sockets,
            next_conn_id: Arc::new(AtomicU64::new(1)),
            store: store.clone(),
            auth,
        };
        let app = http::router(state);
        let signal = {
            let drain = drain.clone();
            async move {
                shutdown.await;
                drain.cancel();
            }
        };
        // Small frames must go out at once: with Nagle's algorithm a reply waits for the peer's delayed ACK (~40 ms).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY");
            }
        });
        axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
            .with_graceful_shutdown(signal)
            .await?;
        connections.close();
        if tokio::time::timeout(DRAIN_GRACE, connections.wait()).await.is_err() {
            tracing::warn!(remaining = connections.len(), "connections still open after the drain grace period");
        }
        store.close().await;
        Ok(())
    }
}

/// The store the configuration names: PostgreSQL or SQLite by `--database-url`, else SQLite in the data dir.
async fn open_store(config: &Config) -> Result<Arc<dyn Store>, ServerError> {
    let store = match &config.database_url {
        Some(url) => SqlStore::open(url).await?,
        None => SqlStore::open_sqlite_dir(&config.data_dir).await?,
    };
    tracing::info!(engine = ?store.engine(), "message store ready");
    let shared = config.database_url.as_deref().is_some_and(|url| !url.starts_with("sqlite:"));
    let store: Arc<dyn Store> = Arc::new(store);
    if shared {
        return Ok(store);
    }
    // A database only this process writes can be fronted by what it already knows: the recent messages of active
    // rooms and the set of account names.
    Ok(Arc::new(LocalCache::load(store, protocol::chat::JOIN_HISTORY).await?))
}
