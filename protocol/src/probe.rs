//! The answers of the probes `GET /healthz` (liveness) and `GET /readyz` (readiness), docs/protocol.md §2.

use serde::{Deserialize, Serialize};

/// What a probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeStatus {
    /// Serving (liveness), or ready for new clients (readiness): HTTP 200.
    Ok,
    /// Stopping: sockets are being closed with 1012 and no new ones are accepted (readiness only): HTTP 503.
    Draining,
    /// Something this node needs is unreachable, see the reason (readiness only): HTTP 503.
    Unavailable,
}

/// Why a node is not ready, in [`ProbeAnswer::reason`].
pub mod reasons {
    /// The server received its stop signal.
    pub const DRAINING: &str = "draining";
    /// The message store (SQLite or PostgreSQL) did not answer its health check.
    pub const STORE_UNAVAILABLE: &str = "store unavailable";
    /// Cluster mode: this node's subscription to the Redis bus is down.
    pub const REDIS_UNAVAILABLE: &str = "redis unavailable";
}

/// The JSON body of a probe: `{"status": "ok", "node": "…"}`, with a `reason` when the status is not `ok`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeAnswer {
    /// What the probe found.
    pub status: ProbeStatus,
    /// The node that answered (new at every start).
    pub node: String,
    /// Why the status is not `ok` (one of [`reasons`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answers_keep_their_shape() {
        let ok = ProbeAnswer { status: ProbeStatus::Ok, node: "n1".into(), reason: None };
        assert_eq!(serde_json::to_string(&ok).ok().as_deref(), Some(r#"{"status":"ok","node":"n1"}"#));
        let draining =
            ProbeAnswer { status: ProbeStatus::Draining, node: "n1".into(), reason: Some(reasons::DRAINING.into()) };
        assert_eq!(
            serde_json::to_string(&draining).ok().as_deref(),
            Some(r#"{"status":"draining","node":"n1","reason":"draining"}"#)
        );
    }
}
