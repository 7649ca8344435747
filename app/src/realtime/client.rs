//! The async driver around [`SocketCore`]: owns the transport, the clock and the timers, and turns the state
//! machine's outputs into streams and futures for the app.
//!
//! One local task per socket (`spawn_local`: the browser is single-threaded, and native tests run it in a tokio
//! `LocalSet`). Handles ([`Socket`], [`ChannelHandle`]) share the state machine through an `Rc<RefCell<…>>`; every API
//! call changes the state machine and wakes the task, which performs whatever outputs resulted.

use std::{cell::RefCell, collections::HashMap, rc::Rc};

use futures::{
    FutureExt, StreamExt,
    channel::{
        mpsc::{UnboundedReceiver, UnboundedSender, unbounded},
        oneshot,
    },
};
use protocol::{
    frame::Payload,
    typed::{Request, to_payload},
};
use serde_json::Value;

use super::{
    channel::{ChannelId, ChannelState, ParamsFn},
    push::{PushFailure, PushId, PushReply},
    runtime::{now_ms, sleep_ms, spawn_local},
    socket::{AlreadyJoined, ConnState, Output, SocketCore, SocketOptions},
    transport::{Connector, TransportEvent, TransportHandle, TransportKind, memory::FallbackMemory},
};

/// Socket-level events.
#[derive(Debug, Clone, PartialEq)]
pub enum SocketEvent {
    /// The transport opened.
    Open,
    /// The transport closed with this code.
    Close(u16),
}

/// Channel-level events.
#[derive(Debug, Clone, PartialEq)]
pub enum ChannelEvent {
    /// Joined (or rejoined) with this reply.
    Joined(Value),
    /// The join was refused (it is retried on the rejoin schedule).
    JoinRefused(Value),
    /// The channel errored (it rejoins).
    Errored(String),
    /// The channel closed for good.
    Closed,
    /// A push or broadcast from the server.
    Message {
        event: String,
        payload: Payload,
        /// The channel's join_ref when it arrived.
        join_ref: Option<String>,
    },
}

struct Shared {
    core: SocketCore,
    channels: HashMap<ChannelId, Vec<UnboundedSender<ChannelEvent>>>,
    replies: HashMap<PushId, oneshot::Sender<PushReply>>,
    listeners: Vec<UnboundedSender<SocketEvent>>,
    memory: FallbackMemory,
}

/// A phoenix.js-style socket.
#[derive(Clone)]
pub struct Socket {
    shared: Rc<RefCell<Shared>>,
    wake: UnboundedSender<()>,
}

impl Socket {
    /// A socket using `connector` for its transports; call [`Socket::connect`] to start. With a long-poll fallback,
    /// the browser tab's `sessionStorage` remembers when it was needed (natively: nothing is remembered).
    pub fn new(options: SocketOptions, connector: impl Connector) -> Self {
        Self::with_memory(options, connector, FallbackMemory::default())
    }

    /// [`Socket::new`] remembering the long-poll fallback in `memory` (natively, share one between sockets to play
    /// one browser session).
    pub fn with_memory(options: SocketOptions, connector: impl Connector, memory: FallbackMemory) -> Self {
        let (wake, wake_rx) = unbounded();
        let mut core = SocketCore::new(options);
        if memory.long_poll() {
            core.use_remembered_long_poll();
        }
        let shared = Rc::new(RefCell::new(Shared {
            core,
            channels: HashMap::new(),
            replies: HashMap::new(),
            listeners: Vec::new(),
            memory,
        }));
        spawn_local(run(shared.clone(), Box::new(connector), wake_rx));
        Self { shared, wake }
    }

    fn poke(&self) {
        let _ = self.wake.unbounded_send(());
    }

    /// Opens the connection (and keeps it open: reconnects on the backoff schedule).
    pub fn connect(&self) {
        self.shared.borrow_mut().core.connect(now_ms());
        self.poke();
    }

    /// Closes on purpose (code 1000, no reconnect).
    pub fn disconnect(&self) {
        self.shared.borrow_mut().core.disconnect(now_ms());
        self.poke();
    }

    pub fn conn_state(&self) -> ConnState {
        self.shared.borrow().core.conn_state()
    }

    /// The transport of the current (or next) connection: long poll once the socket fell back to it.
    pub fn transport(&self) -> TransportKind {
        self.shared.borrow().core.transport()
    }

    /// Socket open/close events from now on.
    pub fn events(&self) -> UnboundedReceiver<SocketEvent> {
        let (sender, receiver) = unbounded();
        self.shared.borrow_mut().listeners.push(sender);
        receiver
    }

    /// A channel for `topic`; `params` is evaluated for every join attempt.
    pub fn channel(&self, topic: &str, params: ParamsFn) -> ChannelHandle {
        let id = self.shared.borrow_mut().core.channel(topic, params);
        ChannelHandle { socket: self.clone(), id }
    }
}

/// A channel on a [`Socket`].
#[derive(Clone)]
pub struct ChannelHandle {
    socket: Socket,
    id: ChannelId,
}

impl ChannelHandle {
    /// Events of this channel from now on.
    pub fn events(&self) -> UnboundedReceiver<ChannelEvent> {
        let (sender, receiver) = unbounded();
        self.socket.shared.borrow_mut().channels.entry(self.id).or_default().push(sender);
        receiver
    }

    /// Joins (and keeps rejoining after errors until left).
    pub fn join(&self) -> Result<(), AlreadyJoined> {
        let result = self.socket.shared.borrow_mut().core.join(self.id, now_ms());
        self.socket.poke();
        result
    }

    /// Leaves for good.
    pub fn leave(&self) {
        self.socket.shared.borrow_mut().core.leave(self.id);
        self.socket.poke();
    }

    /// Pushes `event` now (buffered until joined, as in phoenix.js) and returns a future of its reply. The push
    /// happens at call time, whether or not the future is awaited.
    pub fn push(
        &self,
        event: &str,
        payload: Payload,
        timeout_ms: u64,
    ) -> impl std::future::Future<Output = PushReply> + use<> {
        let (sender, receiver) = oneshot::channel();
        {
            let mut shared = self.socket.shared.borrow_mut();
            let push = shared.core.push(self.id, event, payload, timeout_ms, now_ms());
            shared.replies.insert(push, sender);
        }
        self.socket.poke();
        async move { receiver.await.unwrap_or(PushReply::Timeout) }
    }

    /// Pushes a typed request (its event and payload from `protocol`) and returns a future of its typed reply. Like
    /// [`ChannelHandle::push`], the push happens at call time: dropping the future only drops the reply.
    pub fn request<R: Request>(
        &self,
        request: &R,
        timeout_ms: u64,
    ) -> impl std::future::Future<Output = Result<R::Reply, PushFailure>> + use<R> {
        let reply = to_payload(request).map(|payload| self.push(R::EVENT, payload, timeout_ms));
        async move {
            match reply {
                Ok(reply) => reply.await.typed(),
                Err(_) => Err(PushFailure::Malformed),
            }
        }
    }

    pub fn state(&self) -> ChannelState {
        self.socket.shared.borrow().core.channel_state(self.id)
    }

    /// Current join_ref.
    pub fn join_ref(&self) -> Option<String> {
        self.socket.shared.borrow().core.join_ref(self.id).map(str::to_owned)
    }
}

/// The socket task: perform outputs, then wait for an API call, a transport event or the next timer.
async fn run(shared: Rc<RefCell<Shared>>, connector: Box<dyn Connector>, mut wake: UnboundedReceiver<()>) {
    let (events_tx, mut events) = unbounded::<TransportEvent>();
    let mut transport: Option<Box<dyn TransportHandle>> = None;
    loop {
        perform(&shared, connector.as_ref(), &mut transport, &events_tx);
        let deadline = shared.borrow().core.next_deadline();
        let sleep = match deadline {
            Some(at) => sleep_ms(at.saturating_sub(now_ms())).left_future(),
            None => futures::future::pending().right_future(),
        };
        futures::select! {
            woken = wake.next() => if woken.is_none() { break },
            event = events.next() => if let Some(event) = event {
                let now = now_ms();
                let mut shared = shared.borrow_mut();
                match event {
                    TransportEvent::Open(conn) => shared.core.on_open(conn, now),
                    TransportEvent::Frame(conn, frame) => shared.core.on_frame(conn, &frame, now),
                    TransportEvent::Close(conn, code) => shared.core.on_close(conn, code, now),
                    TransportEvent::Error(conn) => shared.core.on_error(conn, now),
                }
            },
            () = sleep.fuse() => {},
        }
        shared.borrow_mut().core.on_timer(now_ms());
    }
    if let Some(mut transport) = transport {
        transport.close(1000, "socket dropped");
    }
}

/// Performs every pending output of the state machine.
fn perform(
    shared: &Rc<RefCell<Shared>>,
    connector: &dyn Connector,
    transport: &mut Option<Box<dyn TransportHandle>>,
    events: &UnboundedSender<TransportEvent>,
) {
    loop {
        let Some(output) = shared.borrow_mut().core.poll_output() else { return };
        match output {
            Output::Open { conn, target } => {
                if let Some(mut old) = transport.take() {
                    old.close(1000, "replaced");
                }
                *transport = Some(connector.open(conn, &target, events.clone()));
            }
            Output::Send { frame, .. } => {
                if let Some(transport) = transport.as_mut() {
                    transport.send(frame);
                }
            }
            Output::Close { code, reason, .. } => {
                if let Some(mut old) = transport.take() {
                    old.close(code, &reason);
                }
            }
            Output::SocketOpened => notify_socket(shared, SocketEvent::Open),
            Output::SocketClosed { code } => notify_socket(shared, SocketEvent::Close(code)),
            Output::Joined { channel, response } => notify(shared, channel, ChannelEvent::Joined(response)),
            Output::JoinRefused { channel, response } => notify(shared, channel, ChannelEvent::JoinRefused(response)),
            Output::ChannelErrored { channel, reason } => notify(shared, channel, ChannelEvent::Errored(reason)),
            Output::ChannelClosed { channel } => notify(shared, channel, ChannelEvent::Closed),
            Output::Message { channel, event, payload, join_ref } => {
                notify(shared, channel, ChannelEvent::Message { event, payload, join_ref });
            }
            Output::RememberLongPoll => shared.borrow().memory.remember_long_poll(),
            Output::Reply { push, reply } => {
                if let Some(sender) = shared.borrow_mut().replies.remove(&push) {
                    let _ = sender.send(reply);
                }
            }
        }
    }
}

fn notify(shared: &Rc<RefCell<Shared>>, channel: ChannelId, event: ChannelEvent) {
    let mut shared = shared.borrow_mut();
    if let Some(listeners) = shared.channels.get_mut(&channel) {
        listeners.retain(|l| l.unbounded_send(event.clone()).is_ok());
    }
}

fn notify_socket(shared: &Rc<RefCell<Shared>>, event: SocketEvent) {
    shared.borrow_mut().listeners.retain(|l| l.unbounded_send(event.clone()).is_ok());
}
