//! A long-poll session: a [`Connection`](crate::socket::Connection) whose transport is a pair of hand-offs instead of
//! a socket.
//!
//! POSTs hand their decoded frames to the connection through a small channel and wait for the acknowledgement that
//! every frame was dispatched. The connection's output (replies, pushes, broadcasts) collects in the session's buffer
//! until a GET takes all of it. The buffer is bounded: when it holds `outbound_capacity` frames the connection stops
//! writing, its outbound queue fills, and the usual slow-consumer rule closes it. A session that nobody polls for
//! one and a half poll windows (15 s by default, as Phoenix) ends: its connection sees the transport close, so its channels terminate and presences leave exactly as
//! when a WebSocket drops.

use std::{
    collections::{HashMap, VecDeque},
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll},
    time::Duration,
};

use base64::{Engine, engine::general_purpose::STANDARD};
use bytes::Bytes;
use protocol::{frame::Frame, serializer::Vsn};
use tokio::{
    sync::{Notify, mpsc, oneshot},
    time::{Instant, Sleep},
};

use crate::{
    frames::Encoded,
    serve::gate::SocketPermit,
    socket::transport::{Inbound, Transport, TransportError},
};

/// POSTs queued for one session before the next one waits.
const PENDING_POSTS: usize = 4;
/// Connections one session may take out of the pending set for good.
const MAX_PINS: usize = 4;

/// What requests hand to the session's connection.
enum Handoff {
    /// A POST's frames; `done` is answered once all were dispatched.
    Frames { frames: VecDeque<Frame>, done: oneshot::Sender<()> },
    /// A poll started or ended: the session is alive (resets the idle timer, re-arms the expiry).
    Polled,
}

/// Output waiting for a poll, and the session's liveness.
struct Output {
    frames: Vec<Bytes>,
    /// The connection ended; a poll that finds nothing buffered answers "session gone".
    closed: bool,
    /// Polls waiting right now: no expiry while one is.
    polling: usize,
    /// When the last poll started or ended.
    last_poll: Instant,
}

/// One long-poll session, shared by its requests and its connection.
pub(crate) struct Session {
    pub(crate) id: u64,
    pub(crate) vsn: Vsn,
    handoff: mpsc::Sender<Handoff>,
    output: Mutex<Output>,
    /// Woken when output arrives or the session ends.
    available: Notify,
    /// Woken when a poll takes the buffer.
    drained: Notify,
    capacity: usize,
    /// How long a session lives without a poll.
    expiry: Duration,
    /// Connections this session took out of the pending set for good ([`Session::may_pin`]).
    pins: std::sync::atomic::AtomicUsize,
}

/// What a poll got.
pub(crate) enum Polled {
    /// Frames, oldest first.
    Frames(Vec<Bytes>),
    /// Nothing within the window.
    Nothing,
    /// The session ended.
    Gone,
}

/// Why a POST's frames were not all dispatched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Undelivered {
    /// The session ended first.
    Gone,
    /// The session did not take them within the window.
    TimedOut,
}

impl Session {
    /// A session and the transport its connection runs on.
    pub(crate) fn open(
        id: u64,
        vsn: Vsn,
        limits: (usize, Duration),
        permit: Option<SocketPermit>,
    ) -> (Arc<Self>, SessionTransport) {
        let (capacity, window) = limits;
        let expiry = window * 3 / 2;
        let (handoff, handoffs) = mpsc::channel(PENDING_POSTS);
        let output = Output { frames: Vec::new(), closed: false, polling: 0, last_poll: Instant::now() };
        let session = Arc::new(Self {
            id,
            vsn,
            handoff,
            output: Mutex::new(output),
            available: Notify::new(),
            drained: Notify::new(),
            capacity,
            expiry,
            pins: std::sync::atomic::AtomicUsize::new(0),
        });
        let transport = SessionTransport {
            session: session.clone(),
            handoffs,
            current: VecDeque::new(),
            done: None,
            expiry: Box::pin(tokio::time::sleep(expiry)),
            _permit: permit,
        };
        (session, transport)
    }

    /// Whether one more of this session's connections may leave the pending set for good: phoenix.js uses one for
    /// its polls and one for its POSTs; a few more allow for reconnects, and the bound keeps one session (and so
    /// one address, through its session limit) from pinning connections without end.
    pub(crate) fn may_pin(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.pins
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |pins| (pins < MAX_PINS).then_some(pins + 1))
            .is_ok()
    }

    fn lock(&self) -> MutexGuard<'_, Output> {
        // Every critical section is a push, a take or a counter: a poisoned lock still guards consistent data.
        self.output.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits up to `window` for output and takes all of it.
    pub(crate) async fn poll(self: &Arc<Self>, window: Duration) -> Polled {
        let _polling = PollGuard::start(self);
        let deadline = tokio::time::sleep(window);
        tokio::pin!(deadline);
        loop {
            let available = self.available.notified();
            tokio::pin!(available);
            available.as_mut().enable();
            {
                let mut output = self.lock();
                if !output.frames.is_empty() {
                    let frames = std::mem::take(&mut output.frames);
                    drop(output);
                    self.drained.notify_waiters();
                    return Polled::Frames(frames);
                }
                if output.closed {
                    return Polled::Gone;
                }
            }
            tokio::select! {
                () = &mut available => {}
                () = &mut deadline => return Polled::Nothing,
            }
        }
    }

    /// Hands a POST's frames to the connection and waits until every one was dispatched.
    pub(crate) async fn dispatch(&self, frames: Vec<Frame>, window: Duration) -> Result<(), Undelivered> {
        let (done, dispatched) = oneshot::channel();
        let handoff = Handoff::Frames { frames: frames.into(), done };
        let delivery = async {
            self.handoff.send(handoff).await.map_err(|_| Undelivered::Gone)?;
            dispatched.await.map_err(|_| Undelivered::Gone)
        };
        tokio::time::timeout(window, delivery).await.unwrap_or(Err(Undelivered::TimedOut))
    }

    /// Whether the session ended and a poll took everything it had buffered.
    pub(crate) fn finished(&self) -> bool {
        let output = self.lock();
        output.closed && output.frames.is_empty()
    }

    /// Marks the session ended and wakes every waiting poll.
    pub(crate) fn end(&self) {
        self.lock().closed = true;
        self.available.notify_waiters();
        self.drained.notify_waiters();
    }

    /// Waits until a poll took what the ended session still buffers, or until nobody polled for the expiry time.
    pub(crate) async fn drained_or_expired(&self) {
        let expired = tokio::time::sleep(self.expiry);
        tokio::pin!(expired);
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.lock().frames.is_empty() {
                return;
            }
            tokio::select! {
                () = &mut drained => {}
                () = &mut expired => return,
            }
        }
    }

    fn signal_poll(&self) {
        // A full hand-off means the connection has work queued and will look at the expiry again anyway.
        let _ = self.handoff.try_send(Handoff::Polled);
    }

    /// When the session expires, or `None` while a poll is waiting.
    fn expires_at(&self) -> Option<Instant> {
        let output = self.lock();
        (output.polling == 0).then(|| output.last_poll + self.expiry)
    }

    /// Appends frames to the buffer, waiting while it is full; `Err` when the session ended.
    async fn buffer(&self, mut frames: Vec<Bytes>) -> Result<(), TransportError> {
        while !frames.is_empty() {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            {
                let mut output = self.lock();
                if output.closed {
                    return Err(TransportError::Broken("long-poll session ended".into()));
                }
                let room = self.capacity.saturating_sub(output.frames.len());
                if room > 0 {
                    let rest = frames.split_off(room.min(frames.len()));
                    output.frames.append(&mut frames);
                    frames = rest;
                    drop(output);
                    self.available.notify_waiters();
                    continue;
                }
            }
            // A full buffer waits for a poll; a client that stops polling meets the expiry here too, as nobody
            // looks at the transport's own expiry while the connection is writing.
            if tokio::time::timeout(self.expiry, drained).await.is_err() {
                return Err(TransportError::Broken("long-poll buffer full and nobody polls".into()));
            }
        }
        Ok(())
    }

    /// Puts frames a poll took back at the front of the buffer (their answer never reached the client).
    pub(crate) fn requeue(&self, mut frames: Vec<Bytes>) {
        {
            let mut output = self.lock();
            frames.append(&mut output.frames);
            output.frames = frames;
        }
        self.available.notify_waiters();
    }
}

/// Counts a waiting poll for as long as it waits, however it ends (answered, or dropped with its request).
struct PollGuard<'a>(&'a Session);

impl<'a> PollGuard<'a> {
    fn start(session: &'a Session) -> Self {
        {
            let mut output = session.lock();
            output.polling += 1;
            output.last_poll = Instant::now();
        }
        session.signal_poll();
        Self(session)
    }
}

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        {
            let mut output = self.0.lock();
            output.polling -= 1;
            output.last_poll = Instant::now();
        }
        self.0.signal_poll();
    }
}

/// The [`Transport`] a session's connection runs on.
pub(crate) struct SessionTransport {
    session: Arc<Session>,
    handoffs: mpsc::Receiver<Handoff>,
    /// Frames of the POST being dispatched.
    current: VecDeque<Frame>,
    /// That POST's acknowledgement, answered when the connection asks for the frame after its last one.
    done: Option<oneshot::Sender<()>>,
    expiry: Pin<Box<Sleep>>,
    /// Released when the session ends.
    _permit: Option<SocketPermit>,
}

impl SessionTransport {
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Inbound, TransportError>>> {
        loop {
            // A POST that stopped waiting (it answered 408) takes the rest of its frames with it.
            if self.done.as_ref().is_some_and(oneshot::Sender::is_closed) {
                self.current.clear();
                self.done = None;
            }
            if let Some(frame) = self.current.pop_front() {
                return Poll::Ready(Some(Ok(Inbound::Decoded(Box::new(frame)))));
            }
            // The connection handles one frame completely (answers buffered) before it asks for the next.
            if let Some(done) = self.done.take() {
                let _ = done.send(());
            }
            match self.handoffs.poll_recv(cx) {
                Poll::Ready(Some(Handoff::Frames { frames, done })) => {
                    if done.is_closed() {
                        continue;
                    }
                    self.current = frames;
                    self.done = Some(done);
                    continue;
                }
                Poll::Ready(Some(Handoff::Polled)) => return Poll::Ready(Some(Ok(Inbound::KeepAlive))),
                // The session holds a sender for as long as the transport lives.
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => {}
            }
            let Some(expires_at) = self.session.expires_at() else {
                // A poll is waiting; its end is signalled through the hand-off.
                return Poll::Pending;
            };
            if expires_at <= Instant::now() {
                return Poll::Ready(Some(Ok(Inbound::Closed)));
            }
            if self.expiry.deadline() != expires_at {
                self.expiry.as_mut().reset(expires_at);
            }
            if self.expiry.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

impl Transport for SessionTransport {
    const VIA: crate::metrics::Via = crate::metrics::Via::LongPoll;

    fn recv(&mut self) -> impl Future<Output = Option<Result<Inbound, TransportError>>> + Send {
        std::future::poll_fn(move |cx| self.poll_recv(cx))
    }

    async fn send_all(&mut self, frames: Vec<Encoded>) -> Result<(), TransportError> {
        let frames = frames
            .into_iter()
            .map(|frame| match frame {
                Encoded::Text(text) => text,
                // JSON answers carry strings: a binary frame travels as base64, as a client's binary POST line does.
                Encoded::Binary(bytes) => Bytes::from(STANDARD.encode(&bytes)),
            })
            .collect();
        self.session.buffer(frames).await
    }

    async fn close(&mut self, code: u16, reason: &str) {
        // Long poll has no close frame: the next poll learns that the session is gone and the client reconnects.
        tracing::debug!(session = self.session.id, code, reason, "long-poll session closed by the server");
        // Every frame of the POST being handled was dispatched (the last one is why the session closes): say so.
        if self.current.is_empty()
            && let Some(done) = self.done.take()
        {
            let _ = done.send(());
        }
        self.session.end();
    }
}

impl Drop for SessionTransport {
    fn drop(&mut self) {
        self.session.end();
    }
}

/// This node's live sessions by id.
#[derive(Default)]
pub(crate) struct Sessions {
    live: Mutex<HashMap<u64, Arc<Session>>>,
}

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<Session>>> {
        self.live.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a session under a fresh id drawn by `open`.
    pub(crate) fn insert(&self, session: Arc<Session>) {
        self.lock().insert(session.id, session);
    }

    /// A fresh, unused session id.
    pub(crate) fn fresh_id(&self) -> u64 {
        let live = self.lock();
        loop {
            let id = rand::random::<u64>();
            if !live.contains_key(&id) {
                return id;
            }
        }
    }

    /// Session `id` unless it is gone: an ended session whose leftovers were delivered counts as gone already (it
    /// is about to be removed).
    pub(crate) fn live(&self, id: u64) -> Option<Arc<Session>> {
        self.lock().get(&id).filter(|session| !session.finished()).cloned()
    }

    pub(crate) fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }
}
