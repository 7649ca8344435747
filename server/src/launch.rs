//! [`Server`]: opens the store, wires the channels, sockets and pages together, and serves until told to stop.

use std::{future::Future, sync::Arc, time::Duration};

use thiserror::Error;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    auth::{self, identity::Identities},
    channel::{Channel, ChannelRouter, router::InvalidPattern},
    channels::{AdminStatsChannel, BenchChannel, HistoryBudget, RoomChannel, Sampler, StatsRing},
    cluster::{Cluster, ClusterError},
    config::Config,
    http,
    metrics::{self, Meters},
    node::NodeId,
    pages,
    presence::Tracker,
    pubsub::{LocalPubSub, PubSub},
    serve::{
        self,
        client_ip::ClientAddresses,
        gate::{Gate, GateLimits},
    },
    socket::{SocketServices, SocketSettings},
    store::{self, LocalCache, MessageStore, SqlStore, Store},
    transport::{
        connect::{OriginPolicy, SocketRoute},
        longpoll::{LongPollRoute, relay::Relay},
    },
};

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
    /// A `--trusted-proxies` entry is not an address or CIDR block.
    #[error("--trusted-proxies: {0}")]
    Proxy(String),
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
        settings.history_rate.max = config.guard.max_history_per_10s;
        settings.join_timeout = Duration::from_secs(config.guard.join_timeout_s);
        settings.idle_timeout = Duration::from_secs(config.guard.idle_timeout_s);
        settings.max_frame_bytes = config.guard.max_frame_bytes;
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
        let meters = Meters::new(&self.node);
        tokio::spawn(keep_meters(Arc::downgrade(&meters)));
        let shared_database = self.config.database_url.as_deref().is_some_and(|url| !url.starts_with("sqlite:"));
        if self.config.redis_url.is_some() && !shared_database {
            return Err(ServerError::Config("--redis-url (cluster mode) needs a postgres:// --database-url"));
        }
        let store = open_store(&self.config, &meters).await?;
        let cluster = match &self.config.redis_url {
            Some(url) => {
                let cluster =
                    Cluster::start(self.node.clone(), url, store.clone(), self.local.clone(), meters.clone())?;
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
        let guard = &self.config.guard;
        let configured = auth::secret::configured(
            self.config.secret_key_base.as_deref(),
            self.config.secret_key_base_file.as_deref(),
        )?;
        let secret = auth::secret::load_or_create(&self.config.data_dir, configured.as_deref())?;
        let auth = auth::Auth::new(&secret)
            .requiring_tokens(self.config.require_accounts)
            .with_token_age_cap(guard.max_token_age_s)
            .with_limits(auth::AccountLimits::from(guard));
        let auth = Arc::new(auth);
        let mut router = ChannelRouter::new();
        for (pattern, channel) in self.extra_channels {
            router = router.route(&pattern, channel)?;
        }
        // Presence diffs go to this node's subscribers only: every node computes its own from the replicated state.
        let presence = Tracker::new(self.local.clone(), Duration::from_millis(self.config.presence_window_ms));
        presence.count_in(meters.clone());
        if let Some(cluster) = &cluster {
            cluster.attach_presence(presence.clone());
        }
        let messages: Arc<dyn MessageStore> = store.clone();
        let budget = HistoryBudget {
            join_bytes: guard.max_join_history_bytes,
            recovery_bytes: guard.max_recovery_bytes,
            page: guard.max_history_page,
        };
        // The operators' statistics: sampled here once a second, published to every node's dashboards.
        let stats = Arc::new(StatsRing::default());
        let stats_stop = CancellationToken::new();
        let sampler = Sampler {
            node: self.node.clone(),
            meters: meters.clone(),
            presence: presence.clone(),
            pubsub: pubsub.clone(),
            ring: stats.clone(),
        };
        tokio::spawn(sampler.run(stats_stop.clone()));
        let operators = AdminStatsChannel::new(store.clone(), self.node.clone(), stats);
        router = router.route(protocol::admin::STATS_TOPIC, Arc::new(operators))?;
        let api = crate::api::ApiState::new(
            store.clone(),
            pubsub.clone(),
            presence.clone(),
            guard.api_max_messages_per_10s,
            guard.max_history_page,
            meters.clone(),
        );
        router = router.route("room:*", Arc::new(RoomChannel::new(messages, pubsub.clone(), presence, budget)))?;
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
            meters: meters.clone(),
            node: self.node.clone(),
        });
        let identities = Identities::new(auth.clone(), store.clone());
        let origins = OriginPolicy {
            public: public_origins(&self.config, &listener)?,
            allowed: self.config.allowed_origins.clone(),
        };
        let socket = SocketRoute::new(origins, identities.clone(), sockets);
        let relay_stop = CancellationToken::new();
        let mut longpoll = LongPollRoute::new(socket.clone(), &secret, self.node.clone());
        if let Some(url) = &self.config.redis_url {
            let relay = Relay::new(url, self.node.as_str(), relay_stop.clone()).map_err(ClusterError::from)?;
            longpoll = longpoll.with_relay(relay);
        }
        let state = http::AppState {
            leptos: http::leptos_options(&self.config),
            socket,
            longpoll,
            pages: pages::StoreBackend::context(store.clone(), auth, identities, meters.clone()),
            api,
            probes: http::probe::Probes {
                node: self.node.clone(),
                drain: drain.clone(),
                store: store.clone(),
                cluster: cluster.clone(),
            },
            node: self.node.clone(),
            meters: meters.clone(),
        };
        let app = http::router(state, &self.config.site_root, guard.max_body_bytes);
        // At the signal every socket is closed (1012) while the listener goes on serving HTTP, so a load balancer
        // probing `/readyz` sees `draining` (503) until the sockets are gone or the grace runs out; then it closes.
        // One budget from the signal on: what the sockets leave of `--drain-timeout-s` is what HTTP requests in
        // flight get, so stopping takes at most the flag's time (plus the store's last commit).
        let closing = connections.clone();
        let drain_timeout = Duration::from_secs(self.config.drain_timeout_s);
        let signal = async move {
            shutdown.await;
            let deadline = tokio::time::Instant::now() + drain_timeout;
            drain.cancel();
            closing.close();
            let _ = tokio::time::timeout_at(deadline, closing.wait()).await;
            deadline
        };
        let front = serve::Front {
            gate: Gate::new(gate_limits(guard), meters.clone()),
            addresses: Arc::new(
                ClientAddresses::new(&guard.trusted_proxies).map_err(|bad| ServerError::Proxy(bad.to_string()))?,
            ),
            header_timeout: guard.header_timeout(),
        };
        serve::serve(listener, app, front, signal).await?;
        if !connections.is_empty() {
            tracing::warn!(remaining = connections.len(), "connections still open after the drain grace period");
        }
        relay_stop.cancel();
        stats_stop.cancel();
        if let Some(cluster) = cluster {
            cluster.leave().await;
        }
        store.close().await;
        Ok(())
    }
}

/// Folds histogram samples every [`metrics::UPKEEP_INTERVAL`] while the server's meters live (a scrape does it too).
async fn keep_meters(meters: std::sync::Weak<Meters>) {
    let mut tick = tokio::time::interval(metrics::UPKEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(meters) = meters.upgrade() else { return };
        meters.upkeep();
    }
}

/// Where browsers may come from: `--public-origins`, else the loopback names of the port actually bound (the
/// configured one may be 0).
fn public_origins(config: &Config, listener: &TcpListener) -> Result<Vec<String>, ServerError> {
    if !config.guard.public_origins.is_empty() {
        return Ok(config.guard.public_origins.clone());
    }
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "no --public-origins: browsers may only open sockets and post forms from loopback origins; set it to the \
             site's address (https://chat.example.com)"
        );
    }
    Ok(OriginPolicy::loopback(addr.port()))
}

/// The gate's budgets from the flags: the descriptor budget is the open-file limit minus the reserve unless set.
fn gate_limits(guard: &crate::config::Guard) -> GateLimits {
    let max_connections = match guard.max_connections {
        0 => {
            let limit = rlimit::Resource::NOFILE.get().map_or(1024, |(soft, _)| soft);
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            limit.saturating_sub(guard.reserved_descriptors).max(1)
        }
        set => set,
    };
    tracing::info!(max_connections, max_pending = guard.max_pending_connections, "connection budget");
    GateLimits {
        max_connections,
        max_pending: guard.max_pending_connections.max(1),
        max_sockets_per_ip: guard.max_sockets_per_ip,
        max_connects_per_ip: guard.max_connects_per_ip_per_10s,
    }
}

/// The store the configuration names: PostgreSQL or SQLite by `--database-url`, else SQLite in the data dir.
async fn open_store(config: &Config, meters: &Arc<Meters>) -> Result<Arc<dyn Store>, ServerError> {
    let url = match &config.database_url {
        Some(url) => url.clone(),
        None => SqlStore::sqlite_dir_url(&config.data_dir),
    };
    let store = SqlStore::open_metered(&url, Some(meters.clone())).await?;
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
