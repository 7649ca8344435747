//! The room page's smaller pieces: the connection banner and the composer. Like the other views (`header`,
//! `messages`, `people`, `sidebar`) they render [`RoomState`] and ask for things through [`RoomActions`]; none knows
//! whether a socket is behind them.

use leptos::prelude::*;

use super::{
    actions::RoomActions,
    state::{Connection, RoomState, typing_label},
};

fn room() -> RoomState {
    expect_context::<RoomState>()
}

fn actions() -> RoomActions {
    expect_context::<RoomActions>()
}

/// A visible banner while connecting or reconnecting.
#[component]
pub fn Banner() -> impl IntoView {
    let room = room();
    let text = move || match room.connection.get() {
        Connection::Connecting => Some("Connecting…"),
        Connection::Reconnecting => {
            Some("Connection lost. Reconnecting… messages you send now go out once it is back.")
        }
        Connection::Online => None,
    };
    view! {
        <div class="banner" role="status" aria-live="polite" class:hidden=move || text().is_none()>
            {move || text().unwrap_or_default()}
        </div>
    }
}

/// The message box: Enter sends, Shift+Enter adds a line.
#[component]
pub fn Composer() -> impl IntoView {
    let room = room();
    let actions = actions();
    let draft = RwSignal::new(String::new());
    let send = move || {
        let body = draft.get_untracked();
        if body.trim().is_empty() {
            return;
        }
        draft.set(String::new());
        actions.send(body);
    };
    let on_keydown = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
            ev.prevent_default();
            send();
        }
    };
    let on_input = move |ev| {
        draft.set(event_target_value(&ev));
        actions.typed();
    };
    view! {
        <p class="typing" aria-live="polite">{move || room.online.with(|o| typing_label(o, &room.me.get())).unwrap_or_default()}</p>
        <form class="composer" on:submit=move |ev| {
            ev.prevent_default();
            send();
        }>
            <label for="message" class="visually-hidden">"Message"</label>
            <textarea
                id="message"
                rows="1"
                maxlength="4000"
                placeholder="Write a message…"
                aria-describedby="composer-hint"
                prop:value=move || draft.get()
                on:input=on_input
                on:keydown=on_keydown
            ></textarea>
            <button type="submit" class="primary">"Send"</button>
        </form>
        <p id="composer-hint" class="composer-hint">"Enter to send, Shift+Enter for a new line"</p>
    }
}
