//! `/register`, `/login` and `/logout`: accounts alongside guests. Plain forms posting to server functions, so they
//! work before hydration (and without JavaScript) too.

use leptos::{form::ActionForm, prelude::*};

use crate::{
    api::{AccountProblem, Login, Logout, Register},
    shell::PRODUCT_NAME,
};

/// `"true"` once the WASM bundle has hydrated the page (tests wait for it before clicking).
fn hydrated() -> impl Fn() -> String + Copy {
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    move || hydrated.get().to_string()
}

fn problem_text(value: Option<Result<Option<AccountProblem>, ServerFnError>>) -> Option<&'static str> {
    match value {
        Some(Ok(Some(problem))) => Some(problem.message()),
        Some(Err(_)) => Some(AccountProblem::Unavailable.message()),
        _ => None,
    }
}

/// `/register`.
#[component]
pub fn RegisterPage() -> impl IntoView {
    let action = ServerAction::<Register>::new();
    let problem = move || problem_text(action.value().get());
    view! {
        <main class="page page-narrow account" data-hydrated=hydrated()>
            <h1>"Create an account"</h1>
            <p class="tagline">"Your name is yours alone: guests cannot use it, and it follows you to every room."</p>
            <ActionForm action>
                <label for="username">"Name"</label>
                <input id="username" name="username" type="text" maxlength="32" autocomplete="username" required />
                <label for="password">"Password"</label>
                <input id="password" name="password" type="password" minlength="8" maxlength="128" autocomplete="new-password" required />
                <p class="form-error" role="alert">{problem}</p>
                <button type="submit" class="primary">"Create account"</button>
            </ActionForm>
            <p class="hint">"Already have one? " <a href="/login">"Log in"</a></p>
        </main>
    }
}

/// `/login`.
#[component]
pub fn LoginPage() -> impl IntoView {
    let action = ServerAction::<Login>::new();
    let problem = move || problem_text(action.value().get());
    view! {
        <main class="page page-narrow account" data-hydrated=hydrated()>
            <h1>"Log in to " {PRODUCT_NAME}</h1>
            <ActionForm action>
                <label for="username">"Name"</label>
                <input id="username" name="username" type="text" maxlength="32" autocomplete="username" required />
                <label for="password">"Password"</label>
                <input id="password" name="password" type="password" maxlength="128" autocomplete="current-password" required />
                <p class="form-error" role="alert">{problem}</p>
                <button type="submit" class="primary">"Log in"</button>
            </ActionForm>
            <p class="hint">"New here? " <a href="/register">"Create an account"</a></p>
        </main>
    }
}

/// `/logout`: a button (logging out is a POST, never a link a crawler could follow).
#[component]
pub fn LogoutPage() -> impl IntoView {
    let action = ServerAction::<Logout>::new();
    view! {
        <main class="page page-narrow account" data-hydrated=hydrated()>
            <h1>"Log out"</h1>
            <ActionForm action>
                <button type="submit" class="primary">"Log out"</button>
            </ActionForm>
        </main>
    }
}
