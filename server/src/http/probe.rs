//! The probes: `GET /healthz` (liveness: the process serves HTTP, nothing else is checked, so a database outage never
//! gets a node restarted) and `GET /readyz` (readiness: should a load balancer send new clients here?).
//!
//! Not ready while draining (from the stop signal until the sockets are closed; `launch` keeps the listener serving
//! HTTP that long so the 503 can be seen), while the store does not answer its health check, or, in cluster mode,
//! while the Redis bus subscription is down. Answers are [`protocol::probe::ProbeAnswer`] bodies.

use std::{sync::Arc, time::Duration};

use axum::{Json, extract::State, http::StatusCode};
use protocol::probe::{ProbeAnswer, ProbeStatus, reasons};
use tokio_util::sync::CancellationToken;

use crate::{cluster::Cluster, node::NodeId, store::Store, telemetry::LogBudget};

/// Longest a readiness check waits for the store: a probe's own timeout is typically a second or two, and an answer
/// (503) is more useful to it than none. The PostgreSQL pool's acquire timeout (3 s) is longer.
const STORE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Failed checks are logged within a budget: a load balancer probes every few seconds, from every instance.
static NOT_READY: LogBudget = LogBudget::new(6);

/// What the probes look at.
#[derive(Clone)]
pub(crate) struct Probes {
    pub(crate) node: NodeId,
    /// Cancelled at the stop signal.
    pub(crate) drain: CancellationToken,
    pub(crate) store: Arc<dyn Store>,
    /// In cluster mode, whose bus must be connected.
    pub(crate) cluster: Option<Arc<Cluster>>,
}

impl Probes {
    /// `None` when ready, else the status and reason to answer.
    async fn unready(&self) -> Option<(ProbeStatus, &'static str)> {
        if self.drain.is_cancelled() {
            return Some((ProbeStatus::Draining, reasons::DRAINING));
        }
        match tokio::time::timeout(STORE_CHECK_TIMEOUT, self.store.health()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                if let Some(suppressed) = NOT_READY.admit() {
                    tracing::warn!(%error, suppressed, "readiness: store health check failed");
                }
                return Some((ProbeStatus::Unavailable, reasons::STORE_UNAVAILABLE));
            }
            Err(_) => return Some((ProbeStatus::Unavailable, reasons::STORE_UNAVAILABLE)),
        }
        if self.cluster.as_ref().is_some_and(|cluster| !cluster.bus_connected()) {
            return Some((ProbeStatus::Unavailable, reasons::REDIS_UNAVAILABLE));
        }
        None
    }

    fn answer(&self, status: ProbeStatus, reason: Option<&str>) -> Json<ProbeAnswer> {
        Json(ProbeAnswer { status, node: self.node.to_string(), reason: reason.map(str::to_owned) })
    }
}

/// `GET /healthz`: 200 `{"status": "ok", "node": …}` whenever the process answers at all.
pub(crate) async fn healthz(State(probes): State<Probes>) -> (StatusCode, Json<ProbeAnswer>) {
    (StatusCode::OK, probes.answer(ProbeStatus::Ok, None))
}

/// `GET /readyz`: 200 `{"status": "ok", "node": …}`, or 503 with `draining` or `unavailable` and the reason.
pub(crate) async fn readyz(State(probes): State<Probes>) -> (StatusCode, Json<ProbeAnswer>) {
    match probes.unready().await {
        None => (StatusCode::OK, probes.answer(ProbeStatus::Ok, None)),
        Some((status, reason)) => (StatusCode::SERVICE_UNAVAILABLE, probes.answer(status, Some(reason))),
    }
}
