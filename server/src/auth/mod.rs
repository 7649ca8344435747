//! Authentication: signed tokens (Phoenix.Token format, so a Phoenix backend sharing the secret can mint tokens for
//! this server and vice versa) and the secret they are signed with.
//!
//! * [`token`]: sign/verify (PBKDF2-SHA256 key derivation, HMAC-SHA256, Erlang term payload); [`etf`]: the Erlang
//!   External Term Format subset it needs.
//! * [`secret`]: the secret key base, configured or generated into the data dir on first run.
//! * `password`: argon2id hashes; [`attempts`]: failed-login limits per (account, address) and per address,
//!   registration limits per address.
//! * [`api_key`]: the HTTP API's keys, made random and kept only as their SHA-256.
//! * `identity`: who someone is, the one rule the socket upgrade and the room page share.

pub mod api_key;
pub mod attempts;
pub mod etf;
pub(crate) mod identity;
pub(crate) mod password;
pub mod secret;
pub mod token;

pub use attempts::AccountLimits;
pub use token::{TokenError, TokenSigner};

/// Salt of socket tokens (Phoenix's convention for `Phoenix.Token.sign(endpoint, "user socket", user)`).
pub const SOCKET_SALT: &str = "user socket";
/// Salt of session cookies: a different salt, so a socket token can never be replayed as a session.
pub(crate) const SESSION_SALT: &str = "session cookie";
/// Sessions last 30 days.
pub(crate) const SESSION_MAX_AGE_S: i64 = 30 * 24 * 3600;

use crate::clock::now_ms;

/// Signs and verifies the tokens this server accepts.
pub struct Auth {
    socket: TokenSigner,
    session: TokenSigner,
    /// Failed logins and registrations per address.
    pub(crate) attempts: attempts::AccountThrottle,
    /// Only accounts may connect: a socket without a valid token is refused.
    pub(crate) require_token: bool,
}

impl Auth {
    /// Token handling for a secret key base.
    pub fn new(secret_key_base: &[u8]) -> Self {
        Self {
            socket: TokenSigner::new(secret_key_base, SOCKET_SALT),
            session: TokenSigner::new(secret_key_base, SESSION_SALT),
            attempts: attempts::AccountThrottle::new(attempts::AccountLimits::default()),
            require_token: false,
        }
    }

    /// Expires socket tokens and sessions older than `seconds`, whatever max age they carry.
    pub fn with_token_age_cap(mut self, seconds: u64) -> Self {
        self.socket = self.socket.with_age_cap(seconds);
        self.session = self.session.with_age_cap(seconds);
        self
    }

    /// Replaces the login and registration limits.
    pub fn with_limits(mut self, limits: attempts::AccountLimits) -> Self {
        self.attempts = attempts::AccountThrottle::new(limits);
        self
    }

    /// Refuses sockets without a valid token (no guests).
    pub fn requiring_tokens(mut self, required: bool) -> Self {
        self.require_token = required;
        self
    }

    /// A session cookie value for `user`.
    pub fn session_value(&self, user: &str) -> String {
        self.session.sign(&etf::Term::Binary(user.as_bytes().to_vec()), now_ms(), SESSION_MAX_AGE_S)
    }

    /// The account a session cookie value names.
    pub fn session_user(&self, value: &str) -> Option<String> {
        self.session.verify_user(value, now_ms()).ok()
    }

    /// A socket token for `user`, valid for 24 hours (Phoenix.Token's default max age).
    pub fn socket_token(&self, user: &str) -> String {
        self.socket.sign_user(user, now_ms())
    }

    /// The user a socket token names, if it is genuine, not expired and not signed in the future.
    pub fn verify_socket_token(&self, token: &str) -> Result<String, TokenError> {
        self.socket.verify_user(token, now_ms())
    }
}
