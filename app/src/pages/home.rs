//! The home page: what the product is, and where to go next.

use leptos::prelude::*;

use crate::shell::PRODUCT_NAME;

/// `/`: the product name, one sentence on what it is, and a name field.
#[component]
pub fn HomePage() -> impl IntoView {
    let (name, set_name) = signal(String::new());
    // Set once the WASM bundle has taken over the server-rendered page; tests and styles key off it.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));

    let greeting = move || {
        let trimmed = name.get().trim().to_owned();
        if trimmed.is_empty() {
            "You will get a random name.".to_owned()
        } else {
            format!("You will chat as {trimmed}.")
        }
    };

    view! {
        <main class="page page-narrow" data-hydrated=move || hydrated.get().to_string()>
            <h1 class="brand">{PRODUCT_NAME}</h1>
            <p class="tagline">
                "Real-time chat rooms you reach by URL: no sign-up, no set-up, nothing lost on restart."
            </p>
            <label for="display-name">"Your name (optional)"</label>
            <input
                id="display-name"
                type="text"
                maxlength="32"
                autocomplete="nickname"
                prop:value=name
                on:input=move |ev| set_name.set(event_target_value(&ev))
            />
            <p class="hint" aria-live="polite">{greeting}</p>
        </main>
    }
}
