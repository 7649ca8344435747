//! What the Leptos pages need from the server: the [`ChatBackend`] behind the app's server functions (accounts and
//! sessions, who the room page is for, recent rooms, a room's latest history, random room names).

use std::{
    net::{IpAddr, Ipv4Addr},
    sync::Arc,
};

use app::api::{
    AccountProblem, RecentRoom,
    ssr::{Backend, ChatBackend, PageIdentity},
};
use futures::{FutureExt, future::BoxFuture};
use protocol::chat::{JOIN_HISTORY, Message};

use crate::{
    auth::{
        Auth,
        identity::{Credential, Identities, Identity, Rejection, display_name},
        password::{self, MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS},
    },
    clock::now_ms,
    metrics::{Limit, Meters},
    names::random_guest_name,
    store::{Account, Store, username_key},
};

pub(crate) struct StoreBackend {
    store: Arc<dyn Store>,
    auth: Arc<Auth>,
    identities: Identities,
    /// Counts refused logins and registrations.
    meters: Arc<Meters>,
}

impl StoreBackend {
    /// As Leptos context.
    pub(crate) fn context(
        store: Arc<dyn Store>,
        auth: Arc<Auth>,
        identities: Identities,
        meters: Arc<Meters>,
    ) -> Backend {
        Backend(Arc::new(Self { store, auth, identities, meters }))
    }
}

/// The page's reading of a decision: a guest whose name was refused is shown why and gets a random name instead,
/// where the socket would answer 403.
async fn page_identity(identities: &Identities, session: Option<&str>, requested: Option<&str>) -> PageIdentity {
    let credential = session.map_or(Credential::None, Credential::Session);
    let guest = |identity: Identity, name_refused, name_invalid| PageIdentity {
        user: identity.name,
        account: identity.account,
        name_refused,
        name_invalid,
        login_required: false,
    };
    let (refused, invalid) = match identities.decide(credential, requested).await {
        Ok(identity) => return guest(identity, None, false),
        Err(Rejection::LoginRequired) => {
            let user = random_guest_name();
            return PageIdentity {
                user,
                account: false,
                name_refused: None,
                name_invalid: false,
                login_required: true,
            };
        }
        Err(Rejection::NameTaken(name)) => (Some(name), false),
        Err(Rejection::InvalidName) => (None, true),
        Err(Rejection::InvalidToken) => (None, false),
    };
    match identities.decide(credential, None).await {
        Ok(identity) => guest(identity, refused, invalid),
        // Without a requested name the rule always finds one; this arm only keeps the page rendering.
        Err(_) => guest(Identity { name: random_guest_name(), account: false }, refused, invalid),
    }
}

/// The client address the page layer passes as text (`unknown` when the request had none: tests without a socket
/// address share one bucket).
fn client_ip(client: &str) -> IpAddr {
    client.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// Runs a CPU-heavy password operation off the async workers.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(work).await.ok()
}

impl ChatBackend for StoreBackend {
    fn register(
        &self,
        username: String,
        password: String,
        client: String,
    ) -> BoxFuture<'_, Result<String, AccountProblem>> {
        async move {
            let username = display_name(&username).map_err(|_| AccountProblem::InvalidName)?;
            let length = password.chars().count();
            if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&length) {
                return Err(AccountProblem::WeakPassword);
            }
            // Counted before the hash: the hash is what an unthrottled flood of registrations would exhaust.
            if !self.auth.attempts.try_register(client_ip(&client), std::time::Instant::now()) {
                self.meters.rate_limited(Limit::Registrations);
                return Err(AccountProblem::TooManyAttempts);
            }
            let hash = blocking(move || password::hash(&password))
                .await
                .and_then(Result::ok)
                .ok_or(AccountProblem::Unavailable)?;
            let account = Account { username: username.clone(), password_hash: hash };
            match self.store.create_account(account, now_ms()).await {
                Ok(true) => Ok(username),
                Ok(false) => Err(AccountProblem::NameTaken),
                Err(error) => {
                    tracing::error!(%error, "cannot create account");
                    Err(AccountProblem::Unavailable)
                }
            }
        }
        .boxed()
    }

    fn login(
        &self,
        username: String,
        password: String,
        client: String,
    ) -> BoxFuture<'_, Result<String, AccountProblem>> {
        async move {
            let (account_key, ip) = (username_key(&username), client_ip(&client));
            let now = std::time::Instant::now();
            if !self.auth.attempts.login_allowed(&account_key, ip, now) {
                self.meters.rate_limited(Limit::Logins);
                self.meters.login_failed();
                return Err(AccountProblem::TooManyAttempts);
            }
            let account = self.store.find_account(&username).await.map_err(|_| AccountProblem::Unavailable)?;
            let verified = match account {
                Some(account) => {
                    let stored = account.password_hash.clone();
                    let ok = blocking(move || password::verify(&password, &stored)).await.unwrap_or(false);
                    ok.then_some(account.username)
                }
                None => {
                    // Same cost as a real check: response time must not reveal which names exist.
                    let _ = blocking(move || password::verify_nothing(&password)).await;
                    None
                }
            };
            match verified {
                Some(user) => {
                    self.auth.attempts.login_succeeded(&account_key, ip);
                    Ok(user)
                }
                None => {
                    self.auth.attempts.login_failed(&account_key, ip, now);
                    self.meters.login_failed();
                    Err(AccountProblem::WrongCredentials)
                }
            }
        }
        .boxed()
    }

    fn room_identity(&self, session: Option<String>, requested: Option<String>) -> BoxFuture<'_, PageIdentity> {
        async move { page_identity(&self.identities, session.as_deref(), requested.as_deref()).await }.boxed()
    }

    fn session_value(&self, user: &str) -> String {
        self.auth.session_value(user)
    }

    fn session_user(&self, value: &str) -> Option<String> {
        self.auth.session_user(value)
    }

    fn socket_token(&self, user: &str) -> String {
        self.auth.socket_token(user)
    }

    fn recent_rooms(&self, limit: usize) -> BoxFuture<'_, Vec<RecentRoom>> {
        async move {
            match self.store.recent_rooms(limit).await {
                Ok(rooms) => {
                    rooms.into_iter().map(|r| RecentRoom { slug: r.room, last_message_at: r.last_message_at }).collect()
                }
                Err(error) => {
                    tracing::warn!(%error, "recent rooms unavailable");
                    Vec::new()
                }
            }
        }
        .boxed()
    }

    fn latest(&self, room: String) -> BoxFuture<'_, Vec<Message>> {
        async move {
            self.store.latest(&room, JOIN_HISTORY).await.unwrap_or_else(|error| {
                tracing::warn!(%error, room, "history unavailable for the page");
                Vec::new()
            })
        }
        .boxed()
    }

    fn random_room_slug(&self) -> String {
        crate::names::random_room_slug()
    }

    fn is_operator(&self, user: String) -> BoxFuture<'_, bool> {
        async move {
            // Asked at every page load, never cached, so `server admin --revoke` needs no new session. A store that
            // cannot answer shows the 403 page: the dashboard fails closed.
            self.store.is_operator(&user).await.unwrap_or_else(|error| {
                tracing::warn!(%error, "operator check failed for the dashboard");
                false
            })
        }
        .boxed()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::{AccountStore, MemoryStore};

    async fn identities(require_token: bool) -> (Identities, Arc<Auth>) {
        let store = Arc::new(MemoryStore::new());
        store.create_account(Account { username: "Ada".into(), password_hash: "x".into() }, 0).await.unwrap();
        let auth = Arc::new(Auth::new(&[3u8; 64]).requiring_tokens(require_token));
        (Identities::new(auth.clone(), store), auth)
    }

    #[tokio::test]
    async fn a_refused_guest_name_is_explained_and_replaced() {
        let (identities, _) = identities(false).await;
        let page = page_identity(&identities, None, Some("ada")).await;
        assert_eq!(page.name_refused.as_deref(), Some("ada"));
        assert!(!page.account && !page.login_required);
        assert_ne!(page.user.to_lowercase(), "ada");
        let invalid = page_identity(&identities, None, Some("\u{7}")).await;
        assert_eq!(invalid.name_refused, None, "an invalid name is just replaced");
        assert!(protocol::names::normalize_user_name(&invalid.user).is_ok());
    }

    #[tokio::test]
    async fn a_session_is_the_account_and_members_only_asks_guests_to_log_in() {
        let (identities, auth) = identities(true).await;
        let session = auth.session_value("Ada");
        let page = page_identity(&identities, Some(&session), Some("someone")).await;
        assert_eq!((page.user.as_str(), page.account, page.login_required), ("Ada", true, false));
        let guest = page_identity(&identities, None, Some("someone")).await;
        assert!(guest.login_required && !guest.account);
    }
}
