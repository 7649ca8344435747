//! The built bundle under `/pkg` (WASM, JS, CSS): served from disk, precompressed.
//!
//! The release build writes `.br` and `.gz` next to each file (`scripts/lib.sh`), so the largest download a page makes
//! costs no CPU per request and arrives at the best ratio each encoding offers. File names are not content-hashed, so
//! browsers revalidate (`no-cache` plus `Last-Modified`) rather than keep a stale bundle after a deploy.

use std::path::Path;

use axum::http::{HeaderValue, header};
use tower::Layer;
use tower_http::{services::ServeDir, set_header::SetResponseHeaderLayer};

/// The service answering `/pkg/*` from `dir`.
pub fn service(dir: &Path) -> tower_http::set_header::SetResponseHeader<ServeDir, HeaderValue> {
    let files = ServeDir::new(dir).precompressed_br().precompressed_gzip();
    SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-cache")).layer(files)
}
