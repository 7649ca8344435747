//! Signed tokens at connect time: the `token` param and the phoenix 1.8 `authToken` subprotocol; refusals for
//! tampered, expired, future-dated and foreign tokens; guests cannot take an account's name.

use serde_json::json;
use server::{
    auth::{
        Auth, SOCKET_SALT, TokenSigner,
        etf::Term,
        secret::{SECRET_FILE, load_or_create},
    },
    clock::now_ms,
    store::{Account, AccountStore, MessageStore, SqlStore},
};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};

use crate::support::{Client, TestServer, refused_status};

pub(crate) fn signer(server: &TestServer) -> (Auth, TokenSigner) {
    let secret = load_or_create(server.data_dir(), None).unwrap();
    assert!(server.data_dir().join(SECRET_FILE).exists(), "generated on first run");
    (Auth::new(&secret), TokenSigner::new(&secret, SOCKET_SALT))
}

#[tokio::test]
async fn a_valid_token_fixes_the_identity() {
    let server = TestServer::start().await;
    let (auth, _) = signer(&server);
    let token = auth.socket_token("Ada");
    let mut client = Client::connect(&server, &format!("user=someone-else&token={token}")).await;
    let (_, reply) = client.join("room:auth", json!({})).await;
    assert_eq!(reply["user"], json!("Ada"));
}

#[tokio::test]
async fn the_auth_token_subprotocol_is_accepted_and_phoenix_is_echoed() {
    use base64::Engine;
    let server = TestServer::start().await;
    let (auth, _) = signer(&server);
    let token = auth.socket_token("Grace");
    // phoenix.js: btoa(token) with the padding stripped.
    let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(token.as_bytes());
    let mut request = server.url("vsn=2.0.0").into_client_request().unwrap();
    let protocols = format!("phoenix, base64url.bearer.phx.{encoded}");
    request.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_str(&protocols).unwrap());
    let (ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers().get("sec-websocket-protocol").unwrap(), "phoenix");
    let mut client = Client::from_stream(ws);
    let (_, reply) = client.join("room:auth", json!({})).await;
    assert_eq!(reply["user"], json!("Grace"));
}

#[tokio::test]
async fn bad_tokens_are_refused_with_403() {
    let server = TestServer::start().await;
    let (auth, signer) = signer(&server);
    let good = auth.socket_token("Ada");
    let mut tampered = good.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let user = Term::Binary(b"Ada".to_vec());
    let expired = signer.sign(&user, now_ms() - 2 * 86_400_000, 86_400);
    let future = signer.sign(&user, now_ms() + 3_600_000, 86_400);
    let foreign = Auth::new(&[9u8; 64]).socket_token("Ada");
    for (what, token) in [
        ("tampered", tampered),
        ("expired", expired),
        ("future", future),
        ("foreign", foreign),
        ("garbage", "x.y.z".into()),
    ] {
        assert_eq!(refused_status(&server.url(&format!("vsn=2.0.0&token={token}"))).await, Some(403), "{what}");
    }
    assert_eq!(refused_status(&server.url(&format!("vsn=2.0.0&token={good}"))).await, None);
}

#[tokio::test]
async fn guests_cannot_take_an_account_name() {
    let mut server = TestServer::start().await;
    let store = SqlStore::open_sqlite_dir(server.data_dir()).await.unwrap();
    let account = Account { username: "Ada".into(), password_hash: "$argon2id$unused".into() };
    assert!(store.create_account(account, now_ms()).await.unwrap());
    // Written behind the running server's back: it learns the name when it starts (its account index loads then).
    server.restart().await;
    for name in ["Ada", "ada", "ADA"] {
        assert_eq!(refused_status(&server.url(&format!("vsn=2.0.0&user={name}"))).await, Some(403), "{name}");
    }
    assert_eq!(refused_status(&server.url("vsn=2.0.0&user=Adam")).await, None);
    let (auth, _) = signer(&server);
    let mut owner = Client::connect(&server, &format!("token={}", auth.socket_token("Ada"))).await;
    let (_, reply) = owner.join("room:auth", json!({})).await;
    assert_eq!(reply["user"], json!("Ada"), "the account itself connects with its token");
    store.close().await;
}

#[tokio::test]
async fn a_members_only_server_refuses_sockets_without_a_token() {
    let server = TestServer::start_configured(Default::default(), |config| config.require_accounts = true).await;
    assert_eq!(refused_status(&server.url("vsn=2.0.0&user=guest")).await, Some(403), "missing token");
    assert_eq!(refused_status(&server.url("vsn=2.0.0")).await, Some(403));
    let (auth, _) = signer(&server);
    let mut member = Client::connect(&server, &format!("token={}", auth.socket_token("Member"))).await;
    let (_, reply) = member.join("room:members", json!({})).await;
    assert_eq!(reply["user"], json!("Member"));
}
