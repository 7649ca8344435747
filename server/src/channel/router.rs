//! Topic routing: which [`Channel`] handles a topic.
//!
//! Patterns follow Phoenix: `room:*` matches every topic starting with `room:`, a pattern without `*` matches
//! exactly, and `*` is only allowed at the end. The first registered pattern that matches wins.

use std::sync::Arc;

use super::Channel;

/// An ordered list of (pattern, channel).
#[derive(Default, Clone)]
pub(crate) struct ChannelRouter {
    routes: Vec<(Pattern, Arc<dyn Channel>)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Pattern {
    Exact(String),
    Prefix(String),
}

/// A pattern with `*` anywhere but the end.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid topic pattern {0:?}: `*` is only allowed at the end")]
pub struct InvalidPattern(pub String);

impl ChannelRouter {
    /// An empty router (every join gets `unmatched topic`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `channel` for `pattern`.
    pub fn route(mut self, pattern: &str, channel: Arc<dyn Channel>) -> Result<Self, InvalidPattern> {
        let parsed = match pattern.find('*') {
            None => Pattern::Exact(pattern.to_owned()),
            Some(index) if index == pattern.len() - 1 => Pattern::Prefix(pattern[..index].to_owned()),
            Some(_) => return Err(InvalidPattern(pattern.to_owned())),
        };
        self.routes.push((parsed, channel));
        Ok(self)
    }

    /// The channel for `topic`, if any pattern matches.
    pub fn find(&self, topic: &str) -> Option<&Arc<dyn Channel>> {
        self.routes
            .iter()
            .find(|(pattern, _)| match pattern {
                Pattern::Exact(exact) => exact == topic,
                Pattern::Prefix(prefix) => topic.starts_with(prefix.as_str()),
            })
            .map(|(_, channel)| channel)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use async_trait::async_trait;
    use protocol::reasons::ErrorReply;

    use super::*;
    use crate::channel::{ChannelContext, JoinRequest, Joined};

    struct Named;

    #[async_trait]
    impl Channel for Named {
        async fn join(&self, _: JoinRequest<'_>, _: ChannelContext<'_>) -> Result<Joined, ErrorReply> {
            Err(ErrorReply::new("unused"))
        }
    }

    #[test]
    fn prefix_exact_and_order() {
        let a: Arc<dyn Channel> = Arc::new(Named);
        let b: Arc<dyn Channel> = Arc::new(Named);
        let router = ChannelRouter::new().route("room:lobby", a.clone()).unwrap().route("room:*", b.clone()).unwrap();
        assert!(Arc::ptr_eq(router.find("room:lobby").unwrap(), &a));
        assert!(Arc::ptr_eq(router.find("room:other").unwrap(), &b));
        assert!(Arc::ptr_eq(router.find("room:").unwrap(), &b));
        assert!(router.find("rooms").is_none());
        assert!(router.find("phoenix").is_none());
    }

    #[test]
    fn star_only_at_the_end() {
        let channel: Arc<dyn Channel> = Arc::new(Named);
        assert!(ChannelRouter::new().route("room:*:x", channel.clone()).is_err());
        assert!(ChannelRouter::new().route("*", channel).is_ok());
    }
}
