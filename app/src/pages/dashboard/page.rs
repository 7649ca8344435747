//! The `/dashboard` route, who may see it, and the `Dashboard` island.
//!
//! The route waits for [`dashboard_viewer`] before sending anything (`SsrMode::Async`), so its answer can still set
//! the response: a redirect to `/login` without a session, HTTP 403 for an account that is not an operator. Only an
//! operator's page carries the island, with the account's socket token as its prop.

use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

use super::{board::Board, view::board_html};
use crate::brand::PRODUCT_NAME;

/// Who is asking for the dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DashboardAccess {
    /// An operator: the page connects with this socket token.
    Operator { user: String, token: String },
    /// A logged-in account that is not an operator (the page answers 403).
    Forbidden { user: String },
    /// Nobody is logged in (the page redirects to `/login`).
    LoginRequired,
}

/// Decides who may see the dashboard, from the session cookie and the store (asked every time, so a revoke needs no
/// new session). During the page's rendering it also sets the answer: a redirect to `/login`, or 403.
#[server]
pub async fn dashboard_viewer() -> Result<DashboardAccess, ServerFnError> {
    use crate::api::ssr::{Backend, no_store, session_user};
    // Whoever asks, the answer is personal (an operator's carries a 24 h socket token): no cache keeps it.
    no_store();
    let Some(user) = session_user().await else {
        // `redirect` sets the status only for requests that accept HTML; a redirect is one for every client.
        leptos_axum::redirect("/login");
        expect_context::<leptos_axum::ResponseOptions>().set_status(axum::http::StatusCode::FOUND);
        return Ok(DashboardAccess::LoginRequired);
    };
    let backend = expect_context::<Backend>();
    if !backend.0.is_operator(user.clone()).await {
        expect_context::<leptos_axum::ResponseOptions>().set_status(axum::http::StatusCode::FORBIDDEN);
        return Ok(DashboardAccess::Forbidden { user });
    }
    let token = backend.0.socket_token(&user);
    Ok(DashboardAccess::Operator { user, token })
}

/// The route component.
#[component]
pub fn DashboardPage() -> impl IntoView {
    let access = Resource::new_blocking(|| (), |()| dashboard_viewer());
    let title = format!("Dashboard · {PRODUCT_NAME}");
    view! {
        <Title text=title />
        <Suspense fallback=|| view! { <main class="page">"Loading…"</main> }>
            {move || Suspend::new(async move {
                match access.await {
                    Ok(DashboardAccess::Operator { user, token }) => view! { <Dashboard user token /> }.into_any(),
                    Ok(DashboardAccess::Forbidden { user }) => view! {
                        <main class="page page-narrow">
                            <h1>"Operators only"</h1>
                            <p>"The dashboard is for operators, and " <strong>{user}</strong> " is not one."</p>
                            <p><a href="/">"Back to the start"</a></p>
                        </main>
                    }
                    .into_any(),
                    Ok(DashboardAccess::LoginRequired) => view! {
                        <main class="page page-narrow">
                            <p><a href="/login">"Log in"</a>" as an operator to see the dashboard."</p>
                        </main>
                    }
                    .into_any(),
                    Err(_) => view! { <main class="page page-narrow"><p>"Could not load the dashboard."</p></main> }
                        .into_any(),
                }
            })}
        </Suspense>
    }
}

/// The live board: joins `admin:stats` once hydrated and redraws with every sample.
#[island]
fn Dashboard(user: String, token: String) -> impl IntoView {
    let board = RwSignal::new(Board { nodes: Vec::new(), note: "Connecting…" });
    let hydrated = RwSignal::new(false);
    Effect::new(move |started: Option<()>| {
        if started.is_none() {
            go_live(&token, board);
            hydrated.set(true);
        }
    });
    view! {
        <main class="page dashboard" data-hydrated=move || hydrated.get().to_string()>
            <header class="dashboard-header">
                <h1>"Dashboard"</h1>
                <p>"Every node, sampled each second. Signed in as " <strong>{user}</strong> "."</p>
            </header>
            <div class="nodes" inner_html=move || board.with(board_html)></div>
        </main>
    }
}

/// Starts the live board where there is a browser; the server renders the same island and does nothing here.
fn go_live(token: &str, board: RwSignal<Board>) {
    #[cfg(target_arch = "wasm32")]
    super::live::start(token.to_owned(), board);
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (token, board);
}
