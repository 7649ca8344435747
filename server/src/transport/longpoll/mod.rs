//! `GET|POST|OPTIONS /socket/longpoll`: the long-poll transport, for clients whose network breaks WebSockets.
//!
//! Phoenix's protocol exactly (docs/protocol.md §2.1): every answer is HTTP 200 with the real status in a JSON body,
//! `{"status": N, "token": T, "messages": [...]}`. A GET without a live session opens one (`410` and its token; `403`
//! when the connect is refused, for the same reasons as a WebSocket's); a GET with one waits up to
//! the poll window (10 s) for output (`200` with every buffered frame, else `204`). A POST carries up to 100 frames
//! as ndjson ([`body`]) and answers `200` once each was dispatched, `410` when the session is gone.
//!
//! A session ([`session`]) is an ordinary [`Connection`](crate::socket::Connection) on a transport made of hand-offs,
//! so identity, limits, rate limits, errors and presence are the WebSocket's own. Its token ([`token`]) names the
//! node that holds it: in a cluster, a request that reaches another node is relayed to the owner over Redis
//! ([`relay`]), so no sticky sessions are needed.

pub mod body;
pub(crate) mod relay;
pub(crate) mod session;
pub(crate) mod token;

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use axum::{
    Router,
    extract::{ConnectInfo, Query, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
    routing::get,
};
use bytes::Bytes;
use futures::FutureExt;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use protocol::serializer::{decode_client_binary, decode_client_text};

use self::{
    body::{BodyError, Line},
    relay::Relay,
    session::{Polled, Session, Sessions, Undelivered},
    token::{SessionRef, SessionTokens},
};
use super::connect::{Refusal, SocketRoute};
use crate::{
    node::NodeId,
    serve::{ConnectionSlot, gate::Slot},
    socket::{Connection, access::SocketLife},
    telemetry::LogBudget,
};

/// Largest POST body: a hundred chat-sized frames with room to spare. A body over it is refused whole (`413`).
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The session-token header (phoenix.js 1.9; 1.8 sends the `token` query param).
const SESSION_TOKEN_HEADER: &str = "x-phoenix-longpoll-token";
/// The header phoenix.js sends its `authToken` in over long poll (the WebSocket uses a subprotocol).
const AUTH_TOKEN_HEADER: &str = "x-phoenix-authtoken";

/// Refused sessions are logged within a budget: a client can retry as fast as it likes.
static REFUSED: LogBudget = LogBudget::new(30);

/// What the long-poll route needs: the socket route (admission, connection services) and the sessions.
#[derive(Clone)]
pub(crate) struct LongPollRoute {
    socket: SocketRoute,
    sessions: Arc<Sessions>,
    tokens: SessionTokens,
    node: NodeId,
    relay: Option<Relay>,
}

impl LongPollRoute {
    pub(crate) fn new(socket: SocketRoute, secret_key_base: &[u8], node: NodeId) -> Self {
        let tokens = SessionTokens::new(secret_key_base);
        Self { socket, sessions: Arc::new(Sessions::default()), tokens, node, relay: None }
    }

    /// Relays requests for other nodes' sessions over `relay`, and serves theirs for this node's sessions.
    pub(crate) fn with_relay(mut self, relay: Relay) -> Self {
        relay.serve(self.clone());
        self.relay = Some(relay);
        self
    }

    /// How long a poll waits for output (and a POST for its dispatch).
    fn window(&self) -> Duration {
        self.socket.services.settings.poll_window
    }
}

/// The `/socket/longpoll` routes, outside the site's body limit (a POST may carry a hundred frames).
pub(crate) fn routes(route: LongPollRoute) -> Router {
    Router::new().route("/socket/longpoll", get(poll).post(publish).options(preflight)).with_state(route)
}

/// A long-poll answer: always HTTP 200, the status in the body.
#[derive(Debug, Default)]
pub(crate) struct Answer {
    status: u16,
    token: Option<String>,
    messages: Option<Vec<Bytes>>,
    reason: Option<String>,
}

impl Answer {
    fn status(status: u16) -> Self {
        Self { status, ..Self::default() }
    }

    fn refused(status: u16, reason: impl ToString) -> Self {
        Self { status, reason: Some(reason.to_string()), ..Self::default() }
    }

    fn with_token(mut self, token: String) -> Self {
        self.token = Some(token);
        self
    }

    fn with_messages(mut self, messages: Vec<Bytes>) -> Self {
        self.messages = Some(messages);
        self
    }

    /// The frames this answer carries, taken out of it.
    pub(crate) fn take_messages(&mut self) -> Option<Vec<Bytes>> {
        self.messages.take().filter(|messages| !messages.is_empty())
    }

    /// The JSON body. Each message is a frame's text as a JSON string (phoenix.js decodes each one again).
    pub(crate) fn to_json(&self) -> String {
        let mut json = format!("{{\"status\":{}", self.status);
        if let Some(token) = &self.token {
            json.push_str(",\"token\":");
            push_string(&mut json, token);
        }
        if let Some(messages) = &self.messages {
            json.push_str(",\"messages\":[");
            for (i, message) in messages.iter().enumerate() {
                if i > 0 {
                    json.push(',');
                }
                push_string(&mut json, &String::from_utf8_lossy(message));
            }
            json.push(']');
        }
        if let Some(reason) = &self.reason {
            json.push_str(",\"reason\":");
            push_string(&mut json, reason);
        }
        json.push('}');
        json
    }
}

fn push_string(json: &mut String, text: &str) {
    // Serializing a string into a String cannot fail.
    json.push_str(&serde_json::to_string(text).unwrap_or_default());
}

/// An answer as the HTTP response, with CORS headers for an allowed cross-site origin.
fn respond(json: String, cors: Option<HeaderValue>) -> Response {
    let mut response = json.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(origin) = cors {
        allow_origin(headers, origin);
    }
    response
}

fn allow_origin(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    headers.insert(header::VARY, HeaderValue::from_static("origin"));
}

/// The request's Origin if it may use the transport (`Ok(None)` when there is none: not a browser).
fn checked_origin(route: &LongPollRoute, headers: &HeaderMap) -> Result<Option<HeaderValue>, Refusal> {
    route.socket.origins.check(headers)?;
    Ok(headers.get(header::ORIGIN).cloned())
}

/// The session named by the request, and the query params without session tokens (the user's connect params).
///
/// phoenix.js 1.8 appends the session token as a `token` query param after the user's own params, which may hold a
/// `token` of their own; 1.9 sends a header. Every `token` value that is a genuine session token counts as one; the
/// last other `token` is the user's.
fn split_query(
    route: &LongPollRoute,
    query: Vec<(String, String)>,
    headers: &HeaderMap,
) -> (Option<SessionRef>, HashMap<String, String>) {
    let mut session = headers
        .get(SESSION_TOKEN_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(|token| route.tokens.read(token));
    let mut params = HashMap::new();
    for (key, value) in query {
        if key == "token"
            && let Some(named) = route.tokens.read(&value)
        {
            session.get_or_insert(named);
            continue;
        }
        params.insert(key, value);
    }
    (session, params)
}

/// Where a request for a session goes.
enum Owner {
    Here(Arc<Session>),
    /// Another node's, reached through this node's relay.
    Elsewhere(Relay, SessionRef),
    Nobody,
}

fn owner(route: &LongPollRoute, session: Option<SessionRef>) -> Owner {
    match session {
        Some(named) if named.node == route.node.as_str() => match route.sessions.live(named.id) {
            Some(session) => Owner::Here(session),
            None => Owner::Nobody,
        },
        Some(named) => match &route.relay {
            Some(relay) => Owner::Elsewhere(relay.clone(), named),
            None => Owner::Nobody,
        },
        None => Owner::Nobody,
    }
}

/// `GET /socket/longpoll`: polls a live session, or opens one.
async fn poll(
    State(route): State<LongPollRoute>,
    Query(query): Query<Vec<(String, String)>>,
    request: Request,
) -> Response {
    let (parts, _body) = request.into_parts();
    let cors = match checked_origin(&route, &parts.headers) {
        Ok(cors) => cors,
        Err(refusal) => return respond(refuse(refusal).to_json(), None),
    };
    let (session, params) = split_query(&route, query, &parts.headers);
    let owner = owner(&route, session);
    let opening = Opening::of(&parts);
    // Not kept while the poll waits: its headers share hyper's read buffer (8 KiB per waiting poll).
    drop(parts);
    // A live session's poll may wait the whole window: its connection is not an idle one to evict meanwhile, and
    // the connection a session keeps polling on stays out of the pending set for good.
    if let (Owner::Here(session), Some(slot)) = (&owner, &opening.slot) {
        pin(session, slot);
    }
    let _hold = match (&owner, &opening.slot) {
        (Owner::Here(_) | Owner::Elsewhere(..), Some(slot)) => Some(slot.hold()),
        _ => None,
    };
    let json = match owner {
        Owner::Here(session) => listen(&route, &session).await.to_json(),
        Owner::Elsewhere(relay, named) => match relay.poll(&named).await {
            Some(json) => json,
            None if route.socket.services.drain.is_cancelled() => return draining(cors),
            None => open(&route, &params, &opening).await.to_json(),
        },
        Owner::Nobody if route.socket.services.drain.is_cancelled() => return draining(cors),
        Owner::Nobody => open(&route, &params, &opening).await.to_json(),
    };
    respond(json, cors)
}

/// The answer to a session opening while the server stops, as the WebSocket upgrade's: HTTP 503 with `Retry-After`
/// and no body. A session opened now would be closed with 1012 at once; phoenix.js reads a body that is not JSON as
/// a failed request (status 0: `onerror`, then it reconnects after its backoff, to another node behind a balancer),
/// whereas a JSON status it does not know (`{"status": 503}`) would throw. Polls of live sessions are still answered:
/// they carry the 1012 close.
fn draining(cors: Option<HeaderValue>) -> Response {
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "1")]).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(origin) = cors {
        allow_origin(response.headers_mut(), origin);
    }
    response
}

/// Takes a live session's connection out of the pending set for good, within the session's bound.
fn pin(session: &Session, slot: &Slot) {
    if slot.is_pending() && session.may_pin() {
        slot.pin();
    }
}

/// Waits for a session's output.
pub(crate) async fn listen(route: &LongPollRoute, session: &Arc<Session>) -> Answer {
    let token = route.tokens.sign(&SessionRef { node: route.node.to_string(), id: session.id });
    match session.poll(route.window()).await {
        Polled::Frames(frames) => Answer::status(200).with_token(token).with_messages(frames),
        Polled::Nothing => Answer::status(204).with_token(token).with_messages(Vec::new()),
        Polled::Gone => Answer::status(410),
    }
}

fn refuse(refusal: Refusal) -> Answer {
    if let Some(suppressed) = REFUSED.admit() {
        tracing::info!(reason = %refusal, suppressed, "long-poll session refused");
    }
    Answer::refused(403, refusal)
}

/// What opening a session needs from the request, so a poll does not hold the request's head while it waits.
struct Opening {
    slot: Option<Arc<Slot>>,
    client: Option<IpAddr>,
    auth_token: Option<String>,
}

impl Opening {
    fn of(parts: &Parts) -> Self {
        Self {
            slot: parts.extensions.get::<ConnectionSlot>().map(|ConnectionSlot(slot)| slot.clone()),
            client: parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip()),
            auth_token: parts.headers.get(AUTH_TOKEN_HEADER).and_then(|value| value.to_str().ok()).map(str::to_owned),
        }
    }
}

/// Opens a session: the WebSocket's connect checks, then a connection on the session's transport. `410` with the
/// new session's token, or `403` with the reason.
async fn open(route: &LongPollRoute, params: &HashMap<String, String>, opening: &Opening) -> Answer {
    let permit = match (&opening.slot, opening.client) {
        (Some(slot), Some(ip)) => match slot.session(ip) {
            Ok(permit) => Some(permit),
            Err(crowded) => return Answer::refused(403, crowded),
        },
        _ => None,
    };
    let auth_token = opening.auth_token.as_deref();
    let info = match route.socket.admit(params, auth_token).await {
        Ok(info) => info,
        Err(refusal) => return refuse(refusal),
    };
    let services = route.socket.services.clone();
    let id = route.sessions.fresh_id();
    let limits = (services.settings.outbound_capacity, services.settings.poll_window);
    let (session, transport) = Session::open(id, info.vsn, limits, permit);
    route.sessions.insert(session.clone());
    let registered = Registered { sessions: route.sessions.clone(), id };
    let tracker = services.connections.clone();
    let life = SocketLife::connect("longpoll", &info, &services.node);
    let run = Connection::new(transport, info, services).run().map(move |ended| {
        life.close(ended);
        // What the connection wrote last (a slow consumer's backlog, say) is still delivered to the next poll. Not
        // tracked: a draining server waits for connections, not for their leftovers.
        tokio::spawn(async move {
            session.drained_or_expired().await;
            drop(registered);
        });
    });
    tokio::spawn(tracker.track_future(run));
    let token = route.tokens.sign(&SessionRef { node: route.node.to_string(), id });
    Answer::status(410).with_token(token).with_messages(Vec::new())
}

/// A session's place in [`Sessions`], given up when dropped: after its leftovers were delivered, or at once if its
/// connection task panicked.
struct Registered {
    sessions: Arc<Sessions>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.sessions.remove(self.id);
    }
}

/// `POST /socket/longpoll`: dispatches a batch of frames to a live session.
async fn publish(
    State(route): State<LongPollRoute>,
    Query(query): Query<Vec<(String, String)>>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let cors = match checked_origin(&route, &parts.headers) {
        Ok(cors) => cors,
        Err(refusal) => return respond(refuse(refusal).to_json(), None),
    };
    let (session, _params) = split_query(&route, query, &parts.headers);
    // The session first: a POST for none is answered without reading its body.
    let owner = owner(&route, session);
    if matches!(owner, Owner::Nobody) {
        return respond(Answer::status(410).to_json(), cors);
    }
    if let (Owner::Here(session), Some(ConnectionSlot(slot))) = (&owner, parts.extensions.get::<ConnectionSlot>()) {
        pin(session, slot);
    }
    let ndjson = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim_start().starts_with("application/x-ndjson"));
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<LengthLimitError>() => {
            return respond(Answer::refused(413, "body too large").to_json(), cors);
        }
        // The client went away or broke the framing mid-body: nobody is left to read an answer.
        Err(_) => return respond(Answer::refused(400, "incomplete body").to_json(), cors),
    };
    let json = match owner {
        Owner::Here(session) => deliver(&route, &session, ndjson, &body).await.to_json(),
        Owner::Elsewhere(relay, named) => {
            relay.post(&named, ndjson, body).await.unwrap_or_else(|| Answer::status(410).to_json())
        }
        Owner::Nobody => Answer::status(410).to_json(),
    };
    respond(json, cors)
}

/// Checks a whole POST body, then hands its frames to the session: nothing is dispatched unless all of it is valid.
pub(crate) async fn deliver(route: &LongPollRoute, session: &Session, ndjson: bool, body: &[u8]) -> Answer {
    let window = route.window();
    let lines = match body::parse_limited(body, ndjson, route.socket.services.settings.max_frame_bytes) {
        Ok(lines) => lines,
        Err(error @ (BodyError::TooManyLines | BodyError::FrameTooLarge)) => return Answer::refused(413, error),
        Err(error @ BodyError::Invalid) => return Answer::refused(400, error),
    };
    let mut frames = Vec::with_capacity(lines.len());
    for line in lines {
        let decoded = match line {
            Line::Text(text) => decode_client_text(session.vsn, &text),
            Line::Binary(bytes) => decode_client_binary(session.vsn, &bytes),
        };
        match decoded {
            Ok(frame) => frames.push(frame),
            Err(_) => return Answer::refused(400, BodyError::Invalid),
        }
    }
    match session.dispatch(frames, window).await {
        Ok(()) => Answer::status(200),
        Err(Undelivered::Gone) => Answer::status(410),
        Err(Undelivered::TimedOut) => Answer::status(408),
    }
}

/// `OPTIONS /socket/longpoll`: the CORS preflight of an allowed cross-site page.
async fn preflight(State(route): State<LongPollRoute>, headers: HeaderMap) -> Response {
    let mut response = ().into_response();
    if let Ok(Some(origin)) = checked_origin(&route, &headers) {
        let headers = response.headers_mut();
        allow_origin(headers, origin);
        let allowed = "x-requested-with, content-type, authorization, x-phoenix-authtoken, x-phoenix-longpoll-token";
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(allowed));
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, OPTIONS"));
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("3600"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_phoenix_json() {
        let answer = Answer::status(200).with_token("t.k".into()).with_messages(vec![Bytes::from_static(b"[\"a\"]")]);
        assert_eq!(answer.to_json(), r#"{"status":200,"token":"t.k","messages":["[\"a\"]"]}"#);
        assert_eq!(Answer::status(410).to_json(), r#"{"status":410}"#);
        assert_eq!(Answer::refused(403, "invalid token").to_json(), r#"{"status":403,"reason":"invalid token"}"#);
    }
}
