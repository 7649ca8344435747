//! Misbehaving clients, one probe at a time: malformed frames (not JSON, a short V2 array, a bad binary kind, invalid
//! UTF-8), frames over the 64 KiB limit (a real one, and a header alone), broken WebSocket framing, and requests the
//! room channel refuses (a body too long or empty, an invalid room, an unjoined topic, a burst over the rate limit,
//! names the socket refuses). Each must get the answer docs/protocol.md §3.5 and §10 give it; a refused message must
//! never be stored. A probe that fails because a kill cut it short counts as interrupted.

mod raw;

use std::{sync::Arc, time::Duration};

use futures::SinkExt;
use protocol::{
    chat::{JoinParams, NewMessage, NewMessageReply, normalize_body},
    reasons::{EMPTY_MESSAGE, INVALID_ROOM, MESSAGE_TOO_LONG, RATE_LIMITED, UNMATCHED_TOPIC},
};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use tokio_tungstenite::tungstenite::{self, Message};

use super::{
    conn::{self, Incoming},
    context::Context,
    exchange::{Exchange, Failed, typed_reply},
    ledger::bump,
    text,
};
use crate::frames;

/// What a probe does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    NotJson,
    ShortArray,
    BadBinaryKind,
    InvalidUtf8,
    Oversized,
    OversizedHeader,
    Unmasked,
    TooLong,
    Empty,
    InvalidRoom,
    UnjoinedTopic,
    RateLimit,
    BadName,
    AccountName,
}

impl Probe {
    const ALL: [Self; 14] = [
        Self::NotJson,
        Self::ShortArray,
        Self::BadBinaryKind,
        Self::InvalidUtf8,
        Self::Oversized,
        Self::OversizedHeader,
        Self::Unmasked,
        Self::TooLong,
        Self::Empty,
        Self::InvalidRoom,
        Self::UnjoinedTopic,
        Self::RateLimit,
        Self::BadName,
        Self::AccountName,
    ];

    /// Its name in the report: what is sent, and the documented answer.
    pub fn name(self) -> &'static str {
        match self {
            Self::NotJson => "text that is not JSON → 1007",
            Self::ShortArray => "a V2 array of three → 1007",
            Self::BadBinaryKind => "binary frame of kind 7 → 1007",
            Self::InvalidUtf8 => "text frame with invalid UTF-8 → 1007",
            Self::Oversized => "a 70 KB text frame → 1009",
            Self::OversizedHeader => "a header announcing 1 MiB → 1009",
            Self::Unmasked => "an unmasked client frame → 1002",
            Self::TooLong => "a body of 4001 characters → message too long",
            Self::Empty => "a blank body → empty message",
            Self::InvalidRoom => "join room:Soak_Bad → invalid room",
            Self::UnjoinedTopic => "a push to an unjoined topic → unmatched topic",
            Self::RateLimit => "a burst over the rate limit → rate limited, nothing stored",
            Self::BadName => "a guest name with an emoji → 403",
            Self::AccountName => "a guest name that is an account's → 403",
        }
    }
}

/// The probes' settings.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    /// The server's `message:new` limit per 10 s.
    pub rate_limit: usize,
    /// A registered account's name, when registering worked.
    pub account: Option<String>,
}

/// Runs probes while the run chats.
pub async fn run(context: Arc<Context>, settings: ProbeSettings, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x7072_6f62);
    let mut number = 0usize;
    while context.until_chatting().await {
        let Some(&probe) = Probe::ALL.choose(&mut rng) else { return };
        if probe == Probe::AccountName && settings.account.is_none() {
            continue;
        }
        number += 1;
        let epoch = context.server.epoch();
        let answer = Prober { context: &context, settings: &settings, number }.probe(probe).await;
        match answer {
            Ok(()) => context.ledger.probe_answered(probe.name()),
            Err(_) if context.server.interrupted_since(epoch) => bump(&context.ledger.counters.probes_interrupted),
            Err(got) => {
                context.ledger.violation("a probe got an undocumented answer", format!("{}: {got}", probe.name()))
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(500..2500))).await;
    }
}

struct Prober<'a> {
    context: &'a Context,
    settings: &'a ProbeSettings,
    number: usize,
}

type Answer = Result<(), String>;

impl Prober<'_> {
    fn name(&self) -> String {
        format!("probe-{}-{}", self.context.run, self.number)
    }

    fn topic(&self) -> &str {
        &self.context.topics[self.number % self.context.topics.len()]
    }

    async fn probe(&self, probe: Probe) -> Answer {
        match probe {
            Probe::NotJson => self.closes_with(Message::text("not json"), 1007).await,
            Probe::ShortArray => self.closes_with(Message::text(r#"["1","1","room:x"]"#), 1007).await,
            Probe::BadBinaryKind => self.closes_with(Message::binary(vec![7u8, 0, 0, 0]), 1007).await,
            Probe::Oversized => {
                let body = "ж".repeat(36_000);
                let frame = format!(r#"["1","1","{}","message:new",{{"body":"{body}"}}]"#, self.topic());
                self.closes_with(Message::text(frame), 1009).await
            }
            Probe::InvalidUtf8 => self.raw_closes_with(raw::frame(0x1, &[b'[', 0xff, 0xfe, b']'], true), 1007).await,
            Probe::OversizedHeader => self.raw_closes_with(raw::header_only(1 << 20), 1009).await,
            Probe::Unmasked => self.raw_closes_with(raw::frame(0x1, b"[]", false), 1002).await,
            Probe::TooLong => self.refused_body(&"é".repeat(4001), MESSAGE_TOO_LONG).await,
            Probe::Empty => self.refused_body(" \n\t ", EMPTY_MESSAGE).await,
            Probe::InvalidRoom => {
                let mut client = self.connect().await?;
                match client.join("room:Soak_Bad", &JoinParams::default(), |_| {}).await {
                    Err(Failed::Refused(reason)) if reason == INVALID_ROOM => self.still_open(&mut client).await,
                    other => Err(format!("{other:?}")),
                }
            }
            Probe::UnjoinedTopic => {
                let mut client = self.connect().await?;
                let message = NewMessage { body: "hi".into(), client_id: None };
                match client.push("9", self.topic(), &message, |_| {}).await {
                    Err(Failed::Refused(reason)) if reason == UNMATCHED_TOPIC => self.still_open(&mut client).await,
                    other => Err(format!("{other:?}")),
                }
            }
            Probe::RateLimit => self.rate_limit().await,
            Probe::BadName => self.refused_name("bad🙂name").await,
            Probe::AccountName => {
                let account = self.settings.account.as_deref().unwrap_or_default();
                self.refused_name(&account.to_uppercase()).await
            }
        }
    }

    async fn connect(&self) -> Result<Exchange, String> {
        conn::open(self.context.addr, &self.name(), None).await.map(Exchange::new)
    }

    /// Sends `message` on a fresh socket; the server must close it with `code`.
    async fn closes_with(&self, message: Message, code: u16) -> Answer {
        let mut client = self.connect().await?;
        client.ws.send(message).await.map_err(|e| format!("send: {e}"))?;
        let ended = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match conn::next(&mut client.ws).await {
                    Incoming::Text(_) | Incoming::Binary => {}
                    ended => return ended,
                }
            }
        })
        .await
        .map_err(|_| "still open after 10 s".to_owned())?;
        match ended {
            Incoming::Closed(got, _) if got == code => Ok(()),
            other => Err(other.to_string()),
        }
    }

    /// Sends `bytes` on a hand-made socket; the server must close it with `code`.
    async fn raw_closes_with(&self, bytes: Vec<u8>, code: u16) -> Answer {
        use tokio::io::AsyncWriteExt;
        let mut tcp = raw::open(self.context.addr, &self.name()).await.map_err(|e| e.to_string())?;
        tcp.write_all(&bytes).await.map_err(|e| e.to_string())?;
        match raw::close_code(&mut tcp).await {
            Some(got) if got == code => Ok(()),
            other => Err(format!("close code {other:?}")),
        }
    }

    /// Joins a room and sends `body`, which the server must refuse with `reason` and not store.
    async fn refused_body(&self, body: &str, reason: &str) -> Answer {
        let mut client = self.connect().await?;
        let topic = self.topic().to_owned();
        let (join_ref, _) = client.join(&topic, &JoinParams::default(), |_| {}).await.map_err(|e| e.to_string())?;
        let client_id = format!("{}-x", self.name());
        let room = self.context.room_of(&topic).unwrap_or(0);
        let ledger = &self.context.ledger;
        ledger.sending(&client_id, room, normalize_body(body).unwrap_or_default());
        let message = NewMessage { body: body.to_owned(), client_id: Some(client_id.clone()) };
        match client.push(&join_ref, &topic, &message, |_| {}).await {
            Err(Failed::Refused(got)) if got == reason => {
                ledger.refused(&client_id, reason);
                self.still_open(&mut client).await
            }
            Ok(NewMessageReply { id }) => {
                ledger.acked(&client_id, id);
                Err(format!("stored as {id}"))
            }
            other => {
                ledger.abandoned(&client_id);
                Err(format!("{other:?}"))
            }
        }
    }

    /// `limit + 5` messages without waiting: the first `limit` are stored, the rest refused and never stored.
    async fn rate_limit(&self) -> Answer {
        let mut client = self.connect().await?;
        let topic = self.topic().to_owned();
        let room = self.context.room_of(&topic).unwrap_or(0);
        let (join_ref, _) = client.join(&topic, &JoinParams::default(), |_| {}).await.map_err(|e| e.to_string())?;
        let burst = self.settings.rate_limit + 5;
        let ledger = &self.context.ledger;
        let mut refs = Vec::with_capacity(burst);
        for n in 0..burst {
            let client_id = format!("{}-{n}", self.name());
            let body = format!("{client_id} burst {n} 🚀");
            ledger.sending(&client_id, room, body.clone());
            let msg_ref = client.next_ref();
            let message = NewMessage { body, client_id: Some(client_id.clone()) };
            let frame = frames::push(&join_ref, &msg_ref, &topic, &message).map_err(|e| e.to_string())?;
            if conn::send(&mut client.ws, frame).await.is_err() {
                ledger.abandoned(&client_id);
                refs.iter().for_each(|(_, id): &(String, String)| ledger.abandoned(id));
                return Err("connection lost while sending".into());
            }
            refs.push((msg_ref, client_id));
        }
        let (mut stored, mut limited) = (0, 0);
        for (at, (msg_ref, client_id)) in refs.iter().enumerate() {
            let reply = match client.reply_to(msg_ref, |_| {}).await {
                Ok(reply) => reply,
                Err(error) => {
                    refs[at..].iter().for_each(|(_, id)| ledger.abandoned(id));
                    return Err(error.to_string());
                }
            };
            match typed_reply::<NewMessageReply>(&reply) {
                Ok(NewMessageReply { id }) => {
                    ledger.acked(client_id, id);
                    stored += 1;
                }
                Err(Failed::Refused(reason)) if reason == RATE_LIMITED => {
                    ledger.refused(client_id, RATE_LIMITED);
                    limited += 1;
                }
                Err(other) => {
                    ledger.abandoned(client_id);
                    return Err(format!("{other:?}"));
                }
            }
        }
        if stored <= self.settings.rate_limit && limited >= 5 {
            self.still_open(&mut client).await
        } else {
            Err(format!("{stored} stored, {limited} rate limited of {burst}"))
        }
    }

    /// The socket with this name must be refused with 403.
    async fn refused_name(&self, user: &str) -> Answer {
        let url = format!("ws://{}/socket/websocket?vsn=2.0.0&user={}", self.context.addr, text::url_encode(user));
        match tokio_tungstenite::connect_async(url).await {
            Err(tungstenite::Error::Http(response)) if response.status() == 403 => Ok(()),
            Ok(_) => Err("connected".into()),
            Err(error) => Err(error.to_string()),
        }
    }

    /// An error reply leaves the socket open: a heartbeat still gets its reply.
    async fn still_open(&self, client: &mut Exchange) -> Answer {
        let msg_ref = client.next_ref();
        let frame = frames::heartbeat(&msg_ref).map_err(|e| e.to_string())?;
        client.request(frame, &msg_ref, |_| {}).await.map(drop).map_err(|e| format!("after the refusal: {e}"))
    }
}
