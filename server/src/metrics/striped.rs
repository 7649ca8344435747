//! [`Striped`]: a counter for the delivery path, split over cache lines so that threads adding at once do not fight
//! over one.
//!
//! A broadcast to 10,000 sockets is 10,000 written batches, one per connection task, spread over every worker thread:
//! a single atomic there would bounce its cache line between cores 10,000 times per broadcast. Each thread adds to its
//! own stripe instead (uncontended: about as cheap as a plain add) and a reader sums the stripes, which only the
//! scrape and the dashboard do.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Stripes per counter: more than the worker threads of any machine this runs on is not needed, since two threads
/// sharing a stripe only share its cache line, which is still correct.
const STRIPES: usize = 16;

/// One stripe on a cache line of its own (128 bytes: adjacent-line prefetching pairs 64-byte lines on x86).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Stripe(AtomicU64);

/// A monotonic counter summed over per-thread stripes.
#[derive(Debug, Default)]
pub(super) struct Striped {
    stripes: [Stripe; STRIPES],
}

impl Striped {
    /// Adds `n` on this thread's stripe.
    pub(super) fn add(&self, n: u64) {
        self.stripes[stripe()].0.fetch_add(n, Ordering::Relaxed);
    }

    /// The total so far.
    pub(super) fn sum(&self) -> u64 {
        self.stripes.iter().map(|stripe| stripe.0.load(Ordering::Relaxed)).sum()
    }
}

/// This thread's stripe: threads take stripes in turn as they first count.
fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
    }
    STRIPE.with(|stripe| *stripe)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn threads_add_to_their_own_stripes_and_the_sum_holds_every_add() {
        let counter = Arc::new(Striped::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let counter = counter.clone();
                std::thread::spawn(move || (0..1000).for_each(|_| counter.add(3)))
            })
            .collect();
        threads.into_iter().for_each(|thread| thread.join().expect("a counting thread"));
        assert_eq!(counter.sum(), 12_000);
        assert!(counter.stripes.iter().filter(|stripe| stripe.0.load(Ordering::Relaxed) > 0).count() > 1);
    }
}
