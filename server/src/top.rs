//! [`Top`]: the `k` largest of a scan, most first and ties by name, owning only the winners.
//!
//! The dashboard's rankings (busiest rooms by members, by messages) walk every active topic once a second; a full
//! sorted copy would clone every name for ten of them. A scan offers each candidate borrowed, and a name is cloned
//! only when it ranks among the `k` kept so far: at most `k` entries are held and each offer is a binary search.

use std::borrow::Borrow;

/// The `k` highest counts seen, as `(name, count)`, most first, ties by name.
#[derive(Debug)]
pub(crate) struct Top<K, C> {
    k: usize,
    ranked: Vec<(K, C)>,
}

impl<K, C: Ord + Copy> Top<K, C> {
    /// An empty ranking of at most `k` entries.
    pub(crate) fn new(k: usize) -> Self {
        Self { k, ranked: Vec::with_capacity(k.min(64)) }
    }

    /// Offers `name` with `count`; `own` makes the owned name, called only when the entry is kept.
    pub(crate) fn offer<Q>(&mut self, name: &Q, count: C, own: impl FnOnce() -> K)
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        // `ranked` is in ranking order, so the entries that rank at or before this one are a prefix.
        let at = self.ranked.partition_point(|(kept, kept_count)| {
            *kept_count > count || (*kept_count == count && kept.borrow() <= name)
        });
        if at >= self.k {
            return;
        }
        if self.ranked.len() == self.k {
            self.ranked.pop();
        }
        self.ranked.insert(at, (own(), count));
    }

    /// The ranking, most first.
    pub(crate) fn into_vec(self) -> Vec<(K, C)> {
        self.ranked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_k_highest_most_first_ties_by_name_and_owns_only_those() {
        let mut top: Top<String, u64> = Top::new(3);
        let mut owned = Vec::new();
        for (name, count) in [("d", 2), ("a", 1), ("c", 5), ("b", 2), ("e", 9), ("f", 1), ("a2", 2)] {
            top.offer(name, count, || {
                owned.push(name);
                name.to_owned()
            });
        }
        let ranked = top.into_vec();
        assert_eq!(ranked, [("e".to_owned(), 9), ("c".to_owned(), 5), ("a2".to_owned(), 2)]);
        assert!(!owned.contains(&"f"), "a name that never ranked is never cloned: {owned:?}");
        assert_eq!(owned.len(), 6, "only entries that ranked when offered were cloned: {owned:?}");
    }

    #[test]
    fn matches_a_full_sort() {
        let counts: Vec<(String, u64)> =
            (0..200u64).map(|n| (format!("room{}", n * 37 % 101), n * 7919 % 13)).collect();
        let mut sorted = counts.clone();
        sorted.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        sorted.truncate(10);
        let mut top = Top::new(10);
        for (name, count) in &counts {
            top.offer(name.as_str(), *count, || name.clone());
        }
        assert_eq!(top.into_vec(), sorted);
        let mut none: Top<String, u64> = Top::new(0);
        none.offer("a", 1, || unreachable!("k = 0 keeps nothing"));
        assert!(none.into_vec().is_empty());
    }
}
