//! What the async parts of the client need from their platform: the clock, a sleep and a local task. The browser's
//! (`setTimeout`, `spawn_local` of wasm-bindgen-futures) or tokio's (native tests run in a `LocalSet`).

/// Milliseconds on a monotonic-enough clock (wall clock; only differences matter).
pub(crate) fn now_ms() -> u64 {
    crate::browser::now_ms() as u64
}

pub(crate) async fn sleep_ms(ms: u64) {
    #[cfg(target_arch = "wasm32")]
    {
        let promise = js_sys::Promise::new(&mut |resolve, _| {
            if let Some(window) = web_sys::window() {
                let _ = window
                    .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms.min(i32::MAX as u64) as i32);
            }
        });
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}

pub(crate) fn spawn_local(task: impl std::future::Future<Output = ()> + 'static) {
    #[cfg(target_arch = "wasm32")]
    wasm_bindgen_futures::spawn_local(task);
    #[cfg(not(target_arch = "wasm32"))]
    {
        tokio::task::spawn_local(task);
    }
}
