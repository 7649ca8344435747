//! The flags that bound what one client (or one address) can make the server do: connection admission, request
//! sizes, rate limits and token ages. Each default is the documented limit of docs/protocol.md §10 and its reason is
//! next to it; `0` turns a cap off where a flag says so (load tests from one address need that).

use std::time::Duration;

use clap::Args;

/// Smallest `--idle-timeout-s`.
const MIN_IDLE_TIMEOUT_S: u64 = 5;
/// Smallest `--max-frame-bytes`.
const MIN_FRAME_BYTES: u64 = 1024;

/// Admission and abuse limits.
#[derive(Debug, Clone, Args)]
pub struct Guard {
    /// Seconds a connection may take to send a complete request head (also the keep-alive idle limit between
    /// requests). Slow-drip ("slowloris") connections are closed when it runs out.
    #[arg(long, env = "CHAT_HEADER_TIMEOUT_S", default_value_t = 10)]
    pub header_timeout_s: u64,
    /// Connections that have not upgraded to a socket yet (waiting for or serving HTTP requests). At the cap the
    /// oldest of them is closed to make room, so a flood of idle connections cannot lock out new clients.
    #[arg(long, env = "CHAT_MAX_PENDING_CONNECTIONS", default_value_t = 1024)]
    pub max_pending_connections: usize,
    /// Open connections in all; 0 (the default): the open-file limit minus `--reserved-descriptors`. At the cap
    /// a pending connection is closed to make room, or the new one is, if none is pending.
    #[arg(long, env = "CHAT_MAX_CONNECTIONS", default_value_t = 0)]
    pub max_connections: usize,
    /// Descriptors kept out of the connection budget for the database, logs and the listener itself.
    #[arg(long, env = "CHAT_RESERVED_DESCRIPTORS", default_value_t = 256)]
    pub reserved_descriptors: usize,
    /// Open sockets per client address (HTTP 429 beyond); 0: no cap.
    #[arg(long, env = "CHAT_MAX_SOCKETS_PER_IP", default_value_t = 500)]
    pub max_sockets_per_ip: usize,
    /// Socket connects per client address in any 10 seconds (HTTP 429 beyond); 0: no limit.
    #[arg(long, env = "CHAT_MAX_CONNECTS_PER_IP_PER_10S", default_value_t = 300)]
    pub max_connects_per_ip_per_10s: usize,
    /// Proxies whose `X-Forwarded-For` is believed (addresses or CIDR blocks, comma separated). From anyone else
    /// the header is ignored and the peer address is the client's.
    #[arg(long, env = "CHAT_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
    /// Where the site is served from (`https://chat.example.com`, comma separated). Browsers' `Origin` must be
    /// one of these (or `--allowed-origins`) to open a socket or post a form. Default: the loopback names of
    /// `--addr`'s port (`http://localhost:3000`, `http://127.0.0.1:3000`, `http://[::1]:3000`).
    #[arg(long, env = "CHAT_PUBLIC_ORIGINS", value_delimiter = ',')]
    pub public_origins: Vec<String>,
    /// Largest HTTP request body in bytes (forms and server functions; HTTP 413 beyond).
    #[arg(long, env = "CHAT_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,
    /// Account registrations per client address per hour (each costs an argon2id hash).
    #[arg(long, env = "CHAT_MAX_REGISTRATIONS_PER_IP_PER_HOUR", default_value_t = 20)]
    pub max_registrations_per_ip_per_hour: usize,
    /// Failed logins per (account, address) in 5 minutes before that pair must wait; the owner logging in from
    /// another address is never affected.
    #[arg(long, env = "CHAT_MAX_LOGIN_FAILURES", default_value_t = 5)]
    pub max_login_failures: usize,
    /// Failed logins per address in 5 minutes, whatever the account (password spraying).
    #[arg(long, env = "CHAT_MAX_LOGIN_FAILURES_PER_IP", default_value_t = 20)]
    pub max_login_failures_per_ip: usize,
    /// `history:before` requests per connection in any 10 seconds.
    #[arg(long, env = "CHAT_MAX_HISTORY_PER_10S", default_value_t = 10)]
    pub max_history_per_10s: usize,
    /// Seconds a socket may stay silent before it is closed (1001): clients heartbeat every 30 s (phoenix.js), so a
    /// connection quiet for two beats is gone (a dead peer's socket otherwise stays open until TCP gives up). At
    /// least 5: a smaller value would close sockets between any client's heartbeats (0 would close every socket at
    /// once); keep it above the clients' heartbeat interval.
    #[arg(
        long,
        env = "CHAT_IDLE_TIMEOUT_S",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(MIN_IDLE_TIMEOUT_S..)
    )]
    pub idle_timeout_s: u64,
    /// Largest frame a client may send, in bytes (a WebSocket frame or message: closed with 1009 beyond; a long-poll
    /// line: 413). Bounds what one frame costs to buffer and parse; a chat message (4000 characters) needs < 20 KiB.
    /// At least 1024, which every frame but a long message fits (a heartbeat, a join with its token): below that,
    /// clients could not even join.
    #[arg(
        long,
        env = "CHAT_MAX_FRAME_BYTES",
        default_value_t = 64 * 1024,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(MIN_FRAME_BYTES..)
    )]
    pub max_frame_bytes: usize,
    /// Largest `history:before` page, in messages; a request for more gets this many and pages again. Keeps a page
    /// one bounded store query and one bounded frame.
    #[arg(
        long,
        env = "CHAT_MAX_HISTORY_PAGE",
        default_value_t = protocol::chat::HISTORY_MAX_LIMIT,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub max_history_page: u32,
    /// Seconds a socket may stay open without any joined topic before it is closed (1008).
    #[arg(long, env = "CHAT_JOIN_TIMEOUT_S", default_value_t = 60)]
    pub join_timeout_s: u64,
    /// Longest a token or session is honoured, in seconds, whatever max age it carries (`:infinity` included).
    #[arg(long, env = "CHAT_MAX_TOKEN_AGE_S", default_value_t = 30 * 24 * 3600)]
    pub max_token_age_s: u64,
    /// Largest join reply history in bytes (of message bodies and names): older messages beyond it are left to
    /// `history:before`.
    #[arg(long, env = "CHAT_MAX_JOIN_HISTORY_BYTES", default_value_t = 64 * 1024)]
    pub max_join_history_bytes: usize,
    /// Largest gap a rejoin with `last_seen_id` recovers, in bytes; a larger one gets the latest history with
    /// `recovered: false`.
    #[arg(long, env = "CHAT_MAX_RECOVERY_BYTES", default_value_t = 256 * 1024)]
    pub max_recovery_bytes: usize,
    /// Messages one HTTP API key may post to this node in any 10 seconds (HTTP 429 with `Retry-After` beyond); 0: no
    /// limit. Each node counts apart: a cluster of N nodes lets a key post up to N times this. A backend posts for
    /// many users, so five times a socket's 20, yet a leaked or looping key cannot flood rooms.
    #[arg(long, env = "CHAT_API_MAX_MESSAGES_PER_10S", default_value_t = 100)]
    pub api_max_messages_per_10s: usize,
}

impl Default for Guard {
    fn default() -> Self {
        Self {
            header_timeout_s: 10,
            max_pending_connections: 1024,
            max_connections: 0,
            reserved_descriptors: 256,
            max_sockets_per_ip: 500,
            max_connects_per_ip_per_10s: 300,
            trusted_proxies: Vec::new(),
            public_origins: Vec::new(),
            max_body_bytes: 64 * 1024,
            max_registrations_per_ip_per_hour: 20,
            max_login_failures: 5,
            max_login_failures_per_ip: 20,
            max_history_per_10s: 10,
            idle_timeout_s: 60,
            max_frame_bytes: 64 * 1024,
            max_history_page: protocol::chat::HISTORY_MAX_LIMIT,
            join_timeout_s: 60,
            max_token_age_s: 30 * 24 * 3600,
            max_join_history_bytes: 64 * 1024,
            max_recovery_bytes: 256 * 1024,
            api_max_messages_per_10s: 100,
        }
    }
}

impl Guard {
    /// `--header-timeout-s` as a duration.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_s)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::config::Cli;

    fn parses(args: &[&str]) -> bool {
        Cli::try_parse_from(std::iter::once("server").chain(args.iter().copied())).is_ok()
    }

    #[test]
    fn idle_timeout_and_frame_size_have_floors() {
        assert!(!parses(&["--idle-timeout-s", "0"]), "0 would close every socket at once");
        assert!(!parses(&["--idle-timeout-s", "4"]));
        assert!(parses(&["--idle-timeout-s", "5"]));
        assert!(!parses(&["--max-frame-bytes", "0"]), "0 would refuse every frame");
        assert!(!parses(&["--max-frame-bytes", "1023"]));
        let cli = Cli::try_parse_from(["server", "--max-frame-bytes", "1024"]).expect("1024 is allowed");
        assert_eq!(cli.serve.guard.max_frame_bytes, 1024);
        assert_eq!(Cli::try_parse_from(["server"]).expect("defaults").serve.guard.max_frame_bytes, 64 * 1024);
    }
}
