//! Runs a [`LongPoll`] over an HTTP client: one local task per connection keeps a GET outstanding and at most one
//! POST, each limited to [`REQUEST_TIMEOUT_MS`], and reports what happens as [`TransportEvent`]s. Each message of a
//! poll is its own event, so the socket handles them one at a time, in order, as WebSocket messages would be.
//!
//! The handle queues sends straight into the shared [`LongPoll`] and wakes the task, which posts once it runs: so
//! everything sent in one turn of the event loop goes out in one batch (phoenix.js's `setTimeout(0)`).

use std::{cell::RefCell, rc::Rc};

use futures::{
    FutureExt, StreamExt,
    channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded},
    future::{Fuse, FusedFuture, LocalBoxFuture},
};
use protocol::serializer::WireFrame;

use super::{Answer, Failure, LongPoll, Polled, REQUEST_TIMEOUT_MS, Request, TIMED_OUT};
use crate::realtime::{
    runtime::{sleep_ms, spawn_local},
    transport::{Target, TransportEvent, TransportHandle},
};

/// What long poll needs of HTTP.
pub(crate) trait Http: 'static {
    /// Makes `request` (a GET without a body, else a POST); resolves to the answer's body whatever its HTTP status
    /// (phoenix.js reads only the JSON), or `None` when there was no answer.
    fn request(&self, request: Request) -> LocalBoxFuture<'static, Option<String>>;
    /// Cancels what is still in flight (dropping a browser `fetch` does not).
    fn abort(&self) {}
}

/// What the handle and the task share.
struct Shared {
    long_poll: LongPoll,
    /// The close code the socket asked for.
    close: Option<u16>,
}

struct Handle {
    shared: Rc<RefCell<Shared>>,
    wake: UnboundedSender<()>,
}

impl TransportHandle for Handle {
    fn send(&mut self, frame: WireFrame) {
        self.shared.borrow_mut().long_poll.send(frame);
        let _ = self.wake.unbounded_send(());
    }

    fn close(&mut self, code: u16, _reason: &str) {
        self.shared.borrow_mut().close = Some(code);
        let _ = self.wake.unbounded_send(());
    }
}

/// Starts polling `target` (its URL already the long-poll one) with `http`; the first poll goes out at once.
pub(crate) fn open(
    conn: u64,
    target: &Target,
    http: impl Http,
    events: UnboundedSender<TransportEvent>,
) -> Box<dyn TransportHandle> {
    let (wake, woken) = unbounded();
    let long_poll = LongPoll::new(target.url.clone(), target.auth_token.clone());
    let shared = Rc::new(RefCell::new(Shared { long_poll, close: None }));
    spawn_local(run(Connection { conn, shared: shared.clone(), http, events }, woken));
    Box::new(Handle { shared, wake })
}

type Pending = Fuse<LocalBoxFuture<'static, Option<Option<Answer>>>>;

struct Connection<H> {
    conn: u64,
    shared: Rc<RefCell<Shared>>,
    http: H,
    events: UnboundedSender<TransportEvent>,
}

impl<H: Http> Connection<H> {
    /// A request that resolves to its answer (`Some(None)` when there was none) or `None` when it timed out.
    fn start(&self, request: Request) -> Pending {
        let answer = self.http.request(request);
        async move {
            futures::select! {
                body = answer.fuse() => Some(body.as_deref().and_then(Answer::parse)),
                () = sleep_ms(REQUEST_TIMEOUT_MS).fuse() => None,
            }
        }
        .boxed_local()
        .fuse()
    }

    fn poll(&self) -> Pending {
        let request = self.shared.borrow().long_poll.poll();
        self.start(request)
    }

    fn report(&self, event: TransportEvent) {
        let _ = self.events.unbounded_send(event);
    }

    /// Stops for good: nothing in flight survives, and the socket hears `close` (after an error, for a failure).
    fn end(&self, failure: Option<Failure>, close: u16) {
        self.shared.borrow_mut().long_poll.close();
        self.http.abort();
        if failure.is_some() {
            self.report(TransportEvent::Error(self.conn));
        }
        self.report(TransportEvent::Close(self.conn, close));
    }

    fn fail(&self, failure: Failure) {
        self.end(Some(failure), failure.code);
    }

    /// Starts the next POST if none is unanswered and something waits.
    fn next_post(&self, post: &mut Pending) {
        if post.is_terminated() {
            let request = self.shared.borrow_mut().long_poll.next_post();
            if let Some(request) = request {
                *post = self.start(request);
            }
        }
    }
}

async fn run<H: Http>(connection: Connection<H>, mut woken: UnboundedReceiver<()>) {
    let conn = connection.conn;
    let mut poll = connection.poll();
    let mut post: Pending = Fuse::terminated();
    loop {
        futures::select! {
            answer = poll => {
                let Some(answer) = answer else { return connection.fail(TIMED_OUT) };
                let polled = connection.shared.borrow_mut().long_poll.on_poll(answer);
                match polled {
                    Polled::Opened => connection.report(TransportEvent::Open(conn)),
                    Polled::Messages(messages) => {
                        for message in messages {
                            connection.report(TransportEvent::Frame(conn, WireFrame::Text(message)));
                        }
                    }
                    Polled::Failed(failure) => return connection.fail(failure),
                }
                poll = connection.poll();
            },
            answer = post => {
                let Some(answer) = answer else { return connection.fail(TIMED_OUT) };
                let posted = connection.shared.borrow_mut().long_poll.on_post(answer);
                if let Err(failure) = posted {
                    return connection.fail(failure);
                }
                connection.next_post(&mut post);
            },
            woke = woken.next() => {
                let close = connection.shared.borrow().close;
                match (woke, close) {
                    (_, Some(code)) => return connection.end(None, code),
                    // The handle is gone: so is the socket that held it.
                    (None, None) => return connection.end(None, 1000),
                    (Some(()), None) => connection.next_post(&mut post),
                }
            },
        }
    }
}
