//! The bounded outbound queue of one connection and its slow-consumer policy.
//!
//! Everything that is not a direct answer to the frame being handled (broadcasts, presence diffs) reaches a
//! connection through its [`Outbox`]. The queue is bounded: a producer never waits for a slow
//! socket. When the queue is full the item is dropped and the connection is flagged as a slow consumer; its task
//! then closes the socket with 1011 and the client reconnects and recovers from history with `last_seen_id`.
//! Other connections never notice.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use tokio::sync::{Notify, mpsc};

use super::Broadcast;

/// One item in a connection's outbound queue: a broadcast on one of its topics, encoded (once per serializer version,
/// shared by every subscriber) when written. One pointer wide, so an idle connection's queue block stays small.
pub(crate) type Outbound = Arc<Broadcast>;

/// Connection-wide flags producers can raise without going through the (possibly full) queue.
#[derive(Debug, Default)]
struct Control {
    overflowed: AtomicBool,
    wake: Notify,
}

/// The producer side of a connection's queue. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    tx: mpsc::Sender<Outbound>,
    control: Arc<Control>,
}

/// The consumer side, owned by the connection task.
#[derive(Debug)]
pub(crate) struct Inbox {
    rx: mpsc::Receiver<Outbound>,
    control: Arc<Control>,
}

/// Creates a queue holding at most `capacity` items.
pub(crate) fn queue(capacity: usize) -> (Outbox, Inbox) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let control = Arc::new(Control::default());
    (Outbox { tx, control: control.clone() }, Inbox { rx, control })
}

impl Outbox {
    /// Enqueues without waiting. Returns false when the connection is gone or has just been flagged as a slow
    /// consumer (the item is dropped; the client will recover it from history).
    pub(crate) fn deliver(&self, item: Outbound) -> bool {
        match self.tx.try_send(item) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !self.control.overflowed.swap(true, Ordering::AcqRel) {
                    self.control.wake.notify_one();
                }
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

impl Inbox {
    /// Receives up to `limit` queued items into `buffer`; returns 0 only when every producer is gone.
    /// Cancel-safe (it is raced in the connection's `select!`).
    pub(crate) async fn recv_many(&mut self, buffer: &mut Vec<Outbound>, limit: usize) -> usize {
        self.rx.recv_many(buffer, limit).await
    }

    /// A handle that completes when a producer flags this connection as a slow consumer.
    pub(crate) fn overflow_signal(&self) -> OverflowSignal {
        OverflowSignal(self.control.clone())
    }

    #[cfg(test)]
    pub(crate) fn has_overflowed(&self) -> bool {
        self.control.overflowed.load(Ordering::Acquire)
    }
}

/// Observes the slow-consumer flag of one connection (see [`Inbox::overflow_signal`]).
#[derive(Debug, Clone)]
pub(crate) struct OverflowSignal(Arc<Control>);

impl OverflowSignal {
    /// Completes once the queue has overflowed. Cancel-safe: it only observes the flag.
    pub(crate) async fn wait(&self) {
        loop {
            let notified = self.0.wake.notified();
            if self.0.overflowed.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }
}
