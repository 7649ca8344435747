//! The chat server as a library: `main.rs` and the integration tests run the same [`Server`].
//!
//! Crate map, from the top down (a module only uses the ones listed after it):
//! * `launch`: [`Server`], which opens the store, wires everything and serves; [`config`]: flags, environment
//!   variables and limits.
//! * `api`: the HTTP API for backends under `/api` (API keys, OpenAPI description) and `server api-key`.
//! * `http`: router assembly (SSR pages, the `/healthz` and `/readyz` probes, `/socket/websocket`, security headers,
//!   cross-site request refusal, body limits, the access log); `assets`: the precompressed bundle; `pages`: the backend of the app's server functions.
//! * `transport`: the WebSocket upgrade and connect-time checks; the only code that knows WebSocket.
//! * `serve`: the accept loop (header deadlines, connection budgets, per-address socket caps, client addresses
//!   through trusted proxies), which `launch` runs and whose admission `transport` completes at the upgrade.
//! * [`socket`]: the per-connection state machine (dispatch table, writer) and what it needs from a transport.
//! * `channels`: the chat room channel and the opt-in `bench:*` channel; [`channel`]: the `Channel` contract and the
//!   topic router.
//! * `presence`: who is online per topic, diffs coalesced per topic; [`auth`]: tokens, passwords, login limits and the
//!   one identity rule; [`store`]: the `MessageStore` and `AccountStore` contracts and their implementations.
//! * [`pubsub`]: topic fan-out into bounded per-connection outboxes; `metrics`: this server's Prometheus registry
//!   (`/metrics`) and the dashboard's pulse; `frames`: encoded frames in shared buffers; `limits`: per-connection
//!   rate limits and the names of every limit; [`clock`]; `names`: random names; `shutdown`; [`telemetry`]; `top`:
//!   the k largest of a scan.
//! * `cluster`: cluster mode over Redis (the bus, in-order delivery of room messages, the presence registry);
//!   [`node`]: this process's node id; `commands`: `server admin` (who may see the dashboard) and `server api-key`.

// Leptos view types nest deeply; the default limit (128) is too low for the room page.
#![recursion_limit = "256"]

mod api;
mod assets;
pub mod auth;
pub mod channel;
mod channels;
pub mod clock;
mod cluster;
mod commands;
pub mod config;
mod frames;
mod http;
mod launch;
mod limits;
mod metrics;
mod names;
pub mod node;
mod pages;
mod presence;
pub mod pubsub;
mod serve;
mod shutdown;
pub mod socket;
pub mod store;
pub mod telemetry;
mod top;
mod transport;

pub use launch::{Server, ServerError};

use tokio::net::{TcpListener, TcpSocket};

use crate::config::{Cli, Command, Config};

/// Runs what the command line asks for.
pub async fn main_with(cli: Cli) -> Result<(), ServerError> {
    match cli.command {
        Some(Command::Serve(config)) => serve(*config).await,
        Some(Command::Token(args)) => {
            let configured =
                auth::secret::configured(args.secret_key_base.as_deref(), args.secret_key_base_file.as_deref())?;
            let secret = auth::secret::load_or_create(&args.data_dir, configured.as_deref())?;
            let token = auth::Auth::new(&secret).socket_token(&args.user);
            #[allow(clippy::print_stdout)]
            {
                println!("{token}");
            }
            Ok(())
        }
        Some(Command::ApiKey(args)) => commands::api_key::run(args).await,
        Some(Command::Admin(args)) => commands::admin::run(args).await,
        None => serve(cli.serve).await,
    }
}

/// Binds `config.addr` and serves until Ctrl-C or SIGTERM.
async fn serve(config: Config) -> Result<(), ServerError> {
    let listener = bind(config.addr, config.reuse_port)?;
    let server = Server::new(config);
    tracing::info!(addr = %listener.local_addr()?, node = %server.node(), "listening");
    server.run(listener, shutdown::signal()).await
}

/// A listening socket on `addr`; with `reuse_port`, one that other processes may bind too (`SO_REUSEPORT`: the kernel
/// spreads new connections over them).
fn bind(addr: std::net::SocketAddr, reuse_port: bool) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    if reuse_port {
        socket.set_reuseport(true)?;
    }
    socket.bind(addr)?;
    // A deep accept queue: connection storms arrive faster than one accept loop drains them.
    socket.listen(4096)
}
