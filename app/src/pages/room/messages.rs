//! The message list: day separators, messages grouped under their author, links and mentions, my messages' delivery
//! state. It sticks to the bottom unless the reader scrolled up, and keeps the reader's place when an older page
//! arrives above. The rows come from [`reading::rows`], so every rule here is tested natively.

use leptos::{html, prelude::*};

use super::{
    actions::RoomActions,
    reading::{self, Row, avatar_hue, initials},
    state::{Delivery, RoomState, clock},
};
use crate::browser;

/// The messages, with the "new messages" pill while the reader is scrolled up. `rendered_at` is the server's clock
/// when it rendered the page: "Today" is that day until the page is hydrated, then the browser's.
#[component]
pub fn MessageList(rendered_at: i64) -> impl IntoView {
    let room = expect_context::<RoomState>();
    let actions = expect_context::<RoomActions>();
    let list = NodeRef::<html::Div>::new();
    let at_bottom = RwSignal::new(true);
    // The list's scroll height when the lines last changed: what an older page pushed the content down by.
    let last_height = StoredValue::new(0);
    // Not a memo: the keyed list below already skips rows whose key did not change (a `Memo` of rows would add its
    // own code to the WASM for nothing). "Today" is evaluated when the lines change.
    let rows = move || {
        let local = room.local_time.get();
        let now = if local { browser::now_ms() as i64 } else { rendered_at };
        room.lines.with(|lines| room.gaps.with(|gaps| reading::rows(lines, gaps, now, local)))
    };

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

    // `role="log"`: screen readers announce the messages added at the end, politely.
    view! {
        <div class="messages" node_ref=list on:scroll=on_scroll role="log" aria-label="Messages" tabindex="0">
            {move || room.more_above.get().then(|| view! { <p class="older-hint">"Scroll up for older messages"</p> })}
            {move || room.lines.with(Vec::is_empty).then(|| view! { <p class="empty">"No messages yet. Say hello!"</p> })}
            <ol class="message-list">
                <For each=rows key=Row::key let:row>
                    <MessageLine row />
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

/// One message, after its day separator and gap marker when it has them.
#[component]
fn MessageLine(row: Row) -> impl IntoView {
    let room = expect_context::<RoomState>();
    let actions = expect_context::<RoomActions>();
    let Row { line, day, gap, continued } = row;
    let timestamp = line.timestamp;
    let (status, retry) = match &line.delivery {
        Delivery::Stored => (None, None),
        Delivery::Pending => (Some("sending…".to_owned()), None),
        Delivery::Failed(reason) => (Some(format!("not sent: {reason}")), line.client_id.clone()),
    };
    let me = room.me.get_untracked();
    // The body is split once, for the highlight and for its HTML.
    let pieces = reading::pieces(&line.body, &me);
    let mentions_me = line.user != me && reading::mentions_me(&pieces);
    let body = reading::pieces_html(&pieces);
    let class = match line.delivery {
        Delivery::Stored => "message",
        Delivery::Pending => "message pending",
        Delivery::Failed(_) => "message failed",
    };
    // One shape for both kinds of line (the WASM pays per shape): a continued message keeps its author for screen
    // readers only, an empty avatar column and its time in that column, shown on hover.
    view! {
        {day.map(|day| view! { <li class="day"><span>{day}</span></li> })}
        {gap.then(|| view! { <li class="gap">"Some messages were skipped"</li> })}
        <li class=class class:continued=continued class:mentions-me=mentions_me data-id=line.id.map(|id| id.to_string())>
            <span class=avatar_hue(&line.user) aria-hidden="true">{(!continued).then(|| initials(&line.user))}</span>
            <div class="content">
                <div class="meta">
                    <strong class="author" class:visually-hidden=continued>{line.user}</strong>
                    <time>{move || clock(timestamp, room.local_time.get())}</time>
                    {status.map(|s| view! { <span class="delivery">{s}</span> })}
                    {retry.map(|client_id| view! {
                        <button class="retry" on:click=move |_| actions.retry(client_id.clone())>"Retry"</button>
                    })}
                </div>
                <p class="body" inner_html=body></p>
            </div>
        </li>
    }
}
