//! [`NodeId`]: who this process is in a cluster. New at every start, so a restarted process is a new node and nothing
//! another node remembers about the old one (its presences) can be mistaken for the new one's.

use std::{fmt, sync::Arc};

use rand::Rng;

/// Characters of a node id: lowercase letters and digits, safe in Redis keys, logs and JSON.
const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
/// Length of a node id: 36^10 ≈ 3.7e15 values, so two processes never draw the same one.
const LENGTH: usize = 10;

/// This process's identity among the nodes of a cluster (and in `/healthz` and logs even when alone).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeId(Arc<str>);

impl NodeId {
    /// A fresh random id.
    pub fn random() -> Self {
        let mut rng = rand::rng();
        let id: String = (0..LENGTH).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
        Self(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_fresh_and_key_safe() {
        let a = NodeId::random();
        let b = NodeId::random();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), LENGTH);
        assert!(a.as_str().bytes().all(|c| ALPHABET.contains(&c)));
    }
}
