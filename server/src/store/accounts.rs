//! Registered accounts: the [`AccountStore`] contract, kept in the same database as messages.
//!
//! Names are unique by their [`username_key`]: case, compatibility forms and look-alike letters do not make a new
//! name (`Ada`, `ADA`, `ａｄａ` and a Cyrillic `Аda` are one account); the store keeps the spelling chosen at
//! registration. Only password hashes are stored (argon2id, see `crate::auth::password`).

use async_trait::async_trait;

use super::StoreError;

/// A stored account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The name as registered.
    pub username: String,
    /// The argon2id hash in PHC string format.
    pub password_hash: String,
}

/// The key names are unique by: the confusable skeleton (Unicode TS #39) of the lowercased NFKC form, lowercased
/// again (a skeleton may map to capitals). Two names with one key look alike on screen.
pub fn username_key(username: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let folded = username.nfkc().collect::<String>().to_lowercase();
    unicode_security::skeleton(&folded).collect::<String>().to_lowercase()
}

/// Where accounts live.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// Creates an account; `Ok(false)` when the name (case-insensitively) is taken.
    async fn create_account(&self, account: Account, created_at: i64) -> Result<bool, StoreError>;
    /// The account registered under `username` (any case).
    async fn find_account(&self, username: &str) -> Result<Option<Account>, StoreError>;
    /// The [`username_key`] of every account (loaded once by [`super::LocalCache`]).
    async fn account_keys(&self) -> Result<Vec<String>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::username_key;

    #[test]
    fn look_alike_names_share_a_key() {
        let alice = username_key("alice");
        for impostor in [
            "ALICE",
            "Alice",
            "\u{430}lice",
            "\u{ff41}\u{ff4c}\u{ff49}\u{ff43}\u{ff45}",
            "\u{410}L\u{406}\u{421}\u{415}",
        ] {
            assert_eq!(username_key(impostor), alice, "{impostor}");
        }
        assert_eq!(username_key("rnodern"), username_key("modern"), "rn looks like m");
        assert_ne!(username_key("bob"), alice);
        assert_ne!(username_key("alicia"), alice);
        assert_eq!(username_key("Zoë"), username_key("Zoe\u{308}"), "composed and decomposed");
    }
}
