//! The socket lines of the access log (target `access`): `socket connect` when a connection starts and
//! `socket close` when it ends, with the transport, the connection id, the user name, how long it lasted, who closed
//! it and, when the server did, the close code.
//!
//! Two lines per connection and none per frame: nothing here is on the message path. Never the token a client
//! connected with; the user name is what presence shows anyway.

use std::{sync::Arc, time::Instant};

use super::Ended;
use crate::{channel::SocketInfo, node::NodeId, pubsub::ConnId};

/// A connection's life as the access log sees it; [`SocketLife::connect`] logs its start, [`SocketLife::close`] its
/// end.
pub(crate) struct SocketLife {
    transport: &'static str,
    conn: ConnId,
    user: Arc<str>,
    node: NodeId,
    started: Instant,
}

impl SocketLife {
    /// Logs `socket connect` for a connection on `transport` (`websocket` or `longpoll`).
    pub(crate) fn connect(transport: &'static str, info: &SocketInfo, node: &NodeId) -> Self {
        tracing::info!(target: "access", transport, conn = info.conn, user = %info.user, node = %node, "socket connect");
        Self { transport, conn: info.conn, user: info.user.clone(), node: node.clone(), started: Instant::now() }
    }

    /// Logs `socket close`: `closed_by` `server` with the close code sent, or `client` (it closed or the link broke).
    pub(crate) fn close(self, ended: Ended) {
        let duration_ms = crate::telemetry::millis(self.started.elapsed());
        let (closed_by, code) = match ended {
            Ended::ClientGone => ("client", None),
            Ended::Closed(code) => ("server", Some(code)),
        };
        tracing::info!(
            target: "access",
            transport = self.transport,
            conn = self.conn,
            user = %self.user,
            closed_by,
            code,
            duration_ms,
            node = %self.node,
            "socket close"
        );
    }
}
