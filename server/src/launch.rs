//! [`Server`]: opens the store, wires the channels, sockets and pages together, and serves until told to stop.

use std::{future::Future, sync::Arc, time::Duration};

use thiserror::Error;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    auth::{self, identity::Identities},
    channel::{Channel, ChannelRouter, router::InvalidPattern},
    channels::{BenchChannel, RoomChannel},
    cluster::{Cluster, ClusterError},
    config::Config,
    http,
    node::NodeId,
    pages,
    presence::Tracker,
    pubsub::{LocalPubSub, PubSub},
    socket::{SocketServices, SocketSettings},
    store::{self, LocalCache, MessageStore, SqlStore, Store},
    transport::connect::{OriginPolicy, SocketRoute},
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
    /// Cluster mode could not start.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The flags ask for something this server cannot do.
    #[error("configuration: {0}")]
    Config(&'static str),
}

/// A configured server, before it runs.
pub struct Server {
    config: Config,
    node: NodeId,
    settings: SocketSettings,
    local: Arc<LocalPubSub>,
    extra_channels: Vec<(String, Arc<dyn Channel>)>,
}

impl Server {
    /// A server with the embedded defaults.
    pub fn new(config: Config) -> Self {
        let mut settings = SocketSettings::default();
        settings.message_rate.max = config.max_messages_per_10s;
        Self {
            config,
            node: NodeId::random(),
            settings,
            local: Arc::new(LocalPubSub::new()),
            extra_channels: Vec::new(),
        }
    }

    /// This process's node id (new at every start).
    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// Replaces the socket limits (tests shorten timeouts and queues).
    pub fn with_settings(mut self, settings: SocketSettings) -> Self {
        self.settings = settings;
        self
    }

    /// This process's pubsub (tests publish through it; in a cluster it reaches this node's subscribers only).
    pub fn pubsub(&self) -> Arc<dyn PubSub> {
        self.local.clone()
    }

    /// Registers an additional channel, matched before the built-in `room:*`.
    pub fn with_channel(mut self, pattern: &str, channel: Arc<dyn Channel>) -> Self {
        self.extra_channels.push((pattern.to_owned(), channel));
        self
    }

    /// Serves on `listener` until `shutdown` completes; then closes every socket with 1012, waits briefly for the
    /// close frames to go out, and commits what the store still holds.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        std::fs::create_dir_all(&self.config.data_dir)?;
        let shared_database = self.config.database_url.as_deref().is_some_and(|url| !url.starts_with("sqlite:"));
        if self.config.redis_url.is_some() && !shared_database {
            return Err(ServerError::Config("--redis-url (cluster mode) needs a postgres:// --database-url"));
        }
        let store = open_store(&self.config).await?;
        let cluster = match &self.config.redis_url {
            Some(url) => {
                let cluster = Cluster::start(self.node.clone(), url, store.clone(), self.local.clone())?;
                tracing::info!(node = %self.node, "cluster mode: Redis bus and presence registry");
                Some(cluster)
            }
            None => None,
        };
        // What channels and sockets publish through: the cluster when there is one, else this process.
        let pubsub: Arc<dyn PubSub> = match &cluster {
            Some(cluster) => cluster.clone(),
            None => self.local.clone(),
        };
        let secret = auth::secret::load_or_create(&self.config.data_dir, self.config.secret_key_base.as_deref())?;
        let auth = Arc::new(auth::Auth::new(&secret).requiring_tokens(self.config.require_accounts));
        let mut router = ChannelRouter::new();
        for (pattern, channel) in self.extra_channels {
            router = router.route(&pattern, channel)?;
        }
        // Presence diffs go to this node's subscribers only: every node computes its own from the replicated state.
        let presence = Tracker::new(self.local.clone(), PRESENCE_WINDOW);
        if let Some(cluster) = &cluster {
            cluster.attach_presence(presence.clone());
        }
        let messages: Arc<dyn MessageStore> = store.clone();
        router = router.route("room:*", Arc::new(RoomChannel::new(messages, pubsub.clone(), presence)))?;
        if self.config.bench_topics {
            router = router.route("bench:*", Arc::new(BenchChannel::new(pubsub.clone())))?;
        }
        let drain = CancellationToken::new();
        let connections = tokio_util::task::TaskTracker::new();
        let sockets = Arc::new(SocketServices {
            router,
            pubsub,
            settings: self.settings,
            drain: drain.clone(),
            connections: connections.clone(),
        });
        let identities = Identities::new(auth.clone(), store.clone());
        let origins = OriginPolicy { allowed: self.config.allowed_origins.clone() };
        let state = http::AppState {
            leptos: http::leptos_options(&self.config),
            socket: SocketRoute::new(origins, identities.clone(), sockets),
            pages: pages::StoreBackend::context(store.clone(), auth, identities),
            store: store.clone(),
            node: self.node.clone(),
        };
        let app = http::router(state, &self.config.site_root);
        let signal = async move {
            shutdown.await;
            drain.cancel();
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
        if let Some(cluster) = cluster {
            cluster.leave().await;
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
