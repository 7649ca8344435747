//! Protections every HTTP response and form post gets.
//!
//! * **Security headers** on every response: the Content Security Policy of [`app::security`] (pages rendered by
//!   Leptos already carry one with their script nonce and keep it), `X-Frame-Options: DENY` for browsers without
//!   `frame-ancestors`, `X-Content-Type-Options: nosniff`, `Referrer-Policy: same-origin` (room URLs are the rooms'
//!   only secret) and `Cross-Origin-Opener-Policy: same-origin`.
//! * **Cross-site request forgery**: a request that changes state (any method but GET, HEAD and OPTIONS) is refused
//!   with 403 when the browser says it comes from another site (`Sec-Fetch-Site: cross-site` or `same-site`) or its
//!   `Origin` is not one of the server's public origins. Every current browser sends at least one of the two on a
//!   form post, so a forged post cannot pass; clients without either (curl, backends) are not browsers and carry
//!   no ambient cookies to abuse. This is the header-based scheme of Go's `http.CrossOriginProtection`, checked
//!   against the configured origins rather than the request's `Host` (which DNS rebinding controls); session
//!   cookies are `SameSite=Lax` on top.

use std::sync::Arc;

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{telemetry::LogBudget, transport::connect::OriginPolicy};

/// Adds the headers of the module docs to a response that does not have them yet.
pub(crate) async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        let policy = app::security::content_security_policy(None);
        if let Ok(value) = HeaderValue::from_str(&policy) {
            headers.insert(header::CONTENT_SECURITY_POLICY, value);
        }
    }
    let fixed: [(HeaderName, &'static str); 4] = [
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (HeaderName::from_static("cross-origin-opener-policy"), "same-origin"),
    ];
    for (name, value) in fixed {
        headers.entry(name).or_insert(HeaderValue::from_static(value));
    }
    response
}

/// Refuses cross-site state-changing requests (module docs).
pub(crate) async fn cross_origin_protection(
    State(origins): State<Arc<OriginPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let cross_site = matches!(fetch_site, Some("cross-site" | "same-site"));
    if cross_site || origins.check(headers).is_err() {
        static REFUSED: LogBudget = LogBudget::new(30);
        if let Some(suppressed) = REFUSED.admit() {
            tracing::info!(
                method = %request.method(),
                path = request.uri().path(),
                origin = ?headers.get(header::ORIGIN),
                fetch_site,
                suppressed,
                "cross-site request refused"
            );
        }
        return (StatusCode::FORBIDDEN, Body::from("cross-site request refused")).into_response();
    }
    next.run(request).await
}
