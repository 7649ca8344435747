//! The Leptos application: pages, components and the realtime client.
//!
//! Compiled twice: with `ssr` into the server (rendering HTML) and with `hydrate` (or `csr` for Trunk) into the
//! WASM bundle. `ssr` and `hydrate` are never enabled together. In the `hydrate` build only the islands (the live
//! room, the home page's room picker) and what they use end up in the WASM; the other pages are server-only HTML.

pub mod api;
pub mod brand;
pub mod browser;
pub mod pages;
pub mod realtime;
pub mod security;
pub mod shell;
pub mod url;

pub use shell::{App, shell};
