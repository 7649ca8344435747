//! Who someone is: the one decision behind both the socket upgrade and the room page.
//!
//! The rule, in order: a verified account (a socket token, or the page's session cookie) is who you are; without one,
//! a members-only server refuses; otherwise the guest name you asked for, if it is a valid name and not an account's;
//! otherwise a random memorable name (never an account's either). Callers differ only in what they do with a refusal:
//! the socket answers HTTP 403, the page falls back to a random name and says why.

use std::sync::Arc;

use protocol::names::{NameError, normalize_user_name};
use thiserror::Error;

use super::Auth;
use crate::{names::random_guest_name, store::AccountStore};

/// Random names drawn before giving up on avoiding account names (each draw is two words out of thousands, so one
/// collision is already rare).
const RANDOM_NAME_DRAWS: usize = 3;

/// What vouches for an account, if anything.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Credential<'a> {
    /// A socket token (`token` param or `authToken` subprotocol). An invalid one is refused.
    Token(&'a str),
    /// A session cookie value. An invalid or expired one just means "logged out".
    Session(&'a str),
    /// Nothing.
    None,
}

/// The decided identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// The display name, which is also the presence key.
    pub(crate) name: String,
    /// True for an account, false for a guest.
    pub(crate) account: bool,
}

/// Why no identity can be given.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum Rejection {
    /// The token is tampered with, expired, signed in the future or by another secret.
    #[error("invalid token")]
    InvalidToken,
    /// Only accounts may connect and there is no valid credential.
    #[error("login required")]
    LoginRequired,
    /// The requested guest name breaks the display-name rules.
    #[error("invalid user name")]
    InvalidName,
    /// The requested guest name (trimmed) belongs to an account.
    #[error("that name belongs to an account")]
    NameTaken(String),
}

/// A requested display name in its canonical form: NFKC (fullwidth and other compatibility forms become the plain
/// letters they stand for), then the wire rules of [`normalize_user_name`]. Guests and new accounts both go through
/// this; whether the name looks like an account's is the account key's business (`crate::store`).
pub(crate) fn display_name(raw: &str) -> Result<String, NameError> {
    use unicode_normalization::UnicodeNormalization;
    normalize_user_name(&raw.nfkc().collect::<String>())
}

/// Decides identities against the token secret and the account store.
#[derive(Clone)]
pub(crate) struct Identities {
    auth: Arc<Auth>,
    accounts: Arc<dyn AccountStore>,
}

impl Identities {
    pub(crate) fn new(auth: Arc<Auth>, accounts: Arc<dyn AccountStore>) -> Self {
        Self { auth, accounts }
    }

    /// Applies the rule of the module docs.
    pub(crate) async fn decide(
        &self,
        credential: Credential<'_>,
        requested: Option<&str>,
    ) -> Result<Identity, Rejection> {
        let account = match credential {
            Credential::Token(token) => {
                Some(self.auth.verify_socket_token(token).map_err(|_| Rejection::InvalidToken)?)
            }
            Credential::Session(value) => self.auth.session_user(value),
            Credential::None => None,
        };
        if let Some(name) = account {
            return Ok(Identity { name, account: true });
        }
        if self.auth.require_token {
            return Err(Rejection::LoginRequired);
        }
        if let Some(raw) = requested {
            let name = display_name(raw).map_err(|_| Rejection::InvalidName)?;
            if self.is_account(&name).await {
                return Err(Rejection::NameTaken(name));
            }
            return Ok(Identity { name, account: false });
        }
        let mut name = random_guest_name();
        for _ in 1..RANDOM_NAME_DRAWS {
            if !self.is_account(&name).await {
                break;
            }
            name = random_guest_name();
        }
        Ok(Identity { name, account: false })
    }

    /// Whether `name` is an account's. A store that cannot answer counts as "no": a guest keeps chatting through a
    /// database hiccup, and the account's owner is still the only one who can log in under it.
    async fn is_account(&self, name: &str) -> bool {
        matches!(self.accounts.find_account(name).await, Ok(Some(_)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::{Account, MemoryStore};

    async fn identities(require_token: bool) -> (Identities, Arc<Auth>) {
        let store = Arc::new(MemoryStore::new());
        let account = Account { username: "Ada".into(), password_hash: "hash".into() };
        store.create_account(account, 0).await.unwrap();
        let auth = Arc::new(Auth::new(&[7u8; 64]).requiring_tokens(require_token));
        (Identities::new(auth.clone(), store), auth)
    }

    #[tokio::test]
    async fn an_account_credential_wins_over_the_requested_name() {
        let (identities, auth) = identities(false).await;
        let token = auth.socket_token("Ada");
        let decided = identities.decide(Credential::Token(&token), Some("mallory")).await.unwrap();
        assert_eq!(decided, Identity { name: "Ada".into(), account: true });
        let session = auth.session_value("Ada");
        let decided = identities.decide(Credential::Session(&session), Some("mallory")).await.unwrap();
        assert_eq!(decided, Identity { name: "Ada".into(), account: true });
    }

    #[tokio::test]
    async fn a_bad_token_is_refused_but_a_bad_session_is_only_logged_out() {
        let (identities, _) = identities(false).await;
        let refused = identities.decide(Credential::Token("forged"), Some("bob")).await;
        assert_eq!(refused, Err(Rejection::InvalidToken));
        let guest = identities.decide(Credential::Session("forged"), Some("bob")).await.unwrap();
        assert_eq!(guest, Identity { name: "bob".into(), account: false });
    }

    #[tokio::test]
    async fn guests_get_their_valid_name_unless_an_account_has_it() {
        let (identities, _) = identities(false).await;
        let guest = identities.decide(Credential::None, Some("  Zoë ")).await.unwrap();
        assert_eq!(guest, Identity { name: "Zoë".into(), account: false });
        assert_eq!(identities.decide(Credential::None, Some("a\u{7}b")).await, Err(Rejection::InvalidName));
        let taken = identities.decide(Credential::None, Some(" ADA")).await;
        assert_eq!(taken, Err(Rejection::NameTaken("ADA".into())), "accounts are case-insensitive");
    }

    #[tokio::test]
    async fn look_alikes_of_an_account_are_refused_to_guests() {
        let (identities, _) = identities(false).await;
        // Cyrillic А, fullwidth ａｄａ, and a mix.
        for impostor in ["\u{410}da", "\u{ff41}\u{ff44}\u{ff41}", "\u{410}D\u{430}"] {
            let decided = identities.decide(Credential::None, Some(impostor)).await;
            assert!(matches!(decided, Err(Rejection::NameTaken(_))), "{impostor}: {decided:?}");
        }
        let fullwidth = identities.decide(Credential::None, Some("\u{ff22}\u{ff4f}\u{ff42}")).await.unwrap();
        assert_eq!(fullwidth.name, "Bob", "NFKC: a fullwidth name is the plain one");
    }

    #[tokio::test]
    async fn no_name_means_a_random_valid_one() {
        let (identities, _) = identities(false).await;
        let guest = identities.decide(Credential::None, None).await.unwrap();
        assert!(!guest.account);
        assert!(normalize_user_name(&guest.name).is_ok(), "{}", guest.name);
    }

    #[tokio::test]
    async fn members_only_refuses_every_guest() {
        let (identities, auth) = identities(true).await;
        assert_eq!(identities.decide(Credential::None, Some("bob")).await, Err(Rejection::LoginRequired));
        assert_eq!(identities.decide(Credential::Session("forged"), None).await, Err(Rejection::LoginRequired));
        let token = auth.socket_token("Ada");
        assert!(identities.decide(Credential::Token(&token), None).await.unwrap().account);
    }
}
