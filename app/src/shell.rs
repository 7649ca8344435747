//! The HTML document and the router: what every page shares.

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    ParamSegment, SsrMode, StaticSegment,
    components::{Route, Router, Routes},
};

use crate::brand::PRODUCT_NAME;
use crate::pages::{
    account::{LoginPage, LogoutPage, RegisterPage},
    dashboard::DashboardPage,
    home::HomePage,
    not_found::NotFound,
    room::RoomPage,
};

/// The full HTML document rendered by the server around [`App`].
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    send_security_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <AutoReload options=options.clone() />
                <HydrationScripts options islands=true />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// Puts this response's Content Security Policy, with its script nonce, in the response headers.
#[cfg(feature = "ssr")]
fn send_security_policy() {
    use leptos::nonce::use_nonce;
    use leptos_axum::ResponseOptions;
    let (Some(nonce), Some(response)) = (use_nonce(), use_context::<ResponseOptions>()) else {
        return;
    };
    let policy = crate::security::content_security_policy(Some(&nonce));
    if let Ok(value) = axum::http::HeaderValue::from_str(&policy) {
        response.insert_header(axum::http::header::CONTENT_SECURITY_POLICY, value);
    }
}

/// The root component: stylesheet, title and routes.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/chat.css" />
        <Title text=PRODUCT_NAME />
        <Router>
            <Routes fallback=NotFound>
                // Async pages arrive whole: with islands nothing on them waits for the WASM to fill in.
                <Route path=StaticSegment("") view=HomePage ssr=SsrMode::Async />
                <Route path=StaticSegment("login") view=LoginPage />
                <Route path=StaticSegment("register") view=RegisterPage />
                <Route path=StaticSegment("logout") view=LogoutPage />
                // Waits for the operator check, so a guest gets the redirect and another account the 403 status.
                <Route path=StaticSegment("dashboard") view=DashboardPage ssr=SsrMode::Async />
                // The room waits for its history before sending any HTML, so the page never shows an empty list.
                <Route path=ParamSegment("room") view=RoomPage ssr=SsrMode::Async />
            </Routes>
        </Router>
    }
}
