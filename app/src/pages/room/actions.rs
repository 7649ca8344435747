//! [`RoomActions`]: what the room's views ask of the live room, handed to them through Leptos context.
//!
//! The views only describe intent (send this, retry that, I typed, show older messages). The live room in the browser
//! (`live`) receives them over a channel and does the work. On the server, and before hydration, nothing listens and
//! the actions do nothing.

use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use leptos::prelude::*;

/// One thing a view asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a message I wrote.
    Send(String),
    /// Send again the failed message with this client id.
    Retry(String),
    /// A keystroke in the composer.
    Typed,
    /// Load the page of messages before the oldest one shown.
    LoadOlder,
}

/// The views' handle on the live room (cheap to copy; see the module docs).
#[derive(Clone, Copy)]
pub struct RoomActions {
    live: StoredValue<Option<UnboundedSender<Action>>>,
}

impl RoomActions {
    /// Actions nobody serves yet.
    pub fn new() -> Self {
        Self { live: StoredValue::new(None) }
    }

    /// Sends a message.
    pub fn send(&self, body: String) {
        self.ask(Action::Send(body));
    }

    /// Retries a failed message.
    pub fn retry(&self, client_id: String) {
        self.ask(Action::Retry(client_id));
    }

    /// Reports a keystroke.
    pub fn typed(&self) {
        self.ask(Action::Typed);
    }

    /// Asks for older messages.
    pub fn load_older(&self) {
        self.ask(Action::LoadOlder);
    }

    fn ask(&self, action: Action) {
        self.live.with_value(|live| {
            if let Some(live) = live {
                let _ = live.unbounded_send(action);
            }
        });
    }

    /// From now on the actions go to the returned receiver.
    pub fn serve(&self) -> UnboundedReceiver<Action> {
        let (sender, receiver) = unbounded();
        self.live.set_value(Some(sender));
        receiver
    }
}

impl Default for RoomActions {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    #[test]
    fn actions_reach_whoever_serves_them_and_are_dropped_before() {
        let owner = Owner::new();
        owner.set();
        let actions = RoomActions::new();
        actions.send("before anyone listens".into());
        let mut served = actions.serve();
        actions.send("hello".into());
        actions.typed();
        actions.retry("c1".into());
        actions.load_older();
        let received: Vec<Action> = futures::executor::block_on(async {
            let mut all = Vec::new();
            for _ in 0..4 {
                all.extend(served.next().await);
            }
            all
        });
        assert_eq!(
            received,
            [Action::Send("hello".into()), Action::Typed, Action::Retry("c1".into()), Action::LoadOlder]
        );
    }
}
