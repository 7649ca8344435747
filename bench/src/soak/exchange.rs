//! Request and reply, one at a time, for the soak's sequential clients (the slow consumer, the probes, the final
//! history read): send a frame, read until the reply with its ref, hand every other frame to the caller.

use std::time::Duration;

use protocol::{
    chat::{JoinParams, JoinReply},
    events::PHX_REPLY,
    typed::Request,
};
use serde::de::DeserializeOwned;

use super::conn::{self, Incoming, Ws};
use crate::frames;

/// Why a request got no usable answer.
#[derive(Debug)]
pub enum Failed {
    /// The connection ended first (how).
    Ended(Incoming),
    /// No reply in time.
    Timeout,
    /// The reply was an error (its reason) or did not have the promised shape.
    Refused(String),
    /// The frame could not be built or sent.
    Send(String),
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ended(how) => write!(f, "{how}"),
            Self::Timeout => write!(f, "no reply in time"),
            Self::Refused(reason) => write!(f, "refused: {reason}"),
            Self::Send(error) => write!(f, "send: {error}"),
        }
    }
}

/// A soak connection with its own ref counter.
pub struct Exchange {
    pub ws: Ws,
    next_ref: u64,
}

impl Exchange {
    pub fn new(ws: Ws) -> Self {
        Self { ws, next_ref: 0 }
    }

    /// A fresh ref.
    pub fn next_ref(&mut self) -> String {
        self.next_ref += 1;
        self.next_ref.to_string()
    }

    /// Joins `topic`; returns the join_ref and the reply.
    pub async fn join(
        &mut self,
        topic: &str,
        params: &JoinParams,
        other: impl FnMut(&str),
    ) -> Result<(String, JoinReply), Failed> {
        let join_ref = self.next_ref();
        let frame = frames::join(&join_ref, topic, params).map_err(|e| Failed::Send(e.to_string()))?;
        let text = self.request(frame, &join_ref, other).await?;
        Ok((join_ref, typed_reply(&text)?))
    }

    /// Pushes `request` on the channel joined with `join_ref`; returns its typed reply.
    pub async fn push<R: Request>(
        &mut self,
        join_ref: &str,
        topic: &str,
        request: &R,
        other: impl FnMut(&str),
    ) -> Result<R::Reply, Failed> {
        let msg_ref = self.next_ref();
        let frame = frames::push(join_ref, &msg_ref, topic, request).map_err(|e| Failed::Send(e.to_string()))?;
        typed_reply(&self.request(frame, &msg_ref, other).await?)
    }

    /// Sends `frame` and returns the text of the reply carrying `msg_ref`.
    pub async fn request(&mut self, frame: String, msg_ref: &str, other: impl FnMut(&str)) -> Result<String, Failed> {
        conn::send(&mut self.ws, frame).await.map_err(|e| Failed::Send(e.to_string()))?;
        self.reply_to(msg_ref, other).await
    }

    /// Reads until the reply carrying `msg_ref` (15 s at most) and returns its text.
    pub async fn reply_to(&mut self, msg_ref: &str, mut other: impl FnMut(&str)) -> Result<String, Failed> {
        let wait = async {
            loop {
                match conn::next(&mut self.ws).await {
                    Incoming::Text(text) => {
                        let is_reply = frames::decode(&text)
                            .is_ok_and(|frame| frame.event() == PHX_REPLY && frame.msg_ref() == Some(msg_ref));
                        if is_reply {
                            return Ok(text);
                        }
                        other(&text);
                    }
                    Incoming::Binary => {}
                    ended => return Err(Failed::Ended(ended)),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(15), wait).await.map_err(|_| Failed::Timeout)?
    }
}

/// The `ok` response of a reply as `T`, or [`Failed::Refused`] with the error reason.
pub fn typed_reply<T: DeserializeOwned>(text: &str) -> Result<T, Failed> {
    let frame = frames::decode(text).map_err(|e| Failed::Refused(e.to_string()))?;
    let reply = frame.reply().ok_or_else(|| Failed::Refused("a reply without status".to_owned()))?;
    frames::response(&reply).map_err(|error| match error {
        frames::FrameError::Refused(refusal) => Failed::Refused(refusal.reason),
        other => Failed::Refused(other.to_string()),
    })
}
