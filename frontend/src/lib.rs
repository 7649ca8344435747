//! The WASM entry point and nothing else.
//!
//! With `hydrate` (cargo-leptos) it takes over the server-rendered page; with `csr` (Trunk) it mounts the app into an
//! empty static page.

// Leptos view types nest deeply; the default limit (128) is too low for the room page.
#![recursion_limit = "256"]

#[cfg(feature = "hydrate")]
/// Called by the generated JS once the WASM module is loaded: hydrate the server-rendered body.
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}

#[cfg(feature = "csr")]
/// Entry point for the CSR-only (Trunk) build: render the app into `<body>`.
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
