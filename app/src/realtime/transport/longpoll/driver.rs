//! Runs a [`LongPoll`] over an HTTP client: one local task per connection keeps a GET outstanding and at most one
//! POST, each limited to [`REQUEST_TIMEOUT_MS`], and reports what happens as [`TransportEvent`]s. Each message of a
//! poll is its own event, so the socket handles them one at a time, in order, as WebSocket messages would be.

use futures::{
    FutureExt, StreamExt,
    channel::mpsc::{TryRecvError, UnboundedReceiver, UnboundedSender, unbounded},
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

enum Command {
    Send(WireFrame),
    Close(u16),
}

struct Handle {
    commands: UnboundedSender<Command>,
}

impl TransportHandle for Handle {
    fn send(&mut self, frame: WireFrame) {
        let _ = self.commands.unbounded_send(Command::Send(frame));
    }

    fn close(&mut self, code: u16, _reason: &str) {
        let _ = self.commands.unbounded_send(Command::Close(code));
    }
}

/// Starts polling `target` (its URL already the long-poll one) with `http`; the first poll goes out at once.
pub(crate) fn open(
    conn: u64,
    target: &Target,
    http: impl Http,
    events: UnboundedSender<TransportEvent>,
) -> Box<dyn TransportHandle> {
    let (commands, queued) = unbounded();
    let long_poll = LongPoll::new(target.url.clone(), target.auth_token.clone());
    spawn_local(run(Connection { conn, long_poll, http, events }, queued));
    Box::new(Handle { commands })
}

type Pending = Fuse<LocalBoxFuture<'static, Option<Option<Answer>>>>;

struct Connection<H> {
    conn: u64,
    long_poll: LongPoll,
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

    fn report(&self, event: TransportEvent) {
        let _ = self.events.unbounded_send(event);
    }

    /// Ends the connection as phoenix.js does on a failure: an error, then a close with the failure's code.
    fn fail(&mut self, failure: Failure) {
        self.long_poll.close();
        self.http.abort();
        self.report(TransportEvent::Error(self.conn));
        self.report(TransportEvent::Close(self.conn, failure.code));
    }

    fn next_post(&mut self, post: &mut Pending) {
        if post.is_terminated()
            && let Some(request) = self.long_poll.next_post()
        {
            *post = self.start(request);
        }
    }
}

async fn run<H: Http>(mut connection: Connection<H>, mut commands: UnboundedReceiver<Command>) {
    let conn = connection.conn;
    let mut poll = connection.start(connection.long_poll.poll());
    let mut post: Pending = Fuse::terminated();
    loop {
        futures::select! {
            answer = poll => {
                let Some(answer) = answer else { return connection.fail(TIMED_OUT) };
                match connection.long_poll.on_poll(answer) {
                    Polled::Opened => connection.report(TransportEvent::Open(conn)),
                    Polled::Messages(messages) => {
                        for message in messages {
                            connection.report(TransportEvent::Frame(conn, WireFrame::Text(message)));
                        }
                    }
                    Polled::Failed(failure) => return connection.fail(failure),
                }
                poll = connection.start(connection.long_poll.poll());
            },
            answer = post => {
                let Some(answer) = answer else { return connection.fail(TIMED_OUT) };
                if let Err(failure) = connection.long_poll.on_post(answer) {
                    return connection.fail(failure);
                }
                connection.next_post(&mut post);
            },
            command = commands.next() => {
                let mut command = command;
                // Everything sent in the same turn goes out in one batch (phoenix.js's `setTimeout(0)`).
                loop {
                    match command {
                        Some(Command::Send(frame)) => connection.long_poll.send(frame),
                        Some(Command::Close(code)) => {
                            connection.long_poll.close();
                            connection.http.abort();
                            return connection.report(TransportEvent::Close(conn, code));
                        }
                        None => {
                            connection.http.abort();
                            return;
                        }
                    }
                    command = match commands.try_recv() {
                        Ok(next) => Some(next),
                        Err(TryRecvError::Closed) => None,
                        Err(TryRecvError::Empty) => break,
                    };
                }
                connection.next_post(&mut post);
            },
        }
    }
}
