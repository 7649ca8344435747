//! The channel half of [`SocketCore`] (phoenix.js `Channel` driven by its socket): join and rejoin, leave, pushes and
//! their buffer, replies, and the timers of each channel. One state machine with the connection half in `mod.rs`;
//! split only to keep each file to one concern.

use protocol::{
    events::{PHX_CLOSE, PHX_ERROR, PHX_JOIN, PHX_LEAVE, PHX_REPLY, STATUS_OK},
    frame::{Payload, ServerFrame},
};
use serde_json::Value;

use super::{AlreadyJoined, Output, SocketCore};
use crate::realtime::{
    channel::{ChannelId, ChannelState},
    push::{PendingPush, PushId, PushReply},
};

impl SocketCore {
    /// phoenix.js `channel.join()`: only once per channel.
    pub fn join(&mut self, id: ChannelId, now: u64) -> Result<(), AlreadyJoined> {
        let channel = self.channel_mut(id).ok_or(AlreadyJoined)?;
        if channel.joined_once {
            return Err(AlreadyJoined);
        }
        channel.joined_once = true;
        self.rejoin(id, now);
        Ok(())
    }

    /// Sends a join attempt with a fresh ref (= join_ref) and freshly evaluated params.
    pub(super) fn rejoin(&mut self, id: ChannelId, now: u64) {
        let timeout = self.options.timeout_ms;
        let msg_ref = self.make_ref();
        let Some(channel) = self.channel_mut(id) else { return };
        if channel.state == ChannelState::Leaving {
            return;
        }
        channel.state = ChannelState::Joining;
        channel.join_ref = Some(msg_ref.clone());
        channel.join_deadline = Some(now + timeout);
        let payload = channel.join_payload();
        let frame = Self::frame(Some(&msg_ref), &msg_ref, &channel.topic.clone(), PHX_JOIN, payload);
        self.send_or_buffer(frame);
    }

    /// phoenix.js `channel.leave()`: sends `phx_leave` (buffered if offline) and closes the channel locally at once.
    pub fn leave(&mut self, id: ChannelId) {
        let msg_ref = self.make_ref();
        let Some(channel) = self.channel_mut(id) else { return };
        channel.state = ChannelState::Leaving;
        channel.rejoin.reset();
        channel.join_deadline = None;
        let frame = Self::frame(channel.join_ref.as_deref(), &msg_ref, &channel.topic, PHX_LEAVE, Payload::empty());
        self.send_or_buffer(frame);
        self.close_channel(id);
    }

    /// Removes a channel for good; its unanswered pushes end in timeout.
    fn close_channel(&mut self, id: ChannelId) {
        let Some(index) = self.channels.iter().position(|c| c.id == id) else { return };
        let channel = self.channels.remove(index);
        for push in channel.pushes {
            self.outputs.push_back(Output::Reply { push: push.id, reply: PushReply::Timeout });
        }
        self.outputs.push_back(Output::ChannelClosed { channel: id });
    }

    /// phoenix.js `channel.push()`: sent now when the channel can push, else buffered until joined. The deadline
    /// starts now either way.
    pub fn push(&mut self, id: ChannelId, event: &str, payload: Payload, timeout_ms: u64, now: u64) -> PushId {
        let push_id = self.new_push_id();
        let can_push = self.can_push(id);
        let msg_ref = can_push.then(|| self.make_ref());
        let Some(channel) = self.channel_mut(id) else {
            self.outputs.push_back(Output::Reply { push: push_id, reply: PushReply::Timeout });
            return push_id;
        };
        channel.pushes.push(PendingPush {
            id: push_id,
            event: event.to_owned(),
            payload: payload.clone(),
            deadline: now + timeout_ms,
            sent_ref: msg_ref.clone(),
        });
        if let Some(msg_ref) = msg_ref {
            let frame = Self::frame(channel.join_ref.as_deref(), &msg_ref, &channel.topic.clone(), event, payload);
            self.send_or_buffer(frame);
        }
        push_id
    }

    /// A frame addressed to channel `id` (already checked with `is_member`).
    pub(super) fn channel_message(&mut self, id: ChannelId, decoded: &ServerFrame, now: u64) {
        let frame = &decoded.frame;
        match frame.event.as_str() {
            PHX_REPLY => self.channel_reply(id, decoded, now),
            PHX_ERROR => self.channel_errored(id, "server", now),
            PHX_CLOSE => self.close_channel(id),
            _ => {
                let join_ref = self.join_ref(id).map(str::to_owned);
                self.outputs.push_back(Output::Message {
                    channel: id,
                    event: frame.event.clone(),
                    payload: frame.payload.clone(),
                    join_ref,
                });
            }
        }
    }

    /// A reply, JSON or binary (through `protocol`'s one view of both); a malformed one is ignored, so its push times
    /// out.
    fn channel_reply(&mut self, id: ChannelId, decoded: &ServerFrame, now: u64) {
        let (Some(msg_ref), Some(reply)) = (decoded.frame.msg_ref.as_deref(), decoded.reply()) else { return };
        let (status, response) = (reply.status, reply.response.to_payload());
        let connected = self.is_connected();
        let Some(channel) = self.channel_mut(id) else { return };
        let is_join_reply = channel.state == ChannelState::Joining && channel.join_ref.as_deref() == Some(msg_ref);
        if is_join_reply {
            channel.join_deadline = None;
            let response_json = match &response {
                Payload::Json(value) => value.clone(),
                Payload::Binary(_) => Value::Null,
            };
            if status == STATUS_OK {
                channel.state = ChannelState::Joined;
                channel.rejoin.reset();
                self.outputs.push_back(Output::Joined { channel: id, response: response_json });
                self.flush_push_buffer(id, now);
            } else {
                channel.state = ChannelState::Errored;
                if connected {
                    let unit = self.unit();
                    if let Some(channel) = self.channel_mut(id) {
                        channel.rejoin.schedule(now, unit);
                    }
                }
                self.outputs.push_back(Output::JoinRefused { channel: id, response: response_json });
            }
            return;
        }
        if let Some(index) = channel.pushes.iter().position(|p| p.sent_ref.as_deref() == Some(msg_ref)) {
            let push = channel.pushes.remove(index);
            let reply = if status == STATUS_OK { PushReply::Ok(response) } else { PushReply::Error(response) };
            self.outputs.push_back(Output::Reply { push: push.id, reply });
        }
    }

    /// Sends every buffered push that has not timed out, in order, each with a fresh ref.
    fn flush_push_buffer(&mut self, id: ChannelId, now: u64) {
        let waiting: Vec<usize> = match self.channels.iter().find(|c| c.id == id) {
            Some(channel) => channel
                .pushes
                .iter()
                .enumerate()
                .filter(|(_, p)| p.sent_ref.is_none() && p.deadline > now)
                .map(|(i, _)| i)
                .collect(),
            None => return,
        };
        for index in waiting {
            let msg_ref = self.make_ref();
            let Some(channel) = self.channel_mut(id) else { return };
            let push = &mut channel.pushes[index];
            push.sent_ref = Some(msg_ref.clone());
            let (event, payload) = (push.event.clone(), push.payload.clone());
            let frame = Self::frame(channel.join_ref.as_deref(), &msg_ref, &channel.topic.clone(), &event, payload);
            self.send_or_buffer(frame);
        }
    }

    /// The channel failed; it rejoins on its schedule while the socket is connected (or when it reconnects).
    pub(super) fn channel_errored(&mut self, id: ChannelId, reason: &str, now: u64) {
        let connected = self.is_connected();
        let unit = self.unit();
        let Some(channel) = self.channel_mut(id) else { return };
        if matches!(channel.state, ChannelState::Leaving | ChannelState::Closed) {
            return;
        }
        channel.join_deadline = None;
        channel.state = ChannelState::Errored;
        if connected {
            channel.rejoin.schedule(now, unit);
        }
        self.outputs.push_back(Output::ChannelErrored { channel: id, reason: reason.to_owned() });
    }

    /// Join timeouts, rejoins and push timeouts due at `now`.
    pub(super) fn channel_timers(&mut self, now: u64) {
        let connected = self.is_connected();
        let ids: Vec<ChannelId> = self.channels.iter().map(|c| c.id).collect();
        for id in ids {
            let unit = self.unit();
            let Some(channel) = self.channel_mut(id) else { continue };
            if channel.join_deadline.is_some_and(|d| d <= now) {
                channel.join_deadline = None;
                channel.state = ChannelState::Errored;
                let timed_out = channel.join_ref.clone();
                let topic = channel.topic.clone();
                if connected {
                    channel.rejoin.schedule(now, unit);
                }
                let leave_ref = self.make_ref();
                let leave = Self::frame(timed_out.as_deref(), &leave_ref, &topic, PHX_LEAVE, Payload::empty());
                self.send_or_buffer(leave);
                self.outputs.push_back(Output::ChannelErrored { channel: id, reason: "timeout".into() });
            }
            let Some(channel) = self.channel_mut(id) else { continue };
            if channel.rejoin.fire(now) && connected {
                self.rejoin(id, now);
            }
            let Some(channel) = self.channel_mut(id) else { continue };
            let (expired, kept): (Vec<PendingPush>, Vec<PendingPush>) =
                std::mem::take(&mut channel.pushes).into_iter().partition(|p| p.deadline <= now);
            channel.pushes = kept;
            for push in expired {
                self.outputs.push_back(Output::Reply { push: push.id, reply: PushReply::Timeout });
            }
        }
    }
}
