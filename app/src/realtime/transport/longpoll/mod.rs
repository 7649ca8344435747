//! phoenix.js's `LongPoll` transport (docs/phoenix-protocol.md §3): a GET loop that receives, batched POSTs that send.
//!
//! [`LongPoll`] is the transport's rules without I/O, like the socket's state machine: what each poll answer means
//! (200 deliver, 204 poll again, the first 410 opens, a later 410 means the session is gone, 403 forbidden, 0/500
//! broken), the session token each request carries, and the send queue, posted as newline-joined batches of at most
//! [`MAX_BATCH`] lines, one request at a time (what is sent while one is unanswered waits for its ack). The
//! [`driver`] runs it over an [`driver::Http`] client: `fetch` in the browser ([`web`]), hyper natively ([`native`]).
//!
//! Long poll always speaks V2 JSON text frames; a binary frame is sent as a base64 line, as phoenix.js does.

#[cfg(any(target_arch = "wasm32", feature = "native"))]
mod driver;
#[cfg(feature = "native")]
pub(super) mod native;
#[cfg(target_arch = "wasm32")]
pub(super) mod web;

#[cfg(any(target_arch = "wasm32", feature = "native"))]
pub(super) use driver::open;
use protocol::serializer::WireFrame;
use serde_json::Value;

/// The most lines one POST carries (phoenix.js `MAX_LONGPOLL_BATCH_SIZE`, and what the server reads of a body).
pub const MAX_BATCH: usize = 100;
/// How long a request may take (phoenix.js `longpollerTimeout`: twice the server's 10 s poll window).
pub const REQUEST_TIMEOUT_MS: u64 = 20_000;

/// The long-poll URL of a WebSocket URL (phoenix.js `normalizeEndpoint`): `ws://` → `http://`, `wss://` →
/// `https://`, and the path's final `/websocket` → `/longpoll`; the query is kept. (phoenix.js replaces the last
/// `/websocket` anywhere; a socket endpoint's path always ends with it. No substring search: it would cost the room
/// page's WASM a string searcher for one call.)
pub fn long_poll_url(url: &str) -> String {
    let (path, query) = url.split_at(url.bytes().position(|b| b == b'?').unwrap_or(url.len()));
    let mut out = String::with_capacity(url.len() + 2);
    let path = match path.strip_prefix("ws") {
        Some(rest) if rest.starts_with("://") || rest.starts_with("s://") => {
            out.push_str("http");
            rest
        }
        _ => path,
    };
    match path.strip_suffix("/websocket") {
        Some(base) => {
            out.push_str(base);
            out.push_str("/longpoll");
        }
        None => out.push_str(path),
    }
    out.push_str(query);
    out
}

/// The JSON body of every long-poll answer: the real status is in it (the HTTP status is 200).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub token: Option<String>,
    /// Encoded text frames, oldest first.
    pub messages: Vec<String>,
}

impl Answer {
    /// Reads an answer's body; `None` for anything that is not one (phoenix.js treats that as status 0). Read
    /// through a `Value`, whose parser the room page's WASM already holds for payloads: a derived `Deserialize`
    /// added about 3 KB of parser code for this one shape.
    pub fn parse(body: &str) -> Option<Self> {
        let value: Value = serde_json::from_str(body).ok()?;
        let status = u16::try_from(value.get("status")?.as_u64()?).ok()?;
        let token = value.get("token").and_then(Value::as_str).map(str::to_owned);
        let messages = match value.get("messages") {
            Some(Value::Array(messages)) => messages.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            _ => Vec::new(),
        };
        Some(Self { status, token, messages })
    }
}

/// How a long-poll connection ended, from the transport's side: it reports an error, then a close with this code
/// (phoenix.js's synthesized codes; their reasons are `session_gone`, `forbidden`, `internal server error` and
/// `timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub code: u16,
}

/// The session was lost (a 410 after the session had a token).
pub const SESSION_GONE: Failure = Failure { code: 3410 };
/// The server refused the connection (403).
pub const FORBIDDEN: Failure = Failure { code: 1008 };
/// No answer, an unreadable one, a 500 or a refused POST.
pub const BROKEN: Failure = Failure { code: 1011 };
/// A request took longer than [`REQUEST_TIMEOUT_MS`].
pub const TIMED_OUT: Failure = Failure { code: 1005 };

/// What a poll's answer means.
#[derive(Debug, PartialEq, Eq)]
pub enum Polled {
    /// The session opened (the first 410): report open, poll again.
    Opened,
    /// Deliver these frames in order (none for a 204), then poll again.
    Messages(Vec<String>),
    /// Report an error and close.
    Failed(Failure),
}

/// A request to make: a GET when there is no body, else a POST of `application/x-ndjson`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<String>,
}

/// One long-poll connection's state.
#[derive(Debug)]
pub struct LongPoll {
    endpoint: String,
    auth_token: Option<String>,
    /// The session token of the last answer.
    token: Option<String>,
    /// Lines waiting to be posted.
    queue: Vec<String>,
    awaiting_ack: bool,
    closed: bool,
}

impl LongPoll {
    /// A connection to `endpoint` (the long-poll URL with the connect params), not polled yet.
    pub fn new(endpoint: String, auth_token: Option<String>) -> Self {
        Self { endpoint, auth_token, token: None, queue: Vec::new(), awaiting_ack: false, closed: false }
    }

    /// The URL of the next request: the session token as `token` (phoenix 1.8 clients); it also travels as
    /// `X-Phoenix-Longpoll-Token` (phoenix 1.9), and the server takes either.
    fn url(&self) -> String {
        match &self.token {
            Some(token) => {
                let separator = if self.endpoint.contains('?') { '&' } else { '?' };
                format!("{}{separator}token={}", self.endpoint, crate::url::encode(token))
            }
            None => self.endpoint.clone(),
        }
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = Vec::with_capacity(2);
        if let Some(token) = &self.token {
            headers.push(("X-Phoenix-Longpoll-Token", token.clone()));
        }
        if let Some(auth) = &self.auth_token {
            headers.push(("X-Phoenix-AuthToken", auth.clone()));
        }
        headers
    }

    /// The next poll (a GET with `Accept: application/json`).
    pub fn poll(&self) -> Request {
        let mut headers = self.headers();
        headers.push(("Accept", "application/json".to_owned()));
        Request { url: self.url(), headers, body: None }
    }

    /// Reads a poll's answer (`None`: the request failed or the body was not an answer).
    pub fn on_poll(&mut self, answer: Option<Answer>) -> Polled {
        let Some(answer) = answer else { return self.fail(BROKEN) };
        if answer.status == 410 && self.token.is_some() {
            return self.fail(SESSION_GONE);
        }
        self.token = answer.token;
        match answer.status {
            200 => Polled::Messages(answer.messages),
            204 => Polled::Messages(Vec::new()),
            410 => Polled::Opened,
            403 => self.fail(FORBIDDEN),
            // 0, 500 and anything phoenix.js does not know (it throws on those).
            _ => self.fail(BROKEN),
        }
    }

    fn fail(&mut self, failure: Failure) -> Polled {
        self.close();
        Polled::Failed(failure)
    }

    /// Queues a frame; a binary one becomes a base64 line.
    pub fn send(&mut self, frame: WireFrame) {
        if self.closed {
            return;
        }
        let line = match frame {
            WireFrame::Text(text) => text,
            WireFrame::Binary(bytes) => base64(&bytes, true),
        };
        self.queue.push(line);
    }

    /// The next POST, unless one is unanswered or nothing waits: at most [`MAX_BATCH`] queued lines, oldest first.
    pub fn next_post(&mut self) -> Option<Request> {
        if self.awaiting_ack || self.closed || self.queue.is_empty() {
            return None;
        }
        let count = self.queue.len().min(MAX_BATCH);
        let mut body = String::new();
        for (i, line) in self.queue.drain(..count).enumerate() {
            if i > 0 {
                body.push('\n');
            }
            body.push_str(&line);
        }
        self.awaiting_ack = true;
        let mut headers = self.headers();
        headers.push(("Content-Type", "application/x-ndjson".to_owned()));
        Some(Request { url: self.url(), headers, body: Some(body) })
    }

    /// Reads a POST's answer: anything but status 200 ends the connection.
    pub fn on_post(&mut self, answer: Option<Answer>) -> Result<(), Failure> {
        self.awaiting_ack = false;
        match answer {
            Some(answer) if answer.status == 200 => Ok(()),
            _ => {
                self.close();
                Err(BROKEN)
            }
        }
    }

    /// Stops: nothing more is sent (phoenix.js drops its batches).
    pub fn close(&mut self) {
        self.closed = true;
        self.queue.clear();
        self.awaiting_ack = false;
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Lines waiting to be posted.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }
}

/// Standard base64 (`btoa`), with or without its `=` padding.
pub fn base64(bytes: &[u8], pad: bool) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
        if pad {
            for _ in chunk.len()..3 {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
