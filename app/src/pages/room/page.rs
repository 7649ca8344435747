//! The room route and the `Room` island. The route (title, invalid names) stays server-only HTML; the island gets
//! the page data as props, renders the same HTML on both sides, and once hydrated goes live.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use super::{
    actions::RoomActions,
    connect::go_live,
    header::{NOTIFY_KEY, RoomHeader},
    messages::MessageList,
    parts::{Banner, Composer},
    people::OnlinePanel,
    sidebar::RoomsNav,
    state::{Connection, Line, RoomState},
};
use crate::{
    api::{RoomPageData, rename_problem, room_page},
    brand::PRODUCT_NAME,
    browser,
};

/// The document title of a room page (the live room puts its unread count in front while the tab is hidden).
pub(super) fn room_title(slug: &str) -> String {
    format!("{slug} · {PRODUCT_NAME}")
}

/// The route component: loads the page data (blocking, so the server's HTML holds the history).
#[component]
pub fn RoomPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let data = Resource::new_blocking(
        move || (params.read().get("room").unwrap_or_default(), query.read().get("user")),
        |(slug, user)| room_page(slug, user),
    );
    view! {
        <Suspense fallback=|| view! { <main class="room loading">"Loading…"</main> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(mut page) if page.valid => {
                        page.rename_problem =
                            query.read_untracked().get("rename").and_then(|code| rename_problem(&code)).map(str::to_owned);
                        let title = room_title(&page.slug);
                        view! { <Title text=title /><Room page /> }.into_any()
                    }
                    Ok(page) => view! { <InvalidRoom slug=page.slug /> }.into_any(),
                    Err(_) => view! { <main class="page page-narrow"><p>"Could not load this room."</p></main> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn InvalidRoom(slug: String) -> impl IntoView {
    view! {
        <main class="page page-narrow">
            <h1>"Not a room name"</h1>
            <p>
                <code>{slug}</code>
                " is not a valid room name: use 1–64 lowercase letters, digits and dashes."
            </p>
            <p>
                <a href="/">"Back to the start"</a>
            </p>
        </main>
    }
}

/// The room itself: the page's one island (its props travel to the browser as JSON).
#[island]
fn Room(page: RoomPageData) -> impl IntoView {
    let room = RoomState {
        me: RwSignal::new(page.user.clone()),
        lines: RwSignal::new(page.messages.iter().map(Line::stored).collect()),
        gaps: RwSignal::new(Vec::new()),
        online: RwSignal::new(Vec::new()),
        connection: RwSignal::new(Connection::Connecting),
        more_above: RwSignal::new(page.messages.len() >= protocol::chat::JOIN_HISTORY),
        unseen: RwSignal::new(0),
        local_time: RwSignal::new(false),
        rooms: RwSignal::new(Vec::new()),
        notify: RwSignal::new(false),
    };
    let actions = RoomActions::new();
    provide_context(room);
    provide_context(actions);
    let hydrated = RwSignal::new(false);
    let guest = page.token.is_none() && !page.login_required;
    // Effects run only in the browser, once the island is hydrated.
    let live_page = page.clone();
    Effect::new(move |started: Option<()>| {
        if started.is_none() {
            room.local_time.set(true);
            room.notify.set(browser::stored(NOTIFY_KEY).as_deref() == Some("1") && browser::notifications_allowed());
            if live_page.login_required {
                // Nothing to connect to as a guest; the notice says why, so no "connecting" banner either.
                room.connection.set(Connection::Online);
            } else {
                go_live(room, actions, live_page.clone());
            }
            hydrated.set(true);
        }
    });
    view! {
        <main class="room" data-hydrated=move || hydrated.get().to_string()>
            <RoomHeader slug=page.slug.clone() guest rename_problem=page.rename_problem.clone() />
            {page.login_required.then(|| view! {
                <p class="notice" role="status">
                    "This server is for members only. " <a href="/login">"Log in"</a>" or "
                    <a href="/register">"create an account"</a>" to chat."
                </p>
            })}
            {page.name_refused.clone().map(|name| view! {
                <p class="notice" role="status">
                    <strong>{name}</strong>" is a registered name, so you are chatting as a guest. "
                    <a href="/login">"Log in"</a>" to use it."
                </p>
            })}
            <Banner />
            <div class="room-body">
                <RoomsNav slug=page.slug.clone() />
                <section class="conversation" aria-label="Conversation">
                    <MessageList rendered_at=page.now />
                    <Composer />
                </section>
                <OnlinePanel />
            </div>
        </main>
    }
}
