//! Forms and pages: cross-site posts, security headers, look-alike names, registration floods, lockouts by
//! strangers, oversized bodies.

use app::api::{Login, Logout, Register};
use leptos::server_fn::ServerFn;
use server::socket::SocketSettings;

use crate::support::{
    TestServer,
    http::{Response, form_post, get, request},
    refused_status,
};

/// A form post with extra header lines (`Origin: …`, `X-Forwarded-For: …`).
async fn post(server: &TestServer, path: &str, extra: &[String], body: &str) -> Response {
    let mut head = form_post(path, "/");
    for line in extra {
        head.push_str("\r\n");
        head.push_str(line);
    }
    request(server, &head, body).await
}

fn origin(server: &TestServer) -> String {
    format!("Origin: http://{}", server.addr)
}

/// Row 4: a post from another site (its Origin, or the browser's `Sec-Fetch-Site`) is refused with 403 before
/// the server function runs; the same post from the site itself works.
#[tokio::test]
async fn cross_site_posts_are_refused() {
    let server = TestServer::start().await;
    let body = "username=Mallory&password=correct+horse+battery";
    let evil = ["Origin: https://evil.example".to_owned()];
    for path in [Register::PATH, Login::PATH, Logout::PATH] {
        let response = post(&server, path, &evil, body).await;
        assert_eq!(response.status, 403, "{path}");
        assert_eq!(String::from_utf8_lossy(&response.body), "cross-site request refused");
        let fetch_metadata = ["Sec-Fetch-Site: cross-site".to_owned()];
        assert_eq!(post(&server, path, &fetch_metadata, body).await.status, 403, "{path} without Origin");
    }
    let rebound = [format!("Origin: http://evil.example:{}", server.addr.port())];
    assert_eq!(post(&server, Login::PATH, &rebound, body).await.status, 403, "a rebound Host is no excuse");
    // Nothing was created by the refused registration: the same name registers now, from the site itself.
    let own = [origin(&server), "Sec-Fetch-Site: same-origin".to_owned()];
    let registered = post(&server, Register::PATH, &own, body).await;
    assert_eq!(registered.header("location"), Some("/"), "status {}", registered.status);
    assert!(registered.header("set-cookie").is_some_and(|c| c.starts_with("parley_session=")));
}

/// Row 5: every response carries the security headers; pages get a CSP whose nonce is on every inline script.
#[tokio::test]
async fn pages_carry_a_nonce_csp_and_cannot_be_framed() {
    let server = TestServer::start().await;
    let page = get(&server, "/login", "identity").await;
    let policy = page.header("content-security-policy").expect("a CSP").to_owned();
    assert!(policy.contains("frame-ancestors 'none'") && policy.contains("'wasm-unsafe-eval'"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    let nonce = policy.split("'nonce-").nth(1).and_then(|rest| rest.split('\'').next()).expect("a nonce");
    let html = String::from_utf8_lossy(&page.body);
    let scripts = html.matches("<script").count();
    assert!(scripts > 0, "{html}");
    assert_eq!(html.matches(&format!("nonce=\"{nonce}\"")).count(), html.matches("<script").count(), "{html}");
    let again = get(&server, "/login", "identity").await;
    assert_ne!(again.header("content-security-policy"), Some(policy.as_str()), "a fresh nonce per response");
    for response in
        [&page, &get(&server, "/healthz", "identity").await, &get(&server, "/no-such/page", "identity").await]
    {
        assert_eq!(response.header("x-frame-options"), Some("DENY"));
        assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(response.header("referrer-policy"), Some("same-origin"));
        assert!(response.header("content-security-policy").is_some());
    }
}

/// Row 6: a guest or a new account cannot take a look-alike of an account's name (Cyrillic letters, fullwidth
/// forms, mixed case); unrelated names are fine.
#[tokio::test]
async fn look_alike_names_cannot_impersonate_an_account() {
    let server = TestServer::start().await;
    let own = [origin(&server)];
    let registered = post(&server, Register::PATH, &own, "username=alice&password=correct+horse+battery").await;
    assert_eq!(registered.header("location"), Some("/"));
    for impostor in ["%D0%B0lice", "%EF%BD%81%EF%BD%8C%EF%BD%89%EF%BD%83%EF%BD%85", "%D0%90L%D0%86%D0%A1%D0%95"] {
        let url = server.url(&format!("vsn=2.0.0&user={impostor}"));
        assert_eq!(refused_status(&url).await, Some(403), "guest {impostor}");
        let body = format!("username={impostor}&password=another+long+password");
        let response = post(&server, Register::PATH, &own, &body).await;
        let location = response.header("location").unwrap_or_default();
        assert!(location.starts_with("/register?problem=name-taken"), "register {impostor}: {location}");
    }
    assert_eq!(refused_status(&server.url("vsn=2.0.0&user=alicia")).await, None);
}

/// Row 7: registrations per address are limited (each costs an argon2id hash).
#[tokio::test]
async fn registration_floods_are_limited_per_address() {
    let server = TestServer::start_configured(SocketSettings::default(), |config| {
        config.guard.max_registrations_per_ip_per_hour = 3;
        config.guard.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let from = |address: &str| vec![origin(&server), format!("X-Forwarded-For: {address}")];
    for n in 0..3 {
        let body = format!("username=squatter{n}&password=correct+horse+battery");
        let response = post(&server, Register::PATH, &from("203.0.113.7"), &body).await;
        assert_eq!(response.header("location"), Some("/"), "registration {n}");
    }
    let body = "username=squatter3&password=correct+horse+battery";
    let refused = post(&server, Register::PATH, &from("203.0.113.7"), body).await;
    assert_eq!(refused.header("location"), Some("/register?problem=too-many-attempts&name=squatter3"));
    let elsewhere = post(&server, Register::PATH, &from("198.51.100.2"), body).await;
    assert_eq!(elsewhere.header("location"), Some("/"), "another address registers the same name");
}

/// Row 8: a stranger guessing passwords locks out only their own address; the owner logs in from theirs.
#[tokio::test]
async fn a_stranger_cannot_lock_the_owner_out() {
    let server = TestServer::start_configured(SocketSettings::default(), |config| {
        config.guard.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let from = |address: &str| vec![origin(&server), format!("X-Forwarded-For: {address}")];
    let owner = "192.0.2.1";
    let body = "username=ada&password=correct+horse+battery";
    assert_eq!(post(&server, Register::PATH, &from(owner), body).await.header("location"), Some("/"));
    for _ in 0..5 {
        let wrong = post(&server, Login::PATH, &from("203.0.113.7"), "username=ada&password=guess+guess").await;
        assert_eq!(wrong.header("location"), Some("/login?problem=wrong-credentials&name=ada"));
    }
    let throttled = post(&server, Login::PATH, &from("203.0.113.7"), body).await;
    assert_eq!(throttled.header("location"), Some("/login?problem=too-many-attempts&name=ada"), "even when right");
    let owner_login = post(&server, Login::PATH, &from(owner), body).await;
    assert_eq!(owner_login.header("location"), Some("/"), "the owner is not locked out");
    assert!(owner_login.header("set-cookie").is_some_and(|c| c.starts_with("parley_session=")));
}

/// Row 12: a body over the limit is refused with 413 (not 500) before anything reads it; the server answers the
/// next request normally.
#[tokio::test]
async fn oversized_bodies_get_413() {
    let server = TestServer::start().await;
    let huge = format!("username=a&password={}", "x".repeat(3 * 1024 * 1024));
    let response = post(&server, Login::PATH, &[origin(&server)], &huge).await;
    assert_eq!(response.status, 413);
    assert_eq!(get(&server, "/healthz", "identity").await.status, 200);
}
