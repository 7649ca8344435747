//! The home page: what the product is, a name, a random room, a named room, and recently active rooms.

use leptos::{form::ActionForm, prelude::*};
use leptos_router::hooks::use_navigate;

use crate::{
    api::{CreateRandomRoom, current_user, recent_rooms},
    shell::PRODUCT_NAME,
    url,
};

/// `/`.
#[component]
pub fn HomePage() -> impl IntoView {
    let (name, set_name) = signal(String::new());
    let (room, set_room) = signal(String::new());
    // Set once the WASM bundle has taken over the server-rendered page; tests key off it.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let create = ServerAction::<CreateRandomRoom>::new();
    let recent = Resource::new(|| (), |_| recent_rooms());
    let account = Resource::new(|| (), |_| current_user());
    let navigate = use_navigate();

    let user_query = move || {
        let trimmed = name.get().trim().to_owned();
        if trimmed.is_empty() { String::new() } else { format!("?user={}", url::encode(&trimmed)) }
    };
    let go_to_room = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let slug = url::slugify(&room.get());
        if protocol::names::validate_room_slug(&slug).is_ok() {
            navigate(&format!("/{slug}{}", user_query()), Default::default());
        }
    };
    let room_hint = move || {
        let typed = room.get();
        let slug = url::slugify(&typed);
        if typed.trim().is_empty() {
            "Letters, digits and dashes.".to_owned()
        } else if protocol::names::validate_room_slug(&slug).is_ok() {
            format!("Opens /{slug}")
        } else {
            "That name is reserved or empty; try another.".to_owned()
        }
    };

    view! {
        <main class="page page-narrow home" data-hydrated=move || hydrated.get().to_string()>
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
            <ActionForm action=create attr:class="random-room">
                <input type="hidden" name="name" prop:value=name />
                <button type="submit" class="primary">"Create a random room"</button>
            </ActionForm>
            <form class="named-room" on:submit=go_to_room>
                <label for="room-name">"Or go to a room by name"</label>
                <div class="row">
                    <input
                        id="room-name"
                        type="text"
                        maxlength="64"
                        placeholder="panther-silk-empire"
                        prop:value=room
                        on:input=move |ev| set_room.set(event_target_value(&ev))
                    />
                    <button type="submit">"Go"</button>
                </div>
                <p class="hint">{room_hint}</p>
            </form>
            <section class="recent" aria-labelledby="recent-title">
                <h2 id="recent-title">"Recently active rooms"</h2>
                <Suspense fallback=|| view! { <p class="hint">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match recent.await {
                            Ok(rooms) if !rooms.is_empty() => {
                                view! {
                                    <ul class="room-list">
                                        {rooms
                                            .into_iter()
                                            .map(|r| {
                                                let href = format!("/{}", r.slug);
                                                view! {
                                                    <li>
                                                        <a href=href>{r.slug}</a>
                                                    </li>
                                                }
                                            })
                                            .collect_view()}
                                    </ul>
                                }
                                    .into_any()
                            }
                            _ => view! { <p class="hint">"No rooms yet. Be the first."</p> }.into_any(),
                        }
                    })}
                </Suspense>
            </section>
        </main>
    }
}
