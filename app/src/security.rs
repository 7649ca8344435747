//! The Content Security Policy of every page: scripts only from this origin or carrying the response's nonce
//! (Leptos puts it on its hydration and resource scripts), WebAssembly allowed to compile (`'wasm-unsafe-eval'`),
//! no inline styles, no plugins, and no framing by anyone (`frame-ancestors 'none'`, which also stops clickjacking
//! of the login form).

/// The policy; `nonce` is the response's script nonce (pages rendered by Leptos have one, other responses not).
pub fn content_security_policy(nonce: Option<&str>) -> String {
    let scripts = match nonce {
        Some(nonce) => format!("script-src 'self' 'wasm-unsafe-eval' 'nonce-{nonce}'"),
        None => "script-src 'self' 'wasm-unsafe-eval'".to_owned(),
    };
    format!(
        "default-src 'self'; {scripts}; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nonce_is_the_only_way_for_an_inline_script() {
        let policy = content_security_policy(Some("abc"));
        assert!(policy.contains("script-src 'self' 'wasm-unsafe-eval' 'nonce-abc';"), "{policy}");
        assert!(!policy.contains("unsafe-inline"));
        assert!(policy.contains("frame-ancestors 'none'"));
        assert!(!content_security_policy(None).contains("nonce"));
    }
}
