//! The dispatch table of docs/protocol.md §5: what a decoded client frame does, depending on whether its
//! topic is joined on this connection.
//!
//! | # | topic state | frame | action |
//! |---|---|---|---|
//! | 1 | any | `phoenix` / `heartbeat` | reply ok `{}` with a null join_ref |
//! | 2 | not joined | `phx_join`, route matches, 100 channels already joined | error `too many channels joined` |
//! | 2b | not joined | `phx_join`, route matches | run the channel's join; reply ok or error (a panic: `join crashed`) |
//! | 2c | not joined | `phx_join`, no route | error `unmatched topic` with a null join_ref |
//! | 3 | joined | `phx_join` (duplicate) | end the old channel, handle the new join, then `phx_close` for the old join_ref |
//! | 4 | joined | `phx_leave` with the current or a null join_ref | reply ok, then `phx_close` |
//! | 4b | joined | `phx_leave` with a stale join_ref | ignored |
//! | 5 | joined | other event, current or null join_ref | the channel's `handle_in`; a failure becomes `phx_error` |
//! | 5b | joined | other event, stale join_ref | dropped |
//! | 6 | not joined | `phx_leave` | reply ok (echoing the join_ref) |
//! | 7 | not joined | other event | error `unmatched topic` with a null join_ref |
//!
//! A frame that does not decode closes the connection with 1007 (the client reconnects); see [`Connection::run`].

use std::{panic::AssertUnwindSafe, sync::Arc, time::Instant};

use futures::FutureExt;
use protocol::{
    events::{HEARTBEAT, PHOENIX_TOPIC, PHX_CLOSE, PHX_ERROR, PHX_JOIN, PHX_LEAVE, STATUS_ERROR, STATUS_OK},
    frame::{Frame, Payload},
    reasons::{self, CloseCode, ErrorReply},
    serializer::{Outgoing, decode_client_binary, decode_client_text},
};

use super::{
    Connection, JoinedChannel,
    transport::{Inbound, Transport},
};
use crate::{
    channel::{ChannelContext, JoinRequest, Joined, Outcome, Push, Termination},
    pubsub::Subscriber,
    telemetry::LogBudget,
};

fn empty() -> Payload {
    Payload::empty()
}

fn reason(text: &str) -> Payload {
    ErrorReply::new(text).into()
}

impl<T: Transport> Connection<T> {
    /// Decodes and dispatches one inbound frame. `Err(code)` means the frame was malformed and the connection must
    /// close with that code.
    pub(super) async fn handle_inbound(&mut self, inbound: Inbound) -> Result<(), u16> {
        let decoded = match inbound {
            Inbound::Text(text) => decode_client_text(self.info.vsn, &text),
            Inbound::Binary(bytes) => decode_client_binary(self.info.vsn, &bytes),
            Inbound::Decoded(frame) => Ok(*frame),
            Inbound::KeepAlive | Inbound::Closed => return Ok(()),
        };
        match decoded {
            Ok(frame) => {
                self.dispatch(frame).await;
                Ok(())
            }
            Err(error) => {
                tracing::debug!(conn = self.info.conn, %error, "malformed frame");
                Err(CloseCode::INVALID_FRAME_PAYLOAD.code())
            }
        }
    }

    async fn dispatch(&mut self, frame: Frame) {
        let Frame { join_ref, msg_ref, topic, event, payload } = frame;
        let msg_ref = msg_ref.as_deref();
        if topic == PHOENIX_TOPIC && event == HEARTBEAT {
            self.reply(None, msg_ref, PHOENIX_TOPIC, STATUS_OK, &empty());
            return;
        }
        let topic: Arc<str> = Arc::from(topic);
        let current = self.channels.get(&topic).map(|c| c.join_ref.clone());
        let from_current = |current: &Option<Arc<str>>| join_ref.is_none() || join_ref.as_deref() == current.as_deref();
        match (current, event.as_str()) {
            (None, PHX_JOIN) => self.join(topic, join_ref, msg_ref, payload).await,
            (Some(_), PHX_JOIN) => {
                let old = self.end_channel(&topic, Termination::DuplicateJoin);
                tracing::debug!(conn = self.info.conn, %topic, "duplicate join, closing the existing channel");
                self.join(topic.clone(), join_ref, msg_ref, payload).await;
                if let Some(old_join_ref) = old {
                    self.lifecycle(old_join_ref.as_deref(), &topic, PHX_CLOSE, &empty());
                }
            }
            (Some(current), PHX_LEAVE) if from_current(&current) => {
                self.reply(current.as_deref(), msg_ref, &topic, STATUS_OK, &empty());
                self.end_channel(&topic, Termination::Left);
                self.lifecycle(current.as_deref(), &topic, PHX_CLOSE, &empty());
            }
            (Some(current), _) if from_current(&current) => {
                self.handle_in(topic, current, msg_ref, &event, payload).await;
            }
            (Some(_), _) => {
                // A stale join_ref: the client raced a server-side close; Phoenix drops these silently.
                tracing::trace!(conn = self.info.conn, %topic, %event, "dropping message for a stale join");
            }
            (None, PHX_LEAVE) => self.reply(join_ref.as_deref(), msg_ref, &topic, STATUS_OK, &empty()),
            (None, _) => self.reply(None, msg_ref, &topic, STATUS_ERROR, &reason(reasons::UNMATCHED_TOPIC)),
        }
    }

    async fn join(&mut self, topic: Arc<str>, join_ref: Option<String>, msg_ref: Option<&str>, payload: Payload) {
        let join_ref: Option<Arc<str>> = join_ref.map(Arc::from);
        let Some(channel) = self.services.router.find(&topic).cloned() else {
            // Any client can send these as fast as it likes: a budgeted line, not one per join.
            static UNMATCHED: LogBudget = LogBudget::new(10);
            if let Some(suppressed) = UNMATCHED.admit() {
                tracing::info!(conn = self.info.conn, %topic, suppressed, "join to an unmatched topic refused");
            }
            self.services.meters.join_refused(reasons::UNMATCHED_TOPIC);
            self.reply(None, msg_ref, &topic, STATUS_ERROR, &reason(reasons::UNMATCHED_TOPIC));
            return;
        };
        if self.channels.len() >= self.services.settings.max_channels {
            self.services.meters.join_refused(reasons::TOO_MANY_CHANNELS);
            self.reply(join_ref.as_deref(), msg_ref, &topic, STATUS_ERROR, &reason(reasons::TOO_MANY_CHANNELS));
            return;
        }
        // Subscribe before the join runs, so nothing published while it loads history is missed; until the topic
        // is in `channels` the writer drops those broadcasts, and `delivered_up_to` drops the ones the reply holds.
        let subscriber = Subscriber { conn: self.info.conn, outbox: self.outbox.clone() };
        self.services.pubsub.subscribe(&topic, subscriber);
        let context = ChannelContext { socket: &self.info, limits: &mut self.limits };
        let request = JoinRequest { topic: &topic, payload: &payload };
        let result = AssertUnwindSafe(channel.join(request, context)).catch_unwind().await;
        match result {
            Ok(Ok(Joined { reply, instance, delivered_up_to, pushes, broadcasts })) => {
                self.reply(join_ref.as_deref(), msg_ref, &topic, STATUS_OK, &Payload::Json(reply));
                for push in &pushes {
                    match push {
                        Push::Payload { event, payload } => self.answer(&Outgoing::Push {
                            join_ref: join_ref.as_deref(),
                            topic: &topic,
                            event,
                            payload,
                        }),
                        Push::Encoded { event, json } => self.answer(&Outgoing::RawPush {
                            join_ref: join_ref.as_deref(),
                            topic: &topic,
                            event,
                            json,
                        }),
                    }
                }
                // 0 for none: message ids start at 1, so no `seq` is at or below it.
                let delivered_up_to = delivered_up_to.unwrap_or(0);
                self.channels.insert(topic, JoinedChannel { join_ref, instance, delivered_up_to, broadcasts });
                self.services.meters.joined();
            }
            Ok(Err(refusal)) => {
                self.services.meters.join_refused(&refusal.reason);
                self.services.pubsub.unsubscribe(&topic, self.info.conn);
                self.reply(join_ref.as_deref(), msg_ref, &topic, STATUS_ERROR, &refusal.into());
            }
            Err(_panic) => {
                self.services.pubsub.unsubscribe(&topic, self.info.conn);
                tracing::error!(conn = self.info.conn, %topic, "join crashed");
                self.services.meters.join_refused(reasons::JOIN_CRASHED);
                self.reply(join_ref.as_deref(), msg_ref, &topic, STATUS_ERROR, &reason(reasons::JOIN_CRASHED));
            }
        }
    }

    async fn handle_in(
        &mut self,
        topic: Arc<str>,
        join_ref: Option<Arc<str>>,
        msg_ref: Option<&str>,
        event: &str,
        payload: Payload,
    ) {
        let Self { channels, info, limits, .. } = self;
        let Some(channel) = channels.get_mut(&topic) else {
            return;
        };
        let context = ChannelContext { socket: info, limits };
        // Only a message's acknowledgement is timed (`parley_ingest_ack_seconds`): one comparison per frame.
        let ingest = (event == protocol::events::MESSAGE_NEW).then(Instant::now);
        let result = AssertUnwindSafe(channel.instance.handle_in(event, payload, context)).catch_unwind().await;
        if let Some(limit) = self.limits.take_refused() {
            self.services.meters.rate_limited(limit);
        }
        let join_ref = join_ref.as_deref();
        match result {
            Ok(Ok(Outcome::Reply { status, response })) => {
                if let Some(started) = ingest.filter(|_| status == STATUS_OK) {
                    self.services.meters.ingest_acked(started.elapsed());
                }
                self.reply(join_ref, msg_ref, &topic, status, &response);
            }
            Ok(Ok(Outcome::NoReply)) => {}
            Ok(Ok(Outcome::Stop { reply })) => {
                if let Some((status, response)) = reply {
                    self.reply(join_ref, msg_ref, &topic, status, &response);
                }
                self.end_channel(&topic, Termination::Stopped);
                self.lifecycle(join_ref, &topic, PHX_CLOSE, &empty());
            }
            Ok(Err(failure)) => {
                static FAILED: LogBudget = LogBudget::new(30);
                if let Some(suppressed) = FAILED.admit() {
                    tracing::warn!(conn = self.info.conn, %topic, event, %failure, suppressed, "channel failed");
                }
                self.fail_channel(&topic, join_ref);
            }
            Err(_panic) => {
                tracing::error!(conn = self.info.conn, %topic, event, "channel crashed");
                self.fail_channel(&topic, join_ref);
            }
        }
    }

    /// A handler failure ends that channel only: `phx_error` (the client rejoins), every other channel stays.
    fn fail_channel(&mut self, topic: &Arc<str>, join_ref: Option<&str>) {
        self.end_channel(topic, Termination::Failed);
        self.lifecycle(join_ref, topic, PHX_ERROR, &reason(reasons::CHANNEL_CRASH));
    }

    /// Removes a joined channel, unsubscribes it and runs its `terminate`. Returns its join_ref if it was joined.
    fn end_channel(&mut self, topic: &Arc<str>, reason: Termination) -> Option<Option<Arc<str>>> {
        let mut channel = self.channels.remove(topic)?;
        self.services.meters.channels_ended(1);
        self.services.pubsub.unsubscribe(topic, self.info.conn);
        let join_ref = channel.join_ref.take();
        channel.terminate(self.info.conn, topic, reason);
        Some(join_ref)
    }
}
