//! Command line and environment configuration.
//!
//! Every flag has an environment equivalent so the binary can be configured by a process manager as easily as by
//! hand. Limits live here as named fields with the reason for their default next to them.

mod guard;

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand};
pub use guard::Guard;

use crate::telemetry::LogFormat;

/// The `server` command line.
#[derive(Debug, Parser)]
#[command(name = "server", version, about = "Parley: real-time chat over Phoenix Channels")]
pub struct Cli {
    /// What to do; serving is the default.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options for serving (used when no subcommand is given).
    #[command(flatten)]
    pub serve: Config,
    /// How log lines (on stderr) are written: `text` for people, `json` (one object a line) for a log pipeline.
    /// Accepted by every subcommand.
    #[arg(long, global = true, env = "CHAT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Subcommands besides serving.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the app and the channel sockets (the default).
    Serve(Box<Config>),
    /// Print a socket token for a user (valid 24 h), signed with this server's secret: for scripts and tests.
    Token(TokenArgs),
    /// Create, revoke or list the HTTP API's keys (`/api`), in the database the server uses.
    ApiKey(ApiKeyArgs),
    /// Make an account an operator (it may open `/dashboard`), or with `--revoke` no longer one, in the database the
    /// server uses; takes effect at once, also on a running server.
    Admin(AdminArgs),
}

/// Arguments of `server admin`.
#[derive(Debug, Clone, Args)]
pub struct AdminArgs {
    /// The account (any spelling of its name); it must exist.
    #[arg(long)]
    pub user: String,
    /// Take operator rights away instead of granting them.
    #[arg(long)]
    pub revoke: bool,
    /// Where the accounts are.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// The database `server api-key` and `server admin` change: the one `serve` uses with the same flags.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The data directory whose SQLite database `chat.db` is used (when no `--database-url` is given).
    #[arg(long, env = "CHAT_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,
    /// The server's `--database-url` (`postgres://…` for a cluster).
    #[arg(long, env = "DATABASE_URL", global = true)]
    pub database_url: Option<String>,
}

/// Arguments of `server token`.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// Whose token.
    #[arg(long)]
    pub user: String,
    /// The data directory whose generated secret signs the token.
    #[arg(long, env = "CHAT_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// The secret key base, if configured rather than generated.
    #[arg(long, env = "SECRET_KEY_BASE", hide_env_values = true)]
    pub secret_key_base: Option<String>,
    /// A file holding the secret key base (its trailing line break ignored), so it is not visible in `ps`.
    #[arg(long, env = "SECRET_KEY_BASE_FILE", conflicts_with = "secret_key_base")]
    pub secret_key_base_file: Option<PathBuf>,
}

/// Arguments of `server api-key`.
#[derive(Debug, Clone, Args)]
pub struct ApiKeyArgs {
    /// What to do with keys.
    #[command(subcommand)]
    pub action: ApiKeyAction,
    /// Where the keys are.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `server api-key` actions.
#[derive(Debug, Clone, Subcommand)]
pub enum ApiKeyAction {
    /// Make a key and print it (once: only its SHA-256 is stored).
    Create {
        /// Who the key is for; a live key's name is unique.
        #[arg(long)]
        name: String,
    },
    /// Revoke the live key with this name: requests with it are refused at once.
    Revoke {
        /// The key's name.
        #[arg(long)]
        name: String,
    },
    /// List keys: name, created, revoked (never the keys themselves).
    List,
}

/// Everything the running server needs to know.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "CHAT_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,
    /// Directory for durable state (the SQLite database, the generated secret).
    #[arg(long, env = "CHAT_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Directory holding the built site (`pkg/` with the WASM bundle, JS and CSS), as produced by cargo-leptos.
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,
    /// Where history lives: `postgres://…` for a database shared by several nodes; default (unset) is the SQLite
    /// file `chat.db` in `--data-dir`. `sqlite://path` selects another SQLite file.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Redis for cluster mode (`redis://host:port`): together with a `postgres://` database URL, this process joins
    /// every other process given the same two URLs as one chat (cross-node broadcast and presence).
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,
    /// Bind with `SO_REUSEPORT`, so several processes on one host share one address and the kernel spreads
    /// connections between them (each process has its own open-file limit).
    #[arg(long, env = "CHAT_REUSE_PORT")]
    pub reuse_port: bool,
    /// `message:new` allowed per connection in any 10-second window (docs/protocol.md §10.3: 20). Raise it for load tests.
    #[arg(long, env = "CHAT_MAX_MESSAGES_PER_10S", default_value_t = 20)]
    pub max_messages_per_10s: usize,
    /// Secret key base that signs tokens (at least 64 bytes; nodes and Phoenix backends sharing it accept each other's
    /// tokens). Default: generated on first run into `<data-dir>/secret_key_base`.
    #[arg(long, env = "SECRET_KEY_BASE", hide_env_values = true)]
    pub secret_key_base: Option<String>,
    /// A file holding the secret key base (its trailing line break ignored), so the secret is not visible in `ps` or
    /// the process's environment.
    #[arg(long, env = "SECRET_KEY_BASE_FILE", conflicts_with = "secret_key_base")]
    pub secret_key_base_file: Option<PathBuf>,
    /// Accounts only: sockets need a valid token (guests are refused with 403, and pages ask them to log in).
    #[arg(long, env = "CHAT_REQUIRE_ACCOUNTS")]
    pub require_accounts: bool,
    /// Extra origins allowed to open sockets besides `--public-origins`, comma separated (Phoenix's
    /// `check_origin` forms): `https://example.com`, `//example.com:8080`, `//*.example.com`.
    #[arg(long, env = "CHAT_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Serve the `bench:*` topics (`echo` and `broadcast` without presence or storage) for `bench broadcast`. Off in
    /// production: anyone could broadcast on them.
    #[arg(long, env = "CHAT_BENCH_TOPICS")]
    pub bench_topics: bool,
    /// Milliseconds over which one topic's presence changes are coalesced into one `presence_diff` (it grows by 0.1 ms
    /// per member past 500, to at most 1 s): short enough to feel instant, long enough that a join storm sends tens
    /// of diffs a second instead of one per joiner.
    #[arg(long, env = "CHAT_PRESENCE_WINDOW_MS", default_value_t = 50)]
    pub presence_window_ms: u64,
    /// Seconds a stopping server waits for its sockets to close (1012), still answering HTTP with `/readyz` at 503,
    /// before it exits anyway: long enough for close frames to reach slow clients, short enough for a deploy. One
    /// budget: HTTP requests still in flight once the sockets are closed get what is left of it.
    #[arg(long, env = "CHAT_DRAIN_TIMEOUT_S", default_value_t = 5)]
    pub drain_timeout_s: u64,
    /// Admission and abuse limits.
    #[command(flatten)]
    pub guard: Guard,
}

impl Config {
    /// A configuration for tests and embedding: loopback on an OS-assigned port, data in `data_dir`.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            site_root: PathBuf::from("target/site"),
            allowed_origins: Vec::new(),
            database_url: None,
            redis_url: None,
            reuse_port: false,
            max_messages_per_10s: 20,
            secret_key_base: None,
            secret_key_base_file: None,
            require_accounts: false,
            bench_topics: false,
            presence_window_ms: 50,
            drain_timeout_s: 5,
            guard: Guard::default(),
        }
    }
}
