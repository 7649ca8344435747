//! The room's header: where I am and as whom, changing my guest name, copying the room's link, mention notifications,
//! and on a narrow screen the buttons that open the rooms drawer and the list of who is online.
//!
//! The drawers and the change-of-name form are native popovers (`popovertarget`: the browser opens and closes them,
//! moves focus, sets `aria-expanded` and closes them on Escape), and the form posts to a server function that
//! answers with a redirect back to the room, so none of it needs the WASM: only the clipboard, notifications and the
//! live count do.

use std::time::Duration;

use leptos::{either::Either, prelude::*, server_fn::ServerFn, task::spawn_local};

use super::state::RoomState;
use crate::{api::RenameGuest, brand::PRODUCT_NAME, browser};

/// `localStorage` key remembering that this browser opted in to mention notifications.
pub const NOTIFY_KEY: &str = "parley:notify";
/// How long "Link copied" stays before the button reads "Copy link" again.
const COPIED_FOR: Duration = Duration::from_secs(3);

/// The header; `guest` when my name is a guest name I may change, `rename_problem` why the last change was refused.
#[component]
pub fn RoomHeader(slug: String, guest: bool, rename_problem: Option<String>) -> impl IntoView {
    let room = expect_context::<RoomState>();
    view! {
        <header class="room-header">
            <button class="panel-toggle" popovertarget="rooms">
                "Rooms"
            </button>
            <a class="home-link" href="/" aria-label=format!("{PRODUCT_NAME}, home")>
                {PRODUCT_NAME}
            </a>
            <div class="where">
                <h1 class="room-title">
                    <span aria-hidden="true">"#"</span>
                    <span class="room-name">{slug.clone()}</span>
                </h1>
                <p class="as">
                    "as " <strong class="my-name">{move || room.me.get()}</strong>
                    // After a refusal the form is already open in place.
                    {(guest && rename_problem.is_none()).then(|| view! {
                        <button id="change-name" class="link-button" popovertarget="rename">
                            "Change name"
                        </button>
                    })}
                </p>
                {guest.then(|| view! { <RenameForm slug=slug.clone() problem=rename_problem /> })}
            </div>
            <button class="panel-toggle people-toggle" popovertarget="people">
                "Online " <span class="count">{move || room.online.with(Vec::len)}</span>
            </button>
            <div class="header-actions">
                <CopyLink slug />
                <MentionAlerts />
            </div>
        </header>
    }
}

/// The change-of-name form: a popover, or shown in place with the reason when the last attempt was refused. The
/// server checks the name like `?user=`, remembers it for this browser and sends the page back to the room, which
/// then connects under the new name (the old one leaves who's online, the new one arrives).
#[component]
fn RenameForm(slug: String, problem: Option<String>) -> impl IntoView {
    let refused = problem.is_some();
    let cancel = if refused {
        Either::Left(view! { <a href=format!("/{slug}")>"Cancel"</a> })
    } else {
        Either::Right(view! {
            <button type="button" popovertarget="rename" popovertargetaction="hide">"Cancel"</button>
        })
    };
    view! {
        <form
            id="rename"
            class="rename"
            class:refused=refused
            popover=(!refused).then_some("auto")
            method="post"
            action=RenameGuest::PATH
        >
            <input type="hidden" name="room" value=slug.clone() />
            <label for="new-name">"New name"</label>
            <input
                id="new-name"
                name="name"
                type="text"
                required
                autocomplete="nickname"
                autofocus
                aria-describedby="rename-problem"
            />
            <button type="submit" class="primary">"Save"</button>
            {cancel}
            <p id="rename-problem" class="form-error" role="alert">{problem}</p>
        </form>
    }
}

/// Copies the room's address (without my name in it) and says so.
#[component]
fn CopyLink(slug: String) -> impl IntoView {
    let label = RwSignal::new(String::from("Copy link"));
    let copy = move |_| {
        let link = format!("{}/{slug}", browser::origin());
        spawn_local(async move {
            let copied = browser::copy_text(&link).await;
            label.set(String::from(if copied { "Link copied ✓" } else { "Copy failed: use the address bar" }));
            set_timeout(move || label.set(String::from("Copy link")), COPIED_FOR);
        });
    };
    view! {
        <button class="copy-link" on:click=copy aria-live="polite">
            {move || label.get()}
        </button>
    }
}

/// Opt-in notifications for messages that mention me; the browser asks for permission only after this click.
#[component]
fn MentionAlerts() -> impl IntoView {
    let room = expect_context::<RoomState>();
    let blocked = RwSignal::new(false);
    let toggle = move |_| {
        if room.notify.get_untracked() {
            room.notify.set(false);
            browser::store(NOTIFY_KEY, "0");
            return;
        }
        spawn_local(async move {
            let granted = browser::allow_notifications().await;
            blocked.set(!granted);
            room.notify.set(granted);
            browser::store(NOTIFY_KEY, if granted { "1" } else { "0" });
        });
    };
    view! {
        <button class="notify" aria-pressed=move || room.notify.get().to_string() on:click=toggle>
            {move || if room.notify.get() { "Mention alerts on" } else { "Alert me of mentions" }}
        </button>
        {move || blocked.get().then(|| view! {
            <span class="hint" role="status">"Notifications are blocked in this browser's settings."</span>
        })}
    }
}
