//! The room page's pieces: connection banner, message list, composer, who's online. They render [`RoomState`] and
//! ask for things through [`RoomActions`]; neither knows whether a socket is behind them.

use leptos::{html, prelude::*};

use super::{
    actions::RoomActions,
    state::{Connection, Delivery, Line, RoomState, clock, typing_label},
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

/// The messages, sticking to the bottom unless the reader scrolled up, and keeping the reader's place when an older
/// page arrives above.
#[component]
pub fn MessageList() -> impl IntoView {
    let room = room();
    let actions = actions();
    let list = NodeRef::<html::Div>::new();
    let at_bottom = RwSignal::new(true);
    // The list's scroll height when the lines last changed: what an older page pushed the content down by.
    let last_height = StoredValue::new(0);

    let scroll_to_bottom = move || {
        if let Some(element) = list.get_untracked() {
            element.set_scroll_top(element.scroll_height());
        }
        room.unseen.set(0);
    };
    // After each change of the lines (rendered by the next frame): lines added at the end are followed if the reader is
    // at the bottom, else counted for the pill; lines added at the top (an older page) keep the reader where they were.
    // Tracks the keys of the first and the last line.
    Effect::new(move |previous: Option<(Option<String>, Option<String>)>| {
        let (first, last, added_below) = room.lines.with(|lines| {
            let first = lines.first().map(|l| l.key.clone());
            let last = lines.last().map(|l| l.key.clone());
            let added_below = match &previous {
                Some((_, Some(previous_last))) => lines.iter().rev().take_while(|l| &l.key != previous_last).count(),
                Some((_, None)) => lines.len(),
                None => 0,
            };
            (first, last, added_below)
        });
        let added_above = previous.as_ref().is_some_and(|(previous_first, _)| previous_first != &first);
        request_animation_frame(move || {
            let Some(element) = list.get_untracked() else { return };
            let height = element.scroll_height();
            let follow = previous.is_none() || (added_below > 0 && at_bottom.get_untracked());
            if follow {
                scroll_to_bottom();
            } else {
                if added_above {
                    element.set_scroll_top(element.scroll_top() + height - last_height.get_value());
                }
                if added_below > 0 {
                    room.unseen.update(|n| *n += added_below);
                }
            }
            last_height.set_value(height);
        });
        (first, last)
    });
    let on_scroll = move |_| {
        let Some(element) = list.get_untracked() else { return };
        let bottom = element.scroll_top() + element.client_height() >= element.scroll_height() - 48;
        at_bottom.set(bottom);
        if bottom {
            room.unseen.set(0);
        }
        if element.scroll_top() < 40 && room.more_above.get_untracked() {
            actions.load_older();
        }
    };

    view! {
        <div class="messages" node_ref=list on:scroll=on_scroll aria-live="polite" aria-relevant="additions">
            {move || room.more_above.get().then(|| view! { <p class="older-hint">"Scroll up for older messages"</p> })}
            {move || room.lines.with(Vec::is_empty).then(|| view! { <p class="empty">"No messages yet. Say hello!"</p> })}
            <ol class="message-list">
                <For each=move || room.lines.get() key=|line: &Line| (line.key.clone(), line.delivery.clone()) let:line>
                    <MessageLine line />
                </For>
            </ol>
        </div>
        {move || {
            let unseen = room.unseen.get();
            (unseen > 0).then(|| {
                let label = format!("{unseen} new message{} ↓", if unseen == 1 { "" } else { "s" });
                view! { <button class="new-pill" on:click=move |_| scroll_to_bottom()>{label}</button> }
            })
        }}
    }
}

#[component]
fn MessageLine(line: Line) -> impl IntoView {
    let room = room();
    let actions = actions();
    let gap = line.id.is_some_and(|id| room.gaps.with(|g| g.contains(&id)));
    let timestamp = line.timestamp;
    let (status, retry) = match &line.delivery {
        Delivery::Stored => (None, None),
        Delivery::Pending => (Some("sending…".to_owned()), None),
        Delivery::Failed(reason) => (Some(format!("not sent: {reason}")), line.client_id.clone()),
    };
    let class = match line.delivery {
        Delivery::Stored => "message",
        Delivery::Pending => "message pending",
        Delivery::Failed(_) => "message failed",
    };
    view! {
        {gap.then(|| view! { <li class="gap" role="separator">"Some messages were skipped"</li> })}
        <li class=class data-id=line.id.map(|id| id.to_string())>
            <div class="meta">
                <strong class="author">{line.user}</strong>
                <time>{move || clock(timestamp, room.local_time.get())}</time>
                {status.map(|s| view! { <span class="delivery">{s}</span> })}
                {retry
                    .map(|client_id| {
                        view! {
                            <button class="retry" on:click=move |_| actions.retry(client_id.clone())>
                                "Retry"
                            </button>
                        }
                    })}
            </div>
            <p class="body">{line.body}</p>
        </li>
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
                placeholder="Write a message… (Enter to send, Shift+Enter for a new line)"
                prop:value=move || draft.get()
                on:input=on_input
                on:keydown=on_keydown
            ></textarea>
            <button type="submit" class="primary">"Send"</button>
        </form>
    }
}

/// Who's online, and since when.
#[component]
pub fn OnlinePanel() -> impl IntoView {
    let room = room();
    view! {
        <aside class="online" aria-labelledby="online-title">
            <h2 id="online-title">
                "Who's online " <span class="count">{move || room.online.with(Vec::len)}</span>
            </h2>
            <ul class="online-list">
                // Re-rendered whole on each presence change: short lists, and one code path less than a keyed `For`.
                {move || {
                    let me = room.me.get();
                    let local = room.local_time.get();
                    room.online
                        .get()
                        .into_iter()
                        .map(|user| {
                            let since = format!("online since {}", clock(user.since, local));
                            let tabs = (user.tabs > 1).then(|| format!("{} tabs", user.tabs));
                            let mine = user.name == me;
                            view! {
                                <li class:me=mine>
                                    <strong class="name">{user.name}</strong>
                                    <span class="since">{since}</span>
                                    {tabs.map(|t| view! { <span class="tabs">{t}</span> })}
                                </li>
                            }
                        })
                        .collect_view()
                }}
            </ul>
        </aside>
    }
}
