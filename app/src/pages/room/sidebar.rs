//! "Rooms I'm in": the rooms this browser visited recently, the current one first, each other one with its unread
//! count kept live by a watch join on the same socket (filled in once the page is live; empty in the server's HTML).
//!
//! On a narrow screen it is a native popover the header's "Rooms" button opens (Escape or a tap beside it closes it,
//! focus and `aria-expanded` are the browser's), so the drawer costs the WASM nothing; the stylesheet shows it as a
//! column on a wide screen.

use leptos::prelude::*;

use super::{
    html::escape_into,
    state::{RoomLink, RoomState},
};

/// The rooms column on a wide screen, a drawer on a narrow one.
#[component]
pub fn RoomsNav(slug: String) -> impl IntoView {
    let room = expect_context::<RoomState>();
    let href = format!("/{slug}");
    view! {
        <nav
            id="rooms"
            class="rooms-nav side-panel"
            popover="auto"
            aria-labelledby="rooms-title"
        >
            <button class="panel-close" popovertarget="rooms" popovertargetaction="hide">
                "Close"
            </button>
            <h2 id="rooms-title">"Rooms"</h2>
            <ul class="rooms">
                <li class="current">
                    <a href=href aria-current="page">{slug}</a>
                </li>
            </ul>
            // The other rooms as one HTML string (the WASM pays per view shape, and this list is plain links).
            <ul class="rooms" inner_html=move || room.rooms.with(|rooms| rooms_html(rooms))></ul>
            <p class="hint">
                <a href="/">"Open another room"</a>
            </p>
        </nav>
    }
}

/// The other rooms' list items: a link each, with an unread badge ("99+" from [`protocol::chat::MAX_UNREAD`] on).
pub fn rooms_html(rooms: &[RoomLink]) -> String {
    let mut html = String::new();
    for room in rooms {
        html.push_str(if room.unread > 0 { "<li class=\"has-unread\"><a href=\"/" } else { "<li><a href=\"/" });
        escape_into(&mut html, &room.slug);
        html.push_str("\">");
        escape_into(&mut html, &room.slug);
        html.push_str("</a>");
        if room.unread > 0 {
            let shown =
                if room.unread >= protocol::chat::MAX_UNREAD { "99+".to_owned() } else { room.unread.to_string() };
            html.push_str(&format!(
                "<span class=\"unread\">{shown}<span class=\"visually-hidden\"> unread</span></span>"
            ));
        }
        html.push_str("</li>");
    }
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_are_links_with_unread_badges() {
        let rooms = [
            RoomLink { slug: "lobby".into(), unread: 0 },
            RoomLink { slug: "busy".into(), unread: 3 },
            RoomLink { slug: "flood".into(), unread: 100 },
        ];
        assert_eq!(
            rooms_html(&rooms),
            "<li><a href=\"/lobby\">lobby</a></li>\
             <li class=\"has-unread\"><a href=\"/busy\">busy</a><span class=\"unread\">3<span class=\"visually-hidden\"> unread</span></span></li>\
             <li class=\"has-unread\"><a href=\"/flood\">flood</a><span class=\"unread\">99+<span class=\"visually-hidden\"> unread</span></span></li>"
        );
        assert_eq!(
            rooms_html(&[RoomLink { slug: "<x>".into(), unread: 0 }]),
            "<li><a href=\"/&lt;x&gt;\">&lt;x&gt;</a></li>"
        );
    }
}
