//! Long poll across a cluster: a poll or post for a session held by another node is relayed to that node over Redis
//! and its answer relayed back, as Phoenix relays over its pubsub. Load balancers need no sticky sessions.
//!
//! Every node subscribes to a channel of its own, `parley:longpoll:<node>`; requests and answers travel as small JSON
//! messages on the addressee's channel. A request nobody receives (the owner stopped: Redis reports no subscriber)
//! or that gets no answer in time is treated as a session that is gone: the client gets `410` (a new session for a
//! poll) and rejoins, recovering missed messages with `last_seen_id`.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use base64::{Engine, engine::general_purpose::STANDARD};
use bytes::Bytes;
use futures::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::{LongPollRoute, deliver, listen, token::SessionRef};

/// How long a relayed request waits for its answer beyond the poll window: the round trips.
const ANSWER_SLACK: Duration = Duration::from_secs(5);
/// Reconnect backoff bounds of the subscription.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// A relayed request or answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Relayed {
    /// Poll session `session` for node `from`.
    Poll { from: String, request: u64, session: u64 },
    /// Deliver a POST body (base64) to session `session` for node `from`.
    Post { from: String, request: u64, session: u64, ndjson: bool, body: String },
    /// The JSON answer to request `request`; `None` when the session does not exist.
    Answer { request: u64, json: Option<String> },
}

fn channel(node: &str) -> String {
    format!("parley:longpoll:{node}")
}

/// This node's end of the relay.
#[derive(Clone)]
pub(crate) struct Relay {
    inner: Arc<Inner>,
}

struct Inner {
    node: String,
    redis: ConnectionManager,
    client: redis::Client,
    next_request: AtomicU64,
    waiting: Mutex<HashMap<u64, oneshot::Sender<Option<String>>>>,
    /// The route whose sessions this node serves to others; set once by [`Relay::serve`].
    route: OnceLock<LongPollRoute>,
    stop: CancellationToken,
}

impl Relay {
    /// The relay of `node` over the Redis at `redis_url` (connections are made lazily; Redis may be down now).
    pub(crate) fn new(redis_url: &str, node: &str, stop: CancellationToken) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(redis_url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)));
        let redis = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        let inner = Inner {
            node: node.to_owned(),
            redis,
            client,
            next_request: AtomicU64::new(1),
            waiting: Mutex::new(HashMap::new()),
            route: OnceLock::new(),
            stop,
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// Starts answering other nodes' requests for `route`'s sessions (and receiving answers to this node's).
    pub(crate) fn serve(&self, route: LongPollRoute) {
        if self.inner.route.set(route).is_ok() {
            tokio::spawn(subscribe(self.inner.clone()));
        }
    }

    /// Relays a poll; `None` when the owner has no such session or cannot be reached.
    pub(crate) async fn poll(&self, session: &SessionRef) -> Option<String> {
        self.ask(&session.node, |from, request| Relayed::Poll { from, request, session: session.id }).await
    }

    /// Relays a POST body; `None` when the owner has no such session or cannot be reached.
    pub(crate) async fn post(&self, session: &SessionRef, ndjson: bool, body: Bytes) -> Option<String> {
        let body = STANDARD.encode(&body);
        self.ask(&session.node, |from, request| Relayed::Post { from, request, session: session.id, ndjson, body })
            .await
    }

    fn window(&self) -> Duration {
        self.inner.route.get().map_or(Duration::from_secs(10), LongPollRoute::window)
    }

    async fn ask(&self, owner: &str, request: impl FnOnce(String, u64) -> Relayed) -> Option<String> {
        let inner = &self.inner;
        let id = inner.next_request.fetch_add(1, Ordering::Relaxed);
        let message = serde_json::to_string(&request(inner.node.clone(), id)).ok()?;
        let (answer, answered) = oneshot::channel();
        inner.lock().insert(id, answer);
        // Forgotten however this ends, the request given up with it included (its client went away).
        let _waiting = Waiting { inner, id };
        let mut redis = inner.redis.clone();
        let received: Result<i64, _> =
            redis::cmd("PUBLISH").arg(channel(owner)).arg(message).query_async(&mut redis).await;
        let answer = match received {
            Ok(receivers) if receivers > 0 => {
                tokio::time::timeout(self.window() + ANSWER_SLACK, answered).await.ok().and_then(Result::ok)
            }
            Ok(_) => None,
            Err(error) => {
                tracing::debug!(%error, "long-poll relay publish failed");
                None
            }
        };
        answer.flatten()
    }
}

/// Removes a request from the waiting list when dropped.
struct Waiting<'a> {
    inner: &'a Inner,
    id: u64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.inner.lock().remove(&self.id);
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Option<String>>>> {
        self.waiting.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Handles one message from this node's channel.
    fn received(self: &Arc<Self>, message: Relayed) {
        match message {
            Relayed::Answer { request, json } => {
                if let Some(waiting) = self.lock().remove(&request) {
                    let _ = waiting.send(json);
                }
            }
            Relayed::Poll { from, request, session } => {
                let inner = self.clone();
                tokio::spawn(async move {
                    let Some((route, session)) = inner.local(session) else {
                        inner.answer(&from, request, None).await;
                        return;
                    };
                    let mut answer = listen(&route, &session).await;
                    if !inner.answer(&from, request, Some(answer.to_json())).await {
                        // Nobody received the frames this poll took: the next poll gets them.
                        if let Some(frames) = answer.take_messages() {
                            session.requeue(frames);
                        }
                    }
                });
            }
            Relayed::Post { from, request, session, ndjson, body } => {
                let inner = self.clone();
                tokio::spawn(async move {
                    let json = match (inner.local(session), STANDARD.decode(body)) {
                        (Some((route, session)), Ok(body)) => {
                            Some(deliver(&route, &session, ndjson, &body).await.to_json())
                        }
                        _ => None,
                    };
                    inner.answer(&from, request, json).await;
                });
            }
        }
    }

    /// A live session of this node.
    fn local(&self, session: u64) -> Option<(LongPollRoute, Arc<super::Session>)> {
        let route = self.route.get()?;
        let session = route.sessions.live(session)?;
        Some((route.clone(), session))
    }

    /// Publishes an answer; whether a node received it.
    async fn answer(&self, to: &str, request: u64, json: Option<String>) -> bool {
        let Ok(message) = serde_json::to_string(&Relayed::Answer { request, json }) else { return false };
        let mut redis = self.redis.clone();
        let published: Result<i64, _> =
            redis::cmd("PUBLISH").arg(channel(to)).arg(message).query_async(&mut redis).await;
        match published {
            Ok(receivers) => receivers > 0,
            Err(error) => {
                tracing::debug!(%error, "long-poll relay answer lost");
                false
            }
        }
    }
}

/// Keeps this node's relay channel subscribed until the relay stops, reconnecting with backoff.
async fn subscribe(inner: Arc<Inner>) {
    let mut backoff = MIN_BACKOFF;
    let name = channel(&inner.node);
    loop {
        let subscribed = async {
            let mut pubsub = inner.client.get_async_pubsub().await?;
            pubsub.subscribe(&name).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let subscribed = tokio::select! {
            result = subscribed => result,
            () = inner.stop.cancelled() => return,
        };
        match subscribed {
            Ok(mut pubsub) => {
                backoff = MIN_BACKOFF;
                let mut messages = pubsub.on_message();
                loop {
                    let message = tokio::select! {
                        message = messages.next() => message,
                        () = inner.stop.cancelled() => return,
                    };
                    let Some(message) = message else { break };
                    match serde_json::from_slice::<Relayed>(message.get_payload_bytes()) {
                        Ok(relayed) => inner.received(relayed),
                        Err(error) => tracing::warn!(%error, "malformed long-poll relay message ignored"),
                    }
                }
                tracing::warn!("long-poll relay subscription lost; reconnecting");
            }
            Err(error) => tracing::debug!(%error, "long-poll relay not reachable; retrying"),
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = inner.stop.cancelled() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relayed_messages_have_a_stable_shape() {
        let poll = serde_json::to_value(Relayed::Poll { from: "a".into(), request: 1, session: 2 }).unwrap_or_default();
        assert_eq!(poll, serde_json::json!({"kind": "poll", "from": "a", "request": 1, "session": 2}));
        let answer = r#"{"kind":"answer","request":3,"json":null}"#;
        assert!(matches!(serde_json::from_str(answer), Ok(Relayed::Answer { request: 3, json: None })));
    }
}
