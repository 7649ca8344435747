//! The home page: what the product is, a name, a random room, a named room, and recently active rooms.
//!
//! Server-rendered HTML; the two forms post to server functions, so they work before (and without) the WASM. The
//! [`RoomPicker`] island only adds what needs a script: carrying the typed name into both forms and previewing the
//! room a typed name opens.

use leptos::{prelude::*, server_fn::ServerFn};

use crate::{
    api::{CreateRandomRoom, GoToRoom, current_user, recent_rooms},
    brand::PRODUCT_NAME,
    url,
};

/// `/`.
#[component]
pub fn HomePage() -> impl IntoView {
    let recent = Resource::new(|| (), |_| recent_rooms());
    let account = Resource::new(|| (), |_| current_user());
    view! {
        <main class="page page-narrow home">
            <nav class="account-bar" aria-label="Account">
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        match account.await {
                            Ok(Some(user)) => view! {
                                <span>"Logged in as " <strong class="account-name">{user}</strong></span>
                                <a href="/logout">"Log out"</a>
                            }.into_any(),
                            _ => view! {
                                <a href="/login">"Log in"</a>
                                <a href="/register">"Create an account"</a>
                            }.into_any(),
                        }
                    })}
                </Suspense>
            </nav>
            <h1 class="brand">{PRODUCT_NAME}</h1>
            <p class="tagline">
                "Real-time chat rooms you reach by URL: no sign-up, no set-up, nothing lost on restart."
            </p>
            <RoomPicker />
            <section class="recent" aria-labelledby="recent-title">
                <h2 id="recent-title">"Recently active rooms"</h2>
                <Suspense fallback=|| view! { <p class="hint">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match recent.await {
                            Ok(rooms) if !rooms.is_empty() => view! {
                                <ul class="room-list">
                                    {rooms
                                        .into_iter()
                                        .map(|r| {
                                            let href = format!("/{}", r.slug);
                                            view! { <li><a href=href>{r.slug}</a></li> }
                                        })
                                        .collect_view()}
                                </ul>
                            }.into_any(),
                            _ => view! { <p class="hint">"No rooms yet. Be the first."</p> }.into_any(),
                        }
                    })}
                </Suspense>
            </section>
        </main>
    }
}

/// What the room field's hint says for what was typed.
fn room_hint(typed: &str) -> String {
    let slug = url::slugify(typed);
    if typed.trim().is_empty() {
        "Letters, digits and dashes.".to_owned()
    } else if protocol::names::validate_room_slug(&slug).is_ok() {
        format!("Opens /{slug}")
    } else {
        "That name is reserved or empty; try another.".to_owned()
    }
}

/// The name field and the two ways into a room. Without the WASM both forms still work (the name is then left out).
#[island]
fn RoomPicker() -> impl IntoView {
    let (name, set_name) = signal(String::new());
    let (room, set_room) = signal(String::new());
    // Set once the WASM has woken this island; tests key off it.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    view! {
        <div class="room-picker" data-hydrated=move || hydrated.get().to_string()>
            <label for="display-name">"Your name (optional)"</label>
            <input
                id="display-name"
                type="text"
                maxlength="32"
                autocomplete="nickname"
                placeholder="A random name if you leave it empty"
                prop:value=name
                on:input=move |ev| set_name.set(event_target_value(&ev))
            />
            <form class="random-room" method="post" action=CreateRandomRoom::PATH>
                <input type="hidden" name="name" prop:value=name />
                <button type="submit" class="primary">"Create a random room"</button>
            </form>
            <form class="named-room" method="post" action=GoToRoom::PATH>
                <input type="hidden" name="name" prop:value=name />
                <label for="room-name">"Or go to a room by name"</label>
                <div class="row">
                    <input
                        id="room-name"
                        name="room"
                        type="text"
                        maxlength="64"
                        placeholder="panther-silk-empire"
                        required
                        prop:value=room
                        on:input=move |ev| set_room.set(event_target_value(&ev))
                    />
                    <button type="submit">"Go"</button>
                </div>
                <p class="hint">{move || room_hint(&room.get())}</p>
            </form>
        </div>
    }
}
