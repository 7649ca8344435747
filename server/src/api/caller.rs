//! [`ApiCaller`]: the extractor that authenticates a request by its `Authorization: Bearer <key>` header, and the
//! per-key message limit ([`Quota`]).
//!
//! The key is looked up by its SHA-256 in the store at every request (see `crate::auth::api_key` for why that needs
//! no constant-time comparison), so a key revoked from the command line is refused from the next request on.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    extract::FromRequestParts,
    http::{header, request::Parts},
};

use super::{ApiState, failure::ApiFailure};
use crate::{
    auth::api_key::{KEY_PREFIX, key_hash},
    limits::{RateLimit, Window},
    metrics::{Limit, Meters},
};

/// The key a request was authenticated with.
#[derive(Debug, Clone)]
pub(crate) struct ApiCaller {
    /// The key's name (live names are unique).
    pub(crate) name: String,
}

impl FromRequestParts<ApiState> for ApiCaller {
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiFailure::missing_key());
        };
        let key = value
            .to_str()
            .ok()
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, key)| key.trim())
            .filter(|key| looks_like_key(key))
            .ok_or_else(ApiFailure::invalid_key)?;
        match state.store.live_api_key(&key_hash(key)).await {
            Ok(Some(found)) => Ok(Self { name: found.name }),
            Ok(None) => Err(ApiFailure::invalid_key()),
            Err(error) => Err(ApiFailure::unavailable(&error)),
        }
    }
}

/// Whether `key` has a key's shape, `pk_` and 43 base64url characters (`crate::auth::api_key::generate`): anything
/// else is refused like an unknown key without being hashed or looked up, so junk costs no database query.
fn looks_like_key(key: &str) -> bool {
    key.strip_prefix(KEY_PREFIX).is_some_and(|rest| {
        rest.len() == KEY_CHARS && rest.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
    })
}

/// Characters after the prefix: 32 bytes in unpadded base64.
const KEY_CHARS: usize = 43;

/// Posts allowed per key in a sliding window (`--api-max-messages-per-10s`; 0: no limit), counted on this node only
/// (in a cluster each node keeps its own windows).
pub(crate) struct Quota {
    limit: RateLimit,
    /// By key name: one entry per key that posted, so as many as there are keys.
    windows: Mutex<HashMap<String, Window>>,
    /// Counts the refusals (`parley_rate_limited_total{limit="api"}`).
    meters: Arc<Meters>,
}

impl Quota {
    pub(crate) fn new(max_per_10s: usize, meters: Arc<Meters>) -> Self {
        Self {
            limit: RateLimit { max: max_per_10s, window: Duration::from_secs(10) },
            windows: Mutex::new(HashMap::new()),
            meters,
        }
    }

    /// Records a post by `caller` at `now`, or refuses it with 429 and when to retry.
    pub(crate) fn admit(&self, caller: &ApiCaller, now: Instant) -> Result<(), ApiFailure> {
        if self.limit.max == 0 {
            return Ok(());
        }
        // A std mutex: the section is a few comparisons and never awaits.
        let mut windows = self.windows.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let window = windows.entry(caller.name.clone()).or_default();
        if window.allow(self.limit, now) {
            Ok(())
        } else {
            self.meters.rate_limited(Limit::Api);
            Err(ApiFailure::rate_limited(window.retry_after(self.limit, now)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_key_shaped_bearers_are_looked_up() {
        let key = crate::auth::api_key::generate();
        assert!(looks_like_key(&key));
        assert!(looks_like_key(&format!("pk_{}", "-_aZ09".repeat(7) + "x")));
        for junk in
            ["", "pk_", "secret", &key[3..], &format!("{key}A"), &key[..key.len() - 1], &key.replace("pk_", "PK_")]
        {
            assert!(!looks_like_key(junk), "{junk:?}");
        }
        let bad = format!("{}+{}", &key[..10], &key[11..]);
        assert!(!looks_like_key(&bad), "base64url only");
        assert!(!looks_like_key(&format!("pk_{}", "é".repeat(21) + "x")), "43 bytes of non-ASCII");
    }

    #[test]
    fn each_key_has_its_own_window() {
        let meters = Meters::new(&crate::node::NodeId::random());
        let quota = Quota::new(2, meters.clone());
        let (one, two) = (ApiCaller { name: "one".into() }, ApiCaller { name: "two".into() });
        let start = Instant::now();
        assert!(quota.admit(&one, start).is_ok());
        assert!(quota.admit(&one, start + Duration::from_secs(1)).is_ok());
        assert!(quota.admit(&one, start + Duration::from_secs(2)).is_err());
        assert!(quota.admit(&two, start + Duration::from_secs(2)).is_ok(), "another key is not limited");
        assert!(quota.admit(&one, start + Duration::from_secs(10)).is_ok(), "the first post left the window");
        assert!(Quota::new(0, meters.clone()).admit(&one, start).is_ok(), "0 turns the limit off");
        let counted = meters.render();
        assert!(counted.lines().any(|line| line.contains(r#"limit="api"} 1"#)), "one refusal counted: {counted}");
    }
}
