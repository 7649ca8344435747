//! Long-poll session tokens: which node holds a session, and which session it is, signed so a client can neither
//! forge one nor reach another client's session.
//!
//! A token is a Phoenix.Token (salt `"longpoll session"`, two weeks, Phoenix's own max age) over `{node, id}`; clients
//! treat it as opaque. The node lets any node of a cluster relay a request to the session's owner.

use crate::{
    auth::{TokenSigner, etf::Term},
    clock::now_ms,
};

/// The salt of session tokens: a socket or page token never passes for one, nor one for them.
const SALT: &str = "longpoll session";
/// How long a token names its session, at most (sessions end much sooner when nobody polls).
const MAX_AGE_S: i64 = 14 * 24 * 3600;

/// Where a session lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionRef {
    /// The node that holds it.
    pub(crate) node: String,
    /// Its id on that node.
    pub(crate) id: u64,
}

/// Signs and reads session tokens.
#[derive(Clone)]
pub(crate) struct SessionTokens {
    signer: TokenSigner,
}

impl SessionTokens {
    pub(crate) fn new(secret_key_base: &[u8]) -> Self {
        Self { signer: TokenSigner::new(secret_key_base, SALT) }
    }

    /// A token for `session`.
    pub(crate) fn sign(&self, session: &SessionRef) -> String {
        let data = Term::Tuple(vec![Term::Binary(session.node.as_bytes().to_vec()), Term::Int(session.id.into())]);
        self.signer.sign(&data, now_ms(), MAX_AGE_S)
    }

    /// The session a token names, if this server signed it and it is not too old.
    pub(crate) fn read(&self, token: &str) -> Option<SessionRef> {
        let Ok(Term::Tuple(parts)) = self.signer.verify(token, now_ms(), None) else {
            return None;
        };
        match parts.as_slice() {
            [Term::Binary(node), Term::Int(id)] => {
                Some(SessionRef { node: String::from_utf8(node.clone()).ok()?, id: u64::try_from(*id).ok()? })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_their_session_and_nothing_else_passes() {
        let tokens = SessionTokens::new(&[3u8; 64]);
        let session = SessionRef { node: "abc123".into(), id: u64::MAX };
        let token = tokens.sign(&session);
        assert_eq!(tokens.read(&token), Some(session.clone()));
        assert_eq!(SessionTokens::new(&[4u8; 64]).read(&token), None, "another secret");
        let socket_token = TokenSigner::new(&[3u8; 64], crate::auth::SOCKET_SALT).sign_user("Ada", now_ms());
        assert_eq!(tokens.read(&socket_token), None, "a socket token is not a session token");
        assert_eq!(tokens.read("garbage"), None);
        assert_eq!(tokens.read(""), None);
    }
}
