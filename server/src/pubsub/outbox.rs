//! The bounded outbound queue of one connection and its slow-consumer policy.
//!
//! Everything that is not a direct answer to the frame being handled (broadcasts, presence diffs) reaches a
//! connection through its [`Outbox`]. The queue is bounded: a producer never waits for a slow
//! socket. When the queue is full the item is dropped and the connection is flagged as a slow consumer; its task
//! then closes the socket with 1011 and the client reconnects and recovers from history with `last_seen_id`.
//! Other connections never notice.
//!
//! The queue is a `VecDeque` behind a mutex with one waker, not a channel: an idle connection's queue holds no
//! buffer at all (a tokio `mpsc` keeps a block of slots and cache-padded halves, about 0.5 KiB), a producer takes one
//! uncontended lock per item, and the consumer takes a whole batch under one lock. The slow-consumer flag lives beside
//! it, so the connection task waits on both with the same waker.

use std::{
    collections::VecDeque,
    future::poll_fn,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    task::Poll,
};

use futures::task::AtomicWaker;

use super::Broadcast;

/// One item in a connection's outbound queue: a broadcast on one of its topics, encoded (once per serializer version,
/// shared by every subscriber) when written.
pub(crate) type Outbound = Arc<Broadcast>;

/// Queue capacity kept after a batch is taken; a larger buffer (after a burst) is released.
const KEPT_CAPACITY: usize = 16;

/// What producers and the consumer share.
#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    /// The connection task, woken when the queue turns non-empty, overflows or loses its last producer.
    waker: AtomicWaker,
    /// Set once, when an item did not fit; read without the lock.
    overflowed: AtomicBool,
    /// Live [`Outbox`] handles.
    producers: AtomicUsize,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<Outbound>,
    /// The [`Inbox`] was dropped: deliveries fail.
    consumer_gone: bool,
    /// Items refused since the queue overflowed (the one that did not fit and every later one), for the
    /// slow-consumer meters. Written only once the connection is flagged; it fits in the padding after the flag.
    refused: u32,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Every critical section is a push, a drain or a flag write: a poisoned queue is still consistent.
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The producer side of a connection's queue. Cheap to clone.
#[derive(Debug)]
pub(crate) struct Outbox {
    shared: Arc<Shared>,
}

/// The consumer side, owned by the connection task.
#[derive(Debug)]
pub(crate) struct Inbox {
    shared: Arc<Shared>,
}

/// Creates a queue holding at most `capacity` items.
pub(crate) fn queue(capacity: usize) -> (Outbox, Inbox) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue::default()),
        waker: AtomicWaker::new(),
        overflowed: AtomicBool::new(false),
        producers: AtomicUsize::new(1),
        capacity: capacity.max(1),
    });
    (Outbox { shared: shared.clone() }, Inbox { shared })
}

impl Clone for Outbox {
    fn clone(&self) -> Self {
        self.shared.producers.fetch_add(1, Ordering::Relaxed);
        Self { shared: self.shared.clone() }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        if self.shared.producers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.waker.wake();
        }
    }
}

impl Outbox {
    /// Enqueues without waiting. Returns false when the connection is gone or is flagged as a slow consumer (the item
    /// is dropped; the client will recover it from history).
    pub(crate) fn deliver(&self, item: Outbound) -> bool {
        let shared = &*self.shared;
        if shared.overflowed.load(Ordering::Acquire) {
            // A slow consumer's path only: counted for its meters, under the lock nobody else wants any more.
            let mut queue = shared.lock();
            queue.refused = queue.refused.saturating_add(1);
            return false;
        }
        let mut queue = shared.lock();
        if queue.consumer_gone {
            return false;
        }
        if queue.items.len() >= shared.capacity {
            queue.refused = queue.refused.saturating_add(1);
            drop(queue);
            shared.overflowed.store(true, Ordering::Release);
            shared.waker.wake();
            return false;
        }
        let was_empty = queue.items.is_empty();
        queue.items.push_back(item);
        drop(queue);
        // One wake per batch: while items wait, the consumer is already due to run.
        if was_empty {
            shared.waker.wake();
        }
        true
    }
}

impl Inbox {
    /// Receives up to `limit` queued items into `buffer`; returns 0 only when every producer is gone.
    /// Cancel-safe (it is raced in the connection's `select!`): items are moved only when it completes.
    pub(crate) async fn recv_many(&mut self, buffer: &mut Vec<Outbound>, limit: usize) -> usize {
        let shared = &*self.shared;
        poll_fn(|cx| {
            shared.waker.register(cx.waker());
            let mut queue = shared.lock();
            if !queue.items.is_empty() {
                let taken = queue.items.len().min(limit.max(1));
                buffer.extend(queue.items.drain(..taken));
                if queue.items.is_empty() && queue.items.capacity() > KEPT_CAPACITY {
                    queue.items = VecDeque::new();
                }
                return Poll::Ready(taken);
            }
            if shared.producers.load(Ordering::Acquire) == 0 {
                return Poll::Ready(0);
            }
            Poll::Pending
        })
        .await
    }

    /// A handle that completes when a producer flags this connection as a slow consumer.
    pub(crate) fn overflow_signal(&self) -> OverflowSignal {
        OverflowSignal(self.shared.clone())
    }

    /// Whether a producer flagged this connection as a slow consumer.
    pub(crate) fn has_overflowed(&self) -> bool {
        self.shared.overflowed.load(Ordering::Acquire)
    }

    /// Empties the queue of a slow consumer being cut off: how many broadcasts it never got, those still queued
    /// plus those refused since the overflow (what producers offer after this is refused and not counted).
    pub(crate) fn discard(&mut self) -> u64 {
        let mut queue = self.shared.lock();
        let queued = queue.items.len() as u64;
        queue.items = VecDeque::new();
        queued + u64::from(std::mem::take(&mut queue.refused))
    }
}

/// Observes the slow-consumer flag of one connection (see [`Inbox::overflow_signal`]).
#[derive(Debug, Clone)]
pub(crate) struct OverflowSignal(Arc<Shared>);

impl OverflowSignal {
    /// Completes once the queue has overflowed. Cancel-safe: it only observes the flag. Registers the same waker as
    /// [`Inbox::recv_many`]: both are polled by the connection's one task.
    pub(crate) async fn wait(&self) {
        let shared = &*self.0;
        poll_fn(|cx| {
            if shared.overflowed.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            shared.waker.register(cx.waker());
            if shared.overflowed.load(Ordering::Acquire) { Poll::Ready(()) } else { Poll::Pending }
        })
        .await
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        let mut queue = self.shared.lock();
        queue.consumer_gone = true;
        queue.items = VecDeque::new();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use protocol::frame::Payload;

    use super::*;

    fn item(n: u64) -> Outbound {
        Arc::new(Broadcast::new(Arc::from("t"), "msg", Payload::Json(serde_json::json!({ "n": n }))))
    }

    #[tokio::test]
    async fn batches_arrive_in_order_up_to_the_limit_and_the_buffer_is_released() {
        let (outbox, mut inbox) = queue(100);
        let items: Vec<_> = (0..40).map(item).collect();
        for item in &items {
            assert!(outbox.deliver(item.clone()));
        }
        let mut got = Vec::new();
        assert_eq!(inbox.recv_many(&mut got, 32).await, 32);
        assert_eq!(inbox.recv_many(&mut got, 32).await, 8);
        assert_eq!(got.len(), 40);
        assert!(got.iter().zip(&items).all(|(got, sent)| Arc::ptr_eq(got, sent)), "in order");
        assert_eq!(inbox.shared.lock().items.capacity(), 0, "an emptied queue holds no buffer");
    }

    #[tokio::test]
    async fn a_full_queue_flags_overflow_and_wakes_the_consumer() {
        let (outbox, inbox) = queue(2);
        let signal = inbox.overflow_signal();
        let waiting = tokio::spawn(async move {
            signal.wait().await;
            inbox
        });
        assert!(outbox.deliver(item(1)) && outbox.deliver(item(2)));
        assert!(!outbox.deliver(item(3)), "the third item does not fit");
        let inbox = tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap();
        let mut inbox = inbox;
        assert!(inbox.has_overflowed());
        assert!(!outbox.deliver(item(4)), "a flagged consumer takes nothing more");
        assert_eq!(inbox.discard(), 4, "two queued, the one that did not fit and the one after");
        assert_eq!(inbox.discard(), 0, "counted once");
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn the_refusal_count_costs_a_queue_no_memory() {
        assert_eq!(std::mem::size_of::<Queue>(), std::mem::size_of::<VecDeque<Outbound>>() + 8);
    }

    #[tokio::test]
    async fn the_consumer_learns_when_every_producer_is_gone_and_producers_when_it_is() {
        let (outbox, mut inbox) = queue(4);
        let second = outbox.clone();
        drop(outbox);
        assert!(second.deliver(item(1)));
        let mut got = Vec::new();
        assert_eq!(inbox.recv_many(&mut got, 8).await, 1);
        let waiting = tokio::spawn(async move { inbox.recv_many(&mut Vec::new(), 8).await });
        tokio::task::yield_now().await;
        drop(second);
        assert_eq!(tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap(), 0);
        let (outbox, inbox) = queue(4);
        drop(inbox);
        assert!(!outbox.deliver(item(1)), "nobody reads this queue any more");
    }
}
