//! A long-poll client for load generation, speaking Phoenix's long-poll protocol to `/socket/longpoll` as phoenix.js
//! does (docs/protocol.md §2.1): a GET without a session token opens a session (`410` and its token); GETs with the
//! token ([`Session::poll`]) wait up to the server's 10 s window for the session's output (`200` with frames, `204`
//! with none); a POST carries frames as `application/x-ndjson` and is answered `{"status":200}` once they were
//! dispatched, their replies and broadcasts arriving through polls. Every answer is HTTP 200 with the real status in
//! its JSON body.
//!
//! Each session polls over its own keep-alive connection ([`http::Http`]), one waiting GET at a time as phoenix.js
//! holds it. Frames posted while a poll waits need a second connection: [`Session::poster`] gives one that shares the
//! session's token. The token travels in the `X-Phoenix-Longpoll-Token` header (phoenix.js 1.9) and the connect
//! params (`vsn`, `user`) on every request, as phoenix.js puts them in its poll endpoint.

pub mod http;

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use protocol::{chat::JoinParams, events::PHX_REPLY};
use serde::Deserialize;

use self::http::Http;
use crate::frames::{self, FrameError};

/// The transport's path.
pub const PATH: &str = "/socket/longpoll";
/// Longest a request may take: a poll is answered within the server's 10 s window, a POST once dispatched.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a join may take to be answered, over however many polls.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a long-poll request failed.
#[derive(Debug, thiserror::Error)]
pub enum LongPollError {
    /// Connecting, writing or reading failed, or the connection closed.
    #[error("http: {0}")]
    Io(#[from] std::io::Error),
    /// An HTTP status other than 200 (the protocol answers everything with 200).
    #[error("HTTP status {0}")]
    Http(u16),
    /// A body that is not the protocol's JSON answer.
    #[error("answer: {0}")]
    Answer(#[from] serde_json::Error),
    /// The server refused the request (a `403` connect refusal, `413`, `400`, `408`…), with its reason if it gave one.
    #[error("status {status}: {reason}")]
    Refused {
        /// The status in the body.
        status: u16,
        /// The reason in the body (empty without one).
        reason: String,
    },
    /// The session ended (`410` to a poll or a POST).
    #[error("session gone")]
    Gone,
    /// A frame could not be built or read, or the join was refused.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// No answer within the request (or join) timeout.
    #[error("timed out")]
    TimedOut,
}

/// The JSON body of every answer.
#[derive(Debug, Deserialize)]
struct Answer {
    status: u16,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    messages: Vec<String>,
    #[serde(default)]
    reason: Option<String>,
}

impl Answer {
    fn read(body: &[u8]) -> Result<Self, LongPollError> {
        Ok(serde_json::from_slice(body)?)
    }

    fn refused(self) -> LongPollError {
        LongPollError::Refused { status: self.status, reason: self.reason.unwrap_or_default() }
    }
}

/// What a poll brought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Polled {
    /// Frames' text, oldest first (`200`).
    Frames(Vec<String>),
    /// Nothing within the server's window (`204`).
    Nothing,
}

/// The request line's target and the session token, shared by a session's connections.
#[derive(Debug, Clone)]
struct Route {
    server: SocketAddr,
    source: IpAddr,
    /// `/socket/longpoll?vsn=2.0.0&user=…`.
    target: Arc<str>,
}

impl Route {
    fn head(&self, method: &str, token: Option<&str>, ndjson: bool) -> String {
        let mut head = format!("{method} {} HTTP/1.1\r\nAccept: application/json\r\n", self.target);
        if let Some(token) = token {
            head.push_str("X-Phoenix-Longpoll-Token: ");
            head.push_str(token);
            head.push_str("\r\n");
        }
        if ndjson {
            head.push_str("Content-Type: application/x-ndjson\r\n");
        }
        head
    }
}

/// One request and its JSON answer, within [`REQUEST_TIMEOUT`].
async fn exchange(http: &mut Http, head: &str, body: &[u8]) -> Result<Answer, LongPollError> {
    let response = tokio::time::timeout(REQUEST_TIMEOUT, http.request(head, body))
        .await
        .map_err(|_| LongPollError::TimedOut)??;
    if response.status != 200 {
        return Err(LongPollError::Http(response.status));
    }
    Answer::read(&response.body)
}

/// POSTs `frames` (one per line) with `token`; `Ok` once the server dispatched them all.
async fn post_on(http: &mut Http, route: &Route, token: &str, frames: &[String]) -> Result<(), LongPollError> {
    let body = frames.join("\n");
    let answer = exchange(http, &route.head("POST", Some(token), true), body.as_bytes()).await?;
    match answer.status {
        200 => Ok(()),
        410 => Err(LongPollError::Gone),
        _ => Err(answer.refused()),
    }
}

/// An open session and its polling connection.
pub struct Session {
    route: Route,
    http: Http,
    token: String,
    /// Polls answered so far.
    pub polls: u64,
}

impl Session {
    /// Opens a session on `server` as guest `user`, connecting from `source` (a loopback address of
    /// [`crate::spread::source`], say).
    pub async fn open(server: SocketAddr, source: IpAddr, user: &str) -> Result<Self, LongPollError> {
        let target = format!("{PATH}?vsn=2.0.0&user={user}").into();
        let route = Route { server, source, target };
        let mut http = Http::new(server, source);
        let answer = exchange(&mut http, &route.head("GET", None, false), b"").await?;
        match (answer.status, answer.token) {
            (410, Some(token)) => Ok(Self { route, http, token, polls: 0 }),
            (status, _) => Err(LongPollError::Refused { status, reason: answer.reason.unwrap_or_default() }),
        }
    }

    /// Polls once: waits up to the server's window for output. `Err(Gone)` when the session ended.
    pub async fn poll(&mut self) -> Result<Polled, LongPollError> {
        let answer = exchange(&mut self.http, &self.route.head("GET", Some(&self.token), false), b"").await?;
        self.polls += 1;
        if let Some(token) = answer.token {
            // phoenix.js polls with the latest token it was given.
            self.token = token;
        }
        match answer.status {
            200 => Ok(Polled::Frames(answer.messages)),
            204 => Ok(Polled::Nothing),
            410 => Err(LongPollError::Gone),
            status => Err(LongPollError::Refused { status, reason: answer.reason.unwrap_or_default() }),
        }
    }

    /// POSTs `frames` on the polling connection: only while no poll waits (before polling starts, say).
    pub async fn post(&mut self, frames: &[String]) -> Result<(), LongPollError> {
        post_on(&mut self.http, &self.route, &self.token, frames).await
    }

    /// Joins `topic` with join_ref and ref [`crate::spread::JOIN_REF`] and polls until the join is answered; frames
    /// before and after the reply in the same answers (presence, say) are dropped.
    pub async fn join(&mut self, topic: &str) -> Result<(), LongPollError> {
        let join = frames::join(crate::spread::JOIN_REF, topic, &JoinParams::default())?;
        self.post(&[join]).await?;
        let answered = async {
            loop {
                let Polled::Frames(texts) = self.poll().await? else { continue };
                for text in &texts {
                    let frame = frames::decode(text)?;
                    if frame.event() == PHX_REPLY && frame.msg_ref() == Some(crate::spread::JOIN_REF) {
                        let reply =
                            frame.reply().ok_or(LongPollError::Refused { status: 200, reason: text.clone() })?;
                        frames::response::<serde::de::IgnoredAny>(&reply)?;
                        return Ok(());
                    }
                }
            }
        };
        tokio::time::timeout(JOIN_TIMEOUT, answered).await.map_err(|_| LongPollError::TimedOut)?
    }

    /// A second connection for POSTs while this one polls, with the session's current token.
    pub fn poster(&self) -> Poster {
        Poster {
            http: Http::new(self.route.server, self.route.source),
            route: self.route.clone(),
            token: self.token.clone(),
        }
    }

    /// Bytes read off the polling connection so far (HTTP heads and framing included).
    pub fn bytes_read(&self) -> u64 {
        self.http.bytes_read
    }
}

/// POSTs for a session whose own connection is polling: a keep-alive connection of its own, reopened when the
/// server closed it for idleness.
pub struct Poster {
    http: Http,
    route: Route,
    token: String,
}

impl Poster {
    /// POSTs `frames`; `Ok` once the server dispatched them all.
    pub async fn post(&mut self, frames: &[String]) -> Result<(), LongPollError> {
        post_on(&mut self.http, &self.route, &self.token, frames).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_heads_are_phoenix_shaped() {
        let answer = Answer::read(br#"{"status":200,"token":"t.k","messages":["[\"a\"]"]}"#).unwrap();
        assert_eq!(
            (answer.status, answer.token.as_deref(), answer.messages),
            (200, Some("t.k"), vec![r#"["a"]"#.into()])
        );
        let gone = Answer::read(br#"{"status":410}"#).unwrap();
        assert!(gone.token.is_none() && gone.messages.is_empty());
        let refused = Answer::read(br#"{"status":403,"reason":"invalid user name"}"#).unwrap().refused();
        assert!(matches!(refused, LongPollError::Refused { status: 403, ref reason } if reason == "invalid user name"));
        let route = Route {
            server: "127.0.0.1:4000".parse().unwrap(),
            source: "127.0.0.2".parse().unwrap(),
            target: "/socket/longpoll?vsn=2.0.0&user=a".into(),
        };
        assert_eq!(
            route.head("POST", Some("tok"), true),
            "POST /socket/longpoll?vsn=2.0.0&user=a HTTP/1.1\r\nAccept: application/json\r\n\
             X-Phoenix-Longpoll-Token: tok\r\nContent-Type: application/x-ndjson\r\n"
        );
    }
}
