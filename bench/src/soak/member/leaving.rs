//! How a member leaves: one room it visited, or every room at once when the run says so (after it has been
//! delivered each room's last acknowledged message), then the socket.

use super::{CATCH_UP, Ended, HOUSEKEEPING, LEAVE_REPLIES, Member, Purpose, Step, rooms::Channel};
use crate::{
    frames,
    soak::conn::{self, Ws},
};

impl Member {
    /// Sends `phx_leave` for `room`; `for_good` ends its membership (a visit), otherwise the member comes back.
    pub(super) async fn leave(&mut self, ws: &mut Ws, room: usize, for_good: bool) -> Step {
        let msg_ref = self.next_ref();
        let Some(slot) = self.slot_mut(room) else { return Ok(()) };
        let Some(join_ref) = slot.join_ref.clone() else { return Ok(()) };
        let frame = frames::leave(&join_ref, &msg_ref, &slot.topic);
        slot.channel = Channel::Leaving;
        self.refs.insert(msg_ref, Purpose::Leave { room, for_good });
        self.send(ws, frame).await
    }

    /// Settling down before the baseline: no visits left open.
    pub(super) async fn leave_visited_rooms(&mut self, ws: &mut Ws) -> Step {
        let visited: Vec<usize> = self
            .slots
            .iter()
            .filter(|s| s.room != self.spec.home && s.channel == Channel::Joined)
            .map(|s| s.room)
            .collect();
        for room in visited {
            self.leave(ws, room, true).await?;
        }
        Ok(())
    }

    /// Leaving: take delivery up to `heads` (or, for a visitor, get its messages acknowledged), leave every room,
    /// close the socket.
    pub(super) async fn leave_all(&mut self, ws: &mut Ws, heads: Option<&[u64]>, for_good: bool) -> Ended {
        let deadline = tokio::time::Instant::now() + CATCH_UP;
        while !self.caught_up(heads) && tokio::time::Instant::now() < deadline {
            let step = tokio::select! {
                incoming = conn::next(ws) => self.incoming(ws, incoming).await,
                () = tokio::time::sleep(HOUSEKEEPING) => self.housekeeping(ws).await,
            };
            if step.is_err() {
                return if for_good { Ended::Finished } else { Ended::Lost };
            }
        }
        let rooms: Vec<usize> = self.slots.iter().filter(|s| s.channel == Channel::Joined).map(|s| s.room).collect();
        for room in rooms {
            if self.leave(ws, room, for_good).await.is_err() {
                return if for_good { Ended::Finished } else { Ended::Lost };
            }
        }
        let deadline = tokio::time::Instant::now() + LEAVE_REPLIES;
        while self.refs.values().any(|p| matches!(p, Purpose::Leave { .. })) && tokio::time::Instant::now() < deadline {
            let step = tokio::select! {
                incoming = conn::next(ws) => self.incoming(ws, incoming).await,
                () = tokio::time::sleep_until(deadline) => Ok(()),
            };
            if step.is_err() {
                break;
            }
        }
        let _ = ws.close(None).await;
        if for_good { Ended::Finished } else { Ended::Away }
    }

    /// Whether every room it is in has been delivered up to its head (and nothing it sent is unanswered).
    pub(super) fn caught_up(&self, heads: Option<&[u64]>) -> bool {
        let Some(heads) = heads else { return self.outgoing.is_empty() };
        self.slots.iter().filter(|s| s.channel == Channel::Joined).all(|slot| {
            let head = heads.get(slot.room).copied().unwrap_or(0);
            slot.last_seen.unwrap_or(slot.membership.from) >= head
        })
    }
}
