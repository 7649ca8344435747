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
