//! Who's online, and since when: a column on a wide screen, a popover the header's count opens on a narrow one.

use leptos::prelude::*;

use super::{
    html::escape_into,
    reading::{avatar_hue, initials},
    state::{OnlineUser, RoomState, clock},
};

/// Everyone online, always (the list scrolls, it never hides anyone).
#[component]
pub fn OnlinePanel() -> impl IntoView {
    let room = expect_context::<RoomState>();
    view! {
        <aside
            id="people"
            class="online side-panel"
            popover="auto"
            aria-labelledby="online-title"
        >
            <button class="panel-close" popovertarget="people" popovertargetaction="hide">
                "Close"
            </button>
            <h2 id="online-title">
                "Who's online " <span class="count">{move || room.online.with(Vec::len)}</span>
            </h2>
            // One HTML string for the list (the WASM pays per view shape; these are plain text items).
            <ul
                class="online-list"
                inner_html=move || {
                    let (me, local) = (room.me.get(), room.local_time.get());
                    room.online.with(|online| people_html(online, &me, local))
                }
            ></ul>
        </aside>
    }
}

/// The list items of who is online: avatar, name ("(you)" for me), since when, tabs, and a typing mark.
pub fn people_html(online: &[OnlineUser], me: &str, local: bool) -> String {
    let mut html = String::new();
    for user in online {
        html.push_str(if user.name == me { "<li class=\"me\">" } else { "<li>" });
        html.push_str(&format!("<span class=\"{}\" aria-hidden=\"true\">", avatar_hue(&user.name)));
        escape_into(&mut html, &initials(&user.name));
        html.push_str("</span><span class=\"who\"><strong class=\"name\">");
        escape_into(&mut html, &user.name);
        html.push_str(&format!("</strong><span class=\"since\">online since {}</span>", clock(user.since, local)));
        if user.tabs > 1 {
            html.push_str(&format!("<span class=\"tabs\">{} tabs</span>", user.tabs));
        }
        html.push_str("</span>");
        if user.typing {
            html.push_str("<span class=\"typing-dot\" title=\"typing\">…</span>");
        }
        html.push_str("</li>");
    }
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_are_escaped_and_i_am_marked() {
        let user = |name: &str, tabs, typing| OnlineUser { name: name.into(), since: 0, typing, tabs };
        let html = people_html(&[user("<b>ada</b>", 1, false), user("bob", 2, true)], "bob", false);
        assert_eq!(
            html,
            "<li><span class=\"avatar hue-8\" aria-hidden=\"true\">&lt;B</span><span class=\"who\"><strong \
             class=\"name\">&lt;b&gt;ada&lt;/b&gt;</strong><span class=\"since\">online since 00:00</span></span></li>\
             <li class=\"me\"><span class=\"avatar hue-8\" aria-hidden=\"true\">BO</span><span class=\"who\"><strong \
             class=\"name\">bob</strong><span class=\"since\">online since 00:00</span><span class=\"tabs\">2 tabs</span>\
             </span><span class=\"typing-dot\" title=\"typing\">…</span></li>"
        );
    }
}
