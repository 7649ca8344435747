//! Where a browser session remembers that the WebSocket failed and long poll worked (phoenix.js's
//! `sessionStorage["phx:fallback:LongPoll"] = "true"`), so the next page load of the tab goes straight to long poll.
//! Natively it is a flag in memory, shared by the sockets given clones of one [`FallbackMemory`].

/// phoenix.js's key (and value `"true"`).
pub const SESSION_KEY: &str = "phx:fallback:LongPoll";

/// The browser tab's `sessionStorage` (wasm32), or a flag in memory.
#[derive(Clone, Default)]
pub struct FallbackMemory {
    #[cfg(not(target_arch = "wasm32"))]
    flag: std::rc::Rc<std::cell::Cell<bool>>,
}

impl FallbackMemory {
    /// Whether long poll was needed before (in this tab, or with this memory).
    pub fn long_poll(&self) -> bool {
        #[cfg(target_arch = "wasm32")]
        {
            session_storage().and_then(|s| s.get_item(SESSION_KEY).ok().flatten()).is_some()
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            self.flag.get()
        }
    }

    /// Remembers that long poll was needed.
    pub fn remember_long_poll(&self) {
        #[cfg(target_arch = "wasm32")]
        if let Some(storage) = session_storage() {
            let _ = storage.set_item(SESSION_KEY, "true");
        }
        #[cfg(not(target_arch = "wasm32"))]
        self.flag.set(true);
    }
}

#[cfg(target_arch = "wasm32")]
fn session_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok().flatten()
}
