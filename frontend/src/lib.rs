//! The WASM entry point and nothing else.
//!
//! With `hydrate` (cargo-leptos) it wakes the islands of the server-rendered page (the pages are otherwise plain HTML);
//! with `csr` (Trunk) it mounts the whole app into an empty static page.

// Leptos view types nest deeply; the default limit (128) is too low for the room page.
#![recursion_limit = "256"]

#[cfg(feature = "hydrate")]
/// Called by the generated JS once the WASM module is loaded; the JS then hydrates each `<leptos-island>` through the
/// functions the app crate's `#[island]`s export.
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    // Links the app crate, whose islands are this module's exports.
    use app as _;
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
}

#[cfg(feature = "csr")]
/// Entry point for the CSR-only (Trunk) build: render the app into `<body>`.
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
