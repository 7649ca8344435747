//! The access log: one line per HTTP request (target `access`, level info) with the method, the path, the *names* of
//! the query params, the status, the time to the response head, the client address and the node.
//!
//! No value of the query string is ever logged: the socket endpoints take a `token` param (and long poll a session
//! token), and any future param may carry a secret, so a rule that redacts known names would fail open. Headers are
//! never logged either (`Cookie`, `Authorization`, and `Sec-WebSocket-Protocol`, which carries phoenix.js's
//! `authToken`). A WebSocket upgrade is logged as its `101`; the socket's own life is logged by
//! `crate::socket::access` (connect and close lines).

use std::{net::SocketAddr, time::Instant};

use axum::{
    extract::{ConnectInfo, Request, State},
    middleware::Next,
    response::Response,
};

use crate::node::NodeId;

/// Longest path logged, in bytes: the request head is bounded, but a line this long helps nobody.
const MAX_PATH: usize = 256;
/// Most query param names logged per request.
const MAX_PARAMS: usize = 16;
/// Longest query param name logged, in bytes.
const MAX_PARAM_NAME: usize = 32;

/// Middleware: runs the request, then logs its line.
pub(crate) async fn log_request(State(node): State<NodeId>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = truncated(request.uri().path(), MAX_PATH).to_owned();
    let params = request.uri().query().map(param_names).filter(|names| !names.is_empty());
    let client = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
    let response = next.run(request).await;
    let duration_ms = crate::telemetry::millis(started.elapsed());
    tracing::info!(
        target: "access",
        method = %method,
        path,
        params,
        status = response.status().as_u16(),
        duration_ms,
        client = client.as_ref().map(tracing::field::display),
        node = %node,
        "request"
    );
    response
}

/// The names of a query string's params, comma separated, without a single value: `vsn=2.0.0&token=…` is
/// `vsn,token`.
pub(crate) fn param_names(query: &str) -> String {
    let mut names = String::new();
    for (index, pair) in query.split('&').filter(|pair| !pair.is_empty()).enumerate() {
        if index == MAX_PARAMS {
            names.push_str(",…");
            break;
        }
        let name = pair.split_once('=').map_or(pair, |(name, _)| name);
        if index > 0 {
            names.push(',');
        }
        names.push_str(truncated(name, MAX_PARAM_NAME));
    }
    names
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn truncated(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_param_names_are_kept() {
        let query = "vsn=2.0.0&token=SFMyNTY.secret.sig&user=ada&authToken=xyz";
        let names = param_names(query);
        assert_eq!(names, "vsn,token,user,authToken");
        for secret in ["SFMyNTY", "secret", "xyz", "ada", "2.0.0"] {
            assert!(!names.contains(secret), "{secret} leaked into {names}");
        }
    }

    #[test]
    fn bare_names_empty_pairs_and_values_with_equals_signs() {
        assert_eq!(param_names("flag&&a=b=c&=orphan"), "flag,a,");
        assert_eq!(param_names(""), "");
    }

    #[test]
    fn a_flood_of_params_is_cut() {
        let query: Vec<String> = (0..100).map(|i| format!("p{i}=v")).collect();
        let names = param_names(&query.join("&"));
        assert_eq!(names.split(',').count(), MAX_PARAMS + 1);
        assert!(names.ends_with(",…"));
        let long = format!("{}=1", "n".repeat(1000));
        assert_eq!(param_names(&long).len(), MAX_PARAM_NAME);
    }

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(truncated("/héllo", 2), "/h");
        assert_eq!(truncated("/héllo", 3), "/h", "é is two bytes: not cut in half");
        assert_eq!(truncated("/héllo", 4), "/hé");
        assert_eq!(truncated("/a", 256), "/a");
    }
}
