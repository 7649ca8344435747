//! The 404 page.

use leptos::prelude::*;

/// Shown for any path no route matches.
#[component]
pub fn NotFound() -> impl IntoView {
    view! {
        <main class="page page-narrow">
            <h1>"Page not found"</h1>
            <p>
                <a href="/">"Back to the start"</a>
            </p>
        </main>
    }
}
