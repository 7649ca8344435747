//! The few things the app asks of the browser, behind plain functions: the clock, randomness, the page's own socket
//! endpoint, the local time zone and timers. Off the browser (server rendering, native tests) they answer with
//! neutral values, so the code that calls them carries no `cfg` of its own.

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> f64 {
    #[cfg(target_arch = "wasm32")]
    {
        js_sys::Date::now()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_millis() as f64)
    }
}

/// A random id for a message I send (its idempotency key): 128 bits as four hex groups.
pub fn random_id() -> String {
    (0..4).map(|_| format!("{:08x}", random_u32())).collect::<Vec<_>>().join("-")
}

/// A random seed for the socket's reconnect jitter.
pub fn random_seed() -> u64 {
    (u64::from(random_u32()) << 32) | u64::from(random_u32())
}

fn random_u32() -> u32 {
    #[cfg(target_arch = "wasm32")]
    {
        (js_sys::Math::random() * f64::from(u32::MAX)) as u32
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::hash::{BuildHasher, RandomState};
        RandomState::new().hash_one(std::time::Instant::now()) as u32
    }
}

/// The WebSocket endpoint of the server that served this page (`wss://` behind https).
pub fn socket_endpoint() -> String {
    #[cfg(target_arch = "wasm32")]
    {
        let location = web_sys::window().map(|w| w.location());
        let host = location.as_ref().and_then(|l| l.host().ok()).unwrap_or_default();
        let secure = location.and_then(|l| l.protocol().ok()).is_some_and(|p| p.starts_with("https"));
        format!("{}://{host}/socket/websocket", if secure { "wss" } else { "ws" })
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        "ws://127.0.0.1:3000/socket/websocket".to_owned()
    }
}

/// Minutes to add to UTC for the local time at `timestamp_ms` (daylight saving included); `None` off the browser.
pub fn local_offset_minutes(timestamp_ms: i64) -> Option<i64> {
    #[cfg(target_arch = "wasm32")]
    {
        let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(timestamp_ms as f64));
        Some(-(date.get_timezone_offset() as i64))
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = timestamp_ms;
        None
    }
}

/// A day's date in the reader's locale ("Monday, 24 November", with the year when it is not this year); `None` off
/// the browser.
pub fn long_date(timestamp_ms: i64) -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    {
        use js_sys::{Array, Date, Intl::DateTimeFormat, Object, Reflect};
        use wasm_bindgen::JsValue;
        let date = Date::new(&JsValue::from_f64(timestamp_ms as f64));
        let options = Object::new();
        let set = |key: &str, value: &str| Reflect::set(&options, &key.into(), &value.into()).ok();
        set("weekday", "long");
        set("month", "long");
        set("day", "numeric");
        if date.get_full_year() != Date::new_0().get_full_year() {
            set("year", "numeric");
        }
        let format = DateTimeFormat::new(&Array::new(), &options).format();
        format.call1(&JsValue::NULL, &date).ok()?.as_string()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = timestamp_ms;
        None
    }
}

#[cfg(target_arch = "wasm32")]
fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// A value this browser kept under `key` (`localStorage`); `None` off the browser or when storage is blocked.
pub fn stored(key: &str) -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    {
        local_storage()?.get_item(key).ok().flatten()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = key;
        None
    }
}

/// Keeps `value` under `key` in `localStorage` (quietly nothing when storage is blocked or full).
pub fn store(key: &str, value: &str) {
    #[cfg(target_arch = "wasm32")]
    if let Some(storage) = local_storage() {
        let _ = storage.set_item(key, value);
    }
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (key, value);
}

/// Says on the room's root which transport the live room uses (`data-transport="websocket"` or `"longpoll"`): for
/// whoever inspects the page, and for tests; nothing visible.
pub fn mark_room_transport(name: &str) {
    #[cfg(target_arch = "wasm32")]
    if let Some(room) =
        web_sys::window().and_then(|w| w.document()).and_then(|d| d.query_selector("main.room").ok().flatten())
    {
        let _ = room.set_attribute("data-transport", name);
    }
    #[cfg(not(target_arch = "wasm32"))]
    let _ = name;
}

/// Whether the page is hidden (a background tab, a minimised window).
pub fn page_hidden() -> bool {
    #[cfg(target_arch = "wasm32")]
    {
        web_sys::window().and_then(|w| w.document()).is_some_and(|d| d.hidden())
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        false
    }
}

/// Sets the document title.
pub fn set_title(title: &str) {
    #[cfg(target_arch = "wasm32")]
    if let Some(document) = web_sys::window().and_then(|w| w.document()) {
        document.set_title(title);
    }
    #[cfg(not(target_arch = "wasm32"))]
    let _ = title;
}

/// The page's own origin (`https://chat.example`), for links to share.
pub fn origin() -> String {
    #[cfg(target_arch = "wasm32")]
    {
        web_sys::window().and_then(|w| w.location().origin().ok()).unwrap_or_default()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        String::new()
    }
}

/// Puts `text` on the clipboard; `true` once it is there.
pub async fn copy_text(text: &str) -> bool {
    #[cfg(target_arch = "wasm32")]
    {
        let Some(window) = web_sys::window() else { return false };
        let promise = window.navigator().clipboard().write_text(text);
        wasm_bindgen_futures::JsFuture::from(promise).await.is_ok()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = text;
        false
    }
}

/// Asks for permission to show notifications (call from a click only); `true` when granted.
pub async fn allow_notifications() -> bool {
    #[cfg(target_arch = "wasm32")]
    {
        let Ok(promise) = web_sys::Notification::request_permission() else { return false };
        let answer = wasm_bindgen_futures::JsFuture::from(promise).await;
        answer.ok().and_then(|a| a.as_string()).is_some_and(|a| a == "granted")
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        false
    }
}

/// Whether notifications were granted before (nothing is asked).
pub fn notifications_allowed() -> bool {
    #[cfg(target_arch = "wasm32")]
    {
        web_sys::Notification::permission() == web_sys::NotificationPermission::Granted
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        false
    }
}

/// Shows a notification, if allowed.
pub fn notify(title: &str, body: &str) {
    #[cfg(target_arch = "wasm32")]
    if notifications_allowed() {
        let options = web_sys::NotificationOptions::new();
        options.set_body(body);
        options.set_tag(title);
        let _ = web_sys::Notification::new_with_options(title, &options);
    }
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (title, body);
}

/// POSTs to this server's `path` (a server function without arguments) and returns the answer's body when it is a
/// success. A bare `fetch`: the generic server-function client would add its request machinery to the WASM.
pub async fn post(path: &str) -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    {
        use wasm_bindgen::JsCast;
        use wasm_bindgen_futures::JsFuture;

        let init = web_sys::RequestInit::new();
        init.set_method("POST");
        let promise = web_sys::window()?.fetch_with_str_and_init(path, &init);
        let response: web_sys::Response = JsFuture::from(promise).await.ok()?.dyn_into().ok()?;
        if !response.ok() {
            return None;
        }
        JsFuture::from(response.text().ok()?).await.ok()?.as_string()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = path;
        None
    }
}
