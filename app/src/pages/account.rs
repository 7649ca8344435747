//! `/register`, `/login` and `/logout`: accounts alongside guests. Server-only pages with plain forms posting to
//! server functions, which answer with a redirect: home on success, or back to the form with `?problem=` (and the
//! typed name) on failure. No WASM involved.

use leptos::{prelude::*, server_fn::ServerFn};
use leptos_router::hooks::use_query_map;

use crate::{
    api::{AccountProblem, Login, Logout, Register},
    brand::PRODUCT_NAME,
};

/// The failed attempt this page was sent back with, if any: its sentence and the name that was typed.
fn failed_attempt() -> (Option<&'static str>, String) {
    let query = use_query_map();
    let query = query.read_untracked();
    let problem =
        query.get_str("problem").map(|code| AccountProblem::from_code(code).unwrap_or(AccountProblem::Unavailable));
    (problem.map(AccountProblem::message), query.get("name").unwrap_or_default())
}

/// The name and password fields shared by both forms.
#[component]
fn Credentials(name: String, new_password: bool) -> impl IntoView {
    let (minlength, autocomplete) = if new_password { (Some("8"), "new-password") } else { (None, "current-password") };
    view! {
        <label for="username">"Name"</label>
        <input id="username" name="username" type="text" maxlength="32" autocomplete="username" required value=name />
        <label for="password">"Password"</label>
        <input
            id="password"
            name="password"
            type="password"
            minlength=minlength
            maxlength="128"
            autocomplete=autocomplete
            required
        />
    }
}

/// `/register`.
#[component]
pub fn RegisterPage() -> impl IntoView {
    let (problem, name) = failed_attempt();
    view! {
        <main class="page page-narrow account">
            <h1>"Create an account"</h1>
            <p class="tagline">"Your name is yours alone: guests cannot use it, and it follows you to every room."</p>
            <form method="post" action=Register::PATH>
                <Credentials name new_password=true />
                <p class="form-error" role="alert">{problem}</p>
                <button type="submit" class="primary">"Create account"</button>
            </form>
            <p class="hint">"Already have one? " <a href="/login">"Log in"</a></p>
        </main>
    }
}

/// `/login`.
#[component]
pub fn LoginPage() -> impl IntoView {
    let (problem, name) = failed_attempt();
    view! {
        <main class="page page-narrow account">
            <h1>"Log in to " {PRODUCT_NAME}</h1>
            <form method="post" action=Login::PATH>
                <Credentials name new_password=false />
                <p class="form-error" role="alert">{problem}</p>
                <button type="submit" class="primary">"Log in"</button>
            </form>
            <p class="hint">"New here? " <a href="/register">"Create an account"</a></p>
        </main>
    }
}

/// `/logout`: a button (logging out is a POST, never a link a crawler could follow).
#[component]
pub fn LogoutPage() -> impl IntoView {
    view! {
        <main class="page page-narrow account">
            <h1>"Log out"</h1>
            <form method="post" action=Logout::PATH>
                <button type="submit" class="primary">"Log out"</button>
            </form>
        </main>
    }
}
