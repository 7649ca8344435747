//! The HTTP surface around the socket: precompressed assets, compressed pages, and the account forms answering plain
//! (no-JavaScript) posts with redirects.

use crate::support::{
    TestServer,
    http::{Response, form_post, get, request},
};
use app::api::{GoToRoom, Login, Register};
use leptos::server_fn::ServerFn;

/// A site root holding a `pkg/` with one asset and its precompressed twins (marked so the test sees which was sent).
async fn server_with_assets() -> TestServer {
    let server = TestServer::start_configured(Default::default(), |config| {
        config.site_root = config.data_dir.join("site");
    })
    .await;
    let pkg = server.data_dir().join("site/pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join("chat.js"), "plain").unwrap();
    std::fs::write(pkg.join("chat.js.gz"), "as gzip").unwrap();
    std::fs::write(pkg.join("chat.js.br"), "as brotli").unwrap();
    server
}

#[tokio::test]
async fn assets_are_sent_precompressed_in_the_best_encoding_the_client_accepts() {
    let server = server_with_assets().await;
    for (accepts, encoding, body) in
        [("br, gzip", Some("br"), "as brotli"), ("gzip", Some("gzip"), "as gzip"), ("identity", None, "plain")]
    {
        let response = get(&server, "/pkg/chat.js", accepts).await;
        assert_eq!(response.status, 200, "{accepts}");
        assert_eq!(response.header("content-encoding"), encoding, "{accepts}");
        assert_eq!(String::from_utf8_lossy(&response.body), body, "{accepts}");
        assert_eq!(response.header("cache-control"), Some("no-cache"));
    }
}

#[tokio::test]
async fn pages_are_compressed_on_the_fly() {
    let server = TestServer::start().await;
    let response = get(&server, "/", "gzip").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-encoding"), Some("gzip"));
    let plain = get(&server, "/", "identity").await;
    assert_eq!(plain.header("content-encoding"), None);
    assert!(String::from_utf8_lossy(&plain.body).contains("Create a random room"));
}

#[tokio::test]
async fn a_failed_login_without_javascript_goes_back_to_the_form_with_the_reason() {
    let server = TestServer::start().await;
    let response =
        request(&server, &form_post(Login::PATH, "/login"), "username=Nobody&password=not+the+password").await;
    assert!(matches!(response.status, 302 | 303), "status {}", response.status);
    assert_eq!(response.header("location"), Some("/login?problem=wrong-credentials&name=Nobody"));

    let form = get(&server, "/login?problem=wrong-credentials&name=Nobody", "identity").await;
    let html = String::from_utf8_lossy(&form.body);
    assert!(html.contains("Unknown name or wrong password."), "{html}");
    assert!(html.contains(r#"value="Nobody""#), "{html}");
}

#[tokio::test]
async fn the_named_room_form_goes_to_the_slug() {
    let server = TestServer::start().await;
    let response = request(&server, &form_post(GoToRoom::PATH, "/"), "name=Zo%C3%AB&room=My+Room").await;
    assert_eq!(response.header("location"), Some("/my-room?user=Zo%C3%AB"));
}

/// The name a room page was rendered for (the text of its `.my-name` element).
fn my_name(html: &str) -> &str {
    let start = html.find(r#"class="my-name">"#).map(|i| i + r#"class="my-name">"#.len()).expect("a .my-name element");
    let end = html[start..].find('<').map_or(html.len(), |i| start + i);
    &html[start..end]
}

fn guest_cookie(response: &Response) -> Option<&str> {
    response
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
        .find_map(|(_, value)| value.strip_prefix("parley_guest="))
        .and_then(|rest| rest.split(';').next())
}

#[tokio::test]
async fn the_room_page_remembers_only_guest_names_the_server_accepted() {
    let server = TestServer::start().await;
    let page = get(&server, "/lobby?user=Zo%C3%AB", "identity").await;
    assert_eq!(page.status, 200);
    assert_eq!(my_name(&String::from_utf8_lossy(&page.body)), "Zoë");
    assert_eq!(guest_cookie(&page), Some("Zo%C3%AB"));

    // The next visit without ?user= keeps the remembered name.
    let again = request(&server, "GET /other-room HTTP/1.1\r\nCookie: parley_guest=Zo%C3%AB", "").await;
    assert_eq!(my_name(&String::from_utf8_lossy(&again.body)), "Zoë");

    // Someone registers that name; the remembered guest name is then refused and replaced, never connected with.
    let registered =
        request(&server, &form_post(Register::PATH, "/register"), "username=zo%C3%AB&password=long+enough+pw").await;
    assert!(matches!(registered.status, 302 | 303), "status {}", registered.status);
    let after = request(&server, "GET /other-room HTTP/1.1\r\nCookie: parley_guest=Zo%C3%AB", "").await;
    let html = String::from_utf8_lossy(&after.body);
    let fresh = my_name(&html);
    assert_ne!(fresh.to_lowercase(), "zoë", "{html}");
    assert!(protocol::names::normalize_user_name(fresh).is_ok(), "a fresh valid guest name: {fresh}");
    assert!(html.contains("is a registered name"), "{html}");
    assert_eq!(guest_cookie(&after), Some(app::url::encode(fresh).as_str()), "the fresh name is what is remembered");

    // An invalid remembered name is never used either.
    let forged = request(&server, "GET /lobby HTTP/1.1\r\nCookie: parley_guest=%07bell", "").await;
    let forged_name = my_name(&String::from_utf8_lossy(&forged.body)).to_owned();
    assert!(protocol::names::normalize_user_name(&forged_name).is_ok(), "{forged_name}");
}
