//! Server functions the pages call, and the [`ssr::ChatBackend`] the server plugs in to answer them.
//!
//! The app crate cannot see the server's store, so the server provides an implementation of `ChatBackend` as Leptos
//! context (for SSR and for server-function requests alike).

use leptos::prelude::*;
use protocol::chat::Message;
use serde::{Deserialize, Serialize};

/// A room with recent activity, for the home page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecentRoom {
    pub slug: String,
    /// Newest message, ms since the epoch.
    pub last_message_at: i64,
}

/// Why registering or logging in failed, as shown to the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountProblem {
    /// The name is taken (case-insensitively).
    NameTaken,
    /// The name breaks the display-name rules.
    InvalidName,
    /// The password is too short or too long.
    WeakPassword,
    /// Unknown name or wrong password (deliberately not saying which).
    WrongCredentials,
    /// Too many failed attempts; wait a few minutes.
    TooManyAttempts,
    /// Something failed on the server.
    Unavailable,
}

impl AccountProblem {
    const ALL: [Self; 6] = [
        Self::NameTaken,
        Self::InvalidName,
        Self::WeakPassword,
        Self::WrongCredentials,
        Self::TooManyAttempts,
        Self::Unavailable,
    ];

    /// The short code carried in the form page's URL after a failed attempt (`/login?problem=…`).
    pub fn code(self) -> &'static str {
        match self {
            Self::NameTaken => "name-taken",
            Self::InvalidName => "invalid-name",
            Self::WeakPassword => "weak-password",
            Self::WrongCredentials => "wrong-credentials",
            Self::TooManyAttempts => "too-many-attempts",
            Self::Unavailable => "unavailable",
        }
    }

    /// The problem a [`code`](Self::code) names.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.code() == code)
    }

    /// A sentence for the form.
    pub fn message(self) -> &'static str {
        match self {
            Self::NameTaken => "That name is taken. Pick another one.",
            Self::InvalidName => "Names are 1–32 letters, digits, spaces or -_.' characters.",
            Self::WeakPassword => "Passwords are 8 to 128 characters.",
            Self::WrongCredentials => "Unknown name or wrong password.",
            Self::TooManyAttempts => "Too many attempts from here. Try again in a few minutes.",
            Self::Unavailable => "Something went wrong on our side. Try again.",
        }
    }
}

/// The logged-in account of this browser, if any.
#[server]
pub async fn current_user() -> Result<Option<String>, ServerFnError> {
    Ok(ssr::session_user().await)
}

/// Registers an account and logs it in (the `/register` form posts here; the answer is a redirect).
#[server]
pub async fn register(username: String, password: String) -> Result<(), ServerFnError> {
    let backend = expect_context::<ssr::Backend>();
    let client = ssr::client_address().await;
    let outcome = backend.0.register(username.clone(), password, client).await;
    ssr::log_in_or_explain(outcome, "/register", &username).await;
    Ok(())
}

/// Logs in (the `/login` form posts here; the answer is a redirect).
#[server]
pub async fn login(username: String, password: String) -> Result<(), ServerFnError> {
    let backend = expect_context::<ssr::Backend>();
    let client = ssr::client_address().await;
    let outcome = backend.0.login(username.clone(), password, client).await;
    ssr::log_in_or_explain(outcome, "/login", &username).await;
    Ok(())
}

/// Logs out.
#[server]
pub async fn logout() -> Result<(), ServerFnError> {
    ssr::end_session().await;
    leptos_axum::redirect("/");
    Ok(())
}

/// A fresh socket token for the logged-in account (the client refreshes before its token expires).
#[server]
pub async fn socket_token() -> Result<Option<String>, ServerFnError> {
    let backend = expect_context::<ssr::Backend>();
    ssr::no_store();
    Ok(ssr::session_user().await.map(|user| backend.0.socket_token(&user)))
}

/// What the room page renders on the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomPageData {
    pub slug: String,
    /// Whether the slug is a valid room name.
    pub valid: bool,
    /// The display name to connect as, decided by the server: the account's, or the guest name asked for (`?user=`,
    /// else the one this browser had before) if it is valid and not an account's, or a fresh random one.
    pub user: String,
    /// A socket token when the browser is logged in (the identity then comes from the account).
    pub token: Option<String>,
    /// Set when the guest name asked for belongs to an account this browser is not logged in as.
    pub name_refused: Option<String>,
    /// Only accounts may chat and this browser is not logged in.
    pub login_required: bool,
    /// The latest messages, oldest first.
    pub messages: Vec<Message>,
    /// The server's clock when it rendered the page (ms since the epoch): "Today" in the server's HTML means this day,
    /// so the page hydrates to the same rows.
    pub now: i64,
    /// Why the last change of guest name was refused (from the room URL's `?rename=`; set by the route, not the
    /// server function).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rename_problem: Option<String>,
}

/// Recently active rooms.
#[server]
pub async fn recent_rooms() -> Result<Vec<RecentRoom>, ServerFnError> {
    let backend = expect_context::<ssr::Backend>();
    Ok(backend.0.recent_rooms(8).await)
}

/// Everything the room page needs to render before the socket connects. Who the visitor is comes from the server's
/// one identity rule (the socket applies the same one); a guest name it accepted is remembered in a cookie for the
/// next visit, and only such a name.
#[server]
pub async fn room_page(slug: String, user: Option<String>) -> Result<RoomPageData, ServerFnError> {
    let backend = expect_context::<ssr::Backend>();
    let valid = protocol::names::validate_room_slug(&slug).is_ok();
    let messages = if valid { backend.0.latest(slug.clone()).await } else { Vec::new() };
    let session = ssr::cookie(ssr::SESSION_COOKIE).await;
    let requested = match user {
        Some(user) => Some(user),
        None => ssr::cookie(ssr::GUEST_COOKIE).await.map(|value| crate::url::decode(&value)),
    };
    let identity = backend.0.room_identity(session, requested).await;
    let token = identity.account.then(|| backend.0.socket_token(&identity.user));
    if token.is_some() {
        ssr::no_store();
    }
    if !identity.account && !identity.login_required {
        ssr::remember_guest(&identity.user).await;
    }
    Ok(RoomPageData {
        slug,
        valid,
        user: identity.user,
        token,
        name_refused: identity.name_refused,
        login_required: identity.login_required,
        messages,
        now: crate::browser::now_ms() as i64,
        rename_problem: None,
    })
}

/// A guest's new display name, from the room's form: checked by the same rule as `?user=` (valid, and not an
/// account's) and remembered for this browser, then back to the room, which connects under it. A refused name goes
/// back with the reason (`?rename=<problem code>`); a logged-in browser keeps its account's name.
#[server]
pub async fn rename_guest(room: String, name: String) -> Result<(), ServerFnError> {
    let room = if protocol::names::validate_room_slug(&room).is_ok() { room } else { String::new() };
    let backend = expect_context::<ssr::Backend>();
    let identity = backend.0.room_identity(ssr::cookie(ssr::SESSION_COOKIE).await, Some(name)).await;
    let problem = if identity.name_invalid {
        Some(AccountProblem::InvalidName)
    } else if identity.name_refused.is_some() {
        Some(AccountProblem::NameTaken)
    } else {
        if !identity.account && !identity.login_required {
            ssr::remember_guest(&identity.user).await;
        }
        None
    };
    match problem {
        Some(problem) => leptos_axum::redirect(&format!("/{room}?rename={}", problem.code())),
        None => leptos_axum::redirect(&format!("/{room}")),
    }
    Ok(())
}

/// The reason shown after a refused change of name, from the room URL's `?rename=` (only the two problems
/// `rename_guest` reports; anything else shows nothing).
pub fn rename_problem(code: &str) -> Option<&'static str> {
    [AccountProblem::InvalidName, AccountProblem::NameTaken]
        .into_iter()
        .find(|problem| problem.code() == code)
        .map(AccountProblem::message)
}

/// Creates a fresh memorable room name and sends the browser there (works without JavaScript too).
#[server]
pub async fn create_random_room(name: Option<String>) -> Result<(), ServerFnError> {
    let backend = expect_context::<ssr::Backend>();
    let slug = backend.0.random_room_slug();
    leptos_axum::redirect(&format!("/{slug}{}", ssr::user_query(name.as_deref())));
    Ok(())
}

/// Sends the browser to the room a typed name stands for (slugified), or back home when it is not a room name.
#[server]
pub async fn go_to_room(room: String, name: Option<String>) -> Result<(), ServerFnError> {
    let slug = crate::url::slugify(&room);
    if protocol::names::validate_room_slug(&slug).is_err() {
        leptos_axum::redirect("/");
        return Ok(());
    }
    leptos_axum::redirect(&format!("/{slug}{}", ssr::user_query(name.as_deref())));
    Ok(())
}

#[cfg(feature = "ssr")]
pub mod ssr {
    //! The server side of the server functions.

    use std::sync::Arc;

    use axum::http::{HeaderMap, HeaderValue, header};
    use futures::future::BoxFuture;
    use leptos::prelude::{expect_context, use_context};
    use leptos_axum::{ResponseOptions, extract};
    use protocol::chat::Message;

    use super::{AccountProblem, RecentRoom};

    /// Name of the session cookie.
    pub const SESSION_COOKIE: &str = "parley_session";
    /// Name of the cookie that remembers the guest name the server last accepted for this browser.
    pub const GUEST_COOKIE: &str = "parley_guest";
    /// Guest names are remembered for a year.
    const GUEST_MAX_AGE_S: u32 = 365 * 24 * 3600;

    /// Who the room page is for, as the server's identity rule decided it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct PageIdentity {
        /// The display name.
        pub user: String,
        /// True when `user` is the logged-in account.
        pub account: bool,
        /// The guest name that was asked for but belongs to an account.
        pub name_refused: Option<String>,
        /// The guest name asked for breaks the display-name rules (after NFKC normalization), so `user` is random.
        pub name_invalid: bool,
        /// Only accounts may chat and there is no session.
        pub login_required: bool,
    }

    /// What the pages need from the server.
    pub trait ChatBackend: Send + Sync + 'static {
        /// Registers an account; returns the name as stored.
        fn register(
            &self,
            username: String,
            password: String,
            client: String,
        ) -> BoxFuture<'_, Result<String, AccountProblem>>;
        /// Checks a login (rate limited per client address and per account); returns the account name.
        fn login(
            &self,
            username: String,
            password: String,
            client: String,
        ) -> BoxFuture<'_, Result<String, AccountProblem>>;
        /// Who the room page is for, from the session cookie's value and the guest name asked for.
        fn room_identity(&self, session: Option<String>, requested: Option<String>) -> BoxFuture<'_, PageIdentity>;
        /// A signed session value for the cookie.
        fn session_value(&self, user: &str) -> String;
        /// The account a session value names, if genuine and not expired.
        fn session_user(&self, value: &str) -> Option<String>;
        /// A socket token for `user`.
        fn socket_token(&self, user: &str) -> String;
        /// Rooms with the newest messages.
        fn recent_rooms(&self, limit: usize) -> BoxFuture<'_, Vec<RecentRoom>>;
        /// The latest messages of a room (what a join would return), oldest first.
        fn latest(&self, room: String) -> BoxFuture<'_, Vec<Message>>;
        /// A fresh random room slug.
        fn random_room_slug(&self) -> String;
        /// Whether the account `user` is an operator (may open `/dashboard`); false when the store cannot say.
        fn is_operator(&self, user: String) -> BoxFuture<'_, bool>;
    }

    /// The backend as Leptos context.
    #[derive(Clone)]
    pub struct Backend(pub Arc<dyn ChatBackend>);

    async fn headers() -> Option<HeaderMap> {
        extract::<HeaderMap>().await.ok()
    }

    /// The value of the request's cookie `name`.
    pub async fn cookie(name: &str) -> Option<String> {
        let headers = headers().await?;
        let cookies = headers.get_all(header::COOKIE);
        cookies
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(cookie, _)| *cookie == name)
            .map(|(_, value)| value.to_owned())
    }

    /// Keeps this answer out of every cache (the browser's, a proxy's, the back button's): it carries a socket token,
    /// which stands for the account for 24 h.
    pub fn no_store() {
        if let Some(response) = use_context::<ResponseOptions>() {
            response.insert_header(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    }

    /// The logged-in account of the current request, from its session cookie.
    pub async fn session_user() -> Option<String> {
        let backend = use_context::<Backend>()?;
        backend.0.session_user(&cookie(SESSION_COOKIE).await?)
    }

    /// Remembers a guest name the server accepted (the browser itself never picks one).
    pub async fn remember_guest(name: &str) {
        let secure = if secure().await { "; Secure" } else { "" };
        let value = crate::url::encode(name);
        set_cookie(&format!(
            "{GUEST_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={GUEST_MAX_AGE_S}{secure}"
        ));
    }

    /// Whether the request came over https (directly or through a proxy that says so).
    async fn secure() -> bool {
        headers().await.is_some_and(|h| {
            h.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).is_some_and(|p| p.eq_ignore_ascii_case("https"))
        })
    }

    fn set_cookie(value: &str) {
        if let Ok(value) = HeaderValue::from_str(value) {
            expect_context::<ResponseOptions>().append_header(header::SET_COOKIE, value);
        }
    }

    /// Sets the session cookie for `user` (HttpOnly, SameSite=Lax, Secure behind https, 30 days).
    pub async fn start_session(user: &str) {
        let backend = expect_context::<Backend>();
        let secure = if secure().await { "; Secure" } else { "" };
        let value = backend.0.session_value(user);
        set_cookie(&format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age=2592000{secure}"));
    }

    /// After registering or checking a login: start the session and go home, or go back to the form `page` with the
    /// problem and the typed name in its URL.
    pub async fn log_in_or_explain(outcome: Result<String, AccountProblem>, page: &str, typed_name: &str) {
        match outcome {
            Ok(user) => {
                start_session(&user).await;
                leptos_axum::redirect("/");
            }
            Err(problem) => {
                let name = crate::url::encode(typed_name.get(..64).unwrap_or(typed_name));
                leptos_axum::redirect(&format!("{page}?problem={}&name={name}", problem.code()));
            }
        }
    }

    /// `?user=…` for a valid display name, else nothing (the room page then picks a random one).
    pub fn user_query(name: Option<&str>) -> String {
        name.and_then(|n| protocol::names::normalize_user_name(n).ok())
            .map(|n| format!("?user={}", crate::url::encode(&n)))
            .unwrap_or_default()
    }

    /// Clears the session cookie.
    pub async fn end_session() {
        let secure = if secure().await { "; Secure" } else { "" };
        set_cookie(&format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"));
    }

    /// The client's address (for login and registration limits): the server resolves it through trusted proxies
    /// before it reaches this request's `ConnectInfo`.
    pub async fn client_address() -> String {
        extract::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .await
            .map_or_else(|_| "unknown".to_owned(), |info| info.0.ip().to_string())
    }
}
