//! Transports for the client driver, behind one small trait: the WebSocket ([`websocket`]: the browser's, or
//! tokio-tungstenite with feature `native`) and phoenix.js's long poll ([`longpoll`]: `fetch` in the browser, hyper
//! natively). A transport reports [`TransportEvent`]s tagged with the connection generation the state machine gave
//! it, so events of a replaced connection are ignored.
//!
//! [`memory`] is where a browser session remembers that it needed the long-poll fallback.

pub mod longpoll;
pub mod memory;
mod websocket;

use futures::channel::mpsc::UnboundedSender;
use protocol::serializer::WireFrame;

/// Which transport a connection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// A WebSocket (the default).
    WebSocket,
    /// HTTP long poll (phoenix.js `LongPoll`): no heartbeats, V2 JSON text frames only.
    LongPoll,
}

impl TransportKind {
    /// The name phoenix.js gives the transport (and the room page's `data-transport`).
    pub fn name(self) -> &'static str {
        match self {
            Self::WebSocket => "websocket",
            Self::LongPoll => "longpoll",
        }
    }
}

/// What to open: the state machine's [`Output::Open`](super::socket::Output::Open), for a connector.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The URL with the connect params and `vsn` (already the long-poll URL for [`TransportKind::LongPoll`]).
    pub url: String,
    pub kind: TransportKind,
    /// phoenix.js's `authToken`: a WebSocket offers it as a subprotocol, long poll sends it as `X-Phoenix-AuthToken`.
    pub auth_token: Option<String>,
}

/// What a transport reports.
#[derive(Debug)]
pub enum TransportEvent {
    /// Connection `conn` opened.
    Open(u64),
    /// A frame arrived on `conn`.
    Frame(u64, WireFrame),
    /// `conn` closed with a code (1006 when it just broke).
    Close(u64, u16),
    /// `conn` reported an error.
    Error(u64),
}

/// An open (or opening) transport.
pub trait TransportHandle {
    /// Sends a frame (dropped if the connection is gone).
    fn send(&mut self, frame: WireFrame);
    /// Closes the connection.
    fn close(&mut self, code: u16, reason: &str);
}

/// Opens transports.
pub trait Connector: 'static {
    /// Starts connecting to `target`; events for it go to `events`, tagged `conn`.
    fn open(&self, conn: u64, target: &Target, events: UnboundedSender<TransportEvent>) -> Box<dyn TransportHandle>;
}

/// phoenix.js's subprotocols for an auth token: `phoenix` and `base64url.bearer.phx.` + the token in standard
/// base64 without padding (`btoa`, despite the prefix).
pub fn auth_token_protocols(token: &str) -> [String; 2] {
    ["phoenix".to_owned(), format!("base64url.bearer.phx.{}", longpoll::base64(token.as_bytes(), false))]
}

/// The browser's transports: its WebSocket, and long poll over `fetch`.
#[cfg(target_arch = "wasm32")]
pub struct BrowserConnector;

#[cfg(target_arch = "wasm32")]
impl Connector for BrowserConnector {
    fn open(&self, conn: u64, target: &Target, events: UnboundedSender<TransportEvent>) -> Box<dyn TransportHandle> {
        match target.kind {
            TransportKind::WebSocket => websocket::open_browser(conn, target, events),
            TransportKind::LongPoll => longpoll::open(conn, target, longpoll::web::Fetcher::new(), events),
        }
    }
}

/// Native transports, for tests and tools: tokio-tungstenite, and long poll over hyper. Their tasks are spawned with
/// `spawn_local` (run inside a `LocalSet`).
#[cfg(feature = "native")]
pub struct NativeConnector;

/// The name native callers knew when the WebSocket was the only transport.
#[cfg(feature = "native")]
pub use NativeConnector as TungsteniteConnector;

#[cfg(feature = "native")]
impl Connector for NativeConnector {
    fn open(&self, conn: u64, target: &Target, events: UnboundedSender<TransportEvent>) -> Box<dyn TransportHandle> {
        match target.kind {
            TransportKind::WebSocket => websocket::open_native(conn, target, events),
            TransportKind::LongPoll => longpoll::open(conn, target, longpoll::native::Hyper, events),
        }
    }
}
