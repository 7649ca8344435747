//! The HTTP API for backends (docs/protocol.md §12): every endpoint's answer, every refusal and its status, keys
//! created and revoked through the store and the `server api-key` command, and a member on a socket receiving what a
//! backend posted.

use std::time::Duration;

use serde_json::{Value, json};
use server::{
    auth::api_key,
    store::{ApiKeyStore, SqlStore},
};

use crate::support::{
    Client, TestServer, WAIT,
    http::{Response, request},
};

/// A new key named `name` in the server's database, made as `server api-key create` makes one.
async fn create_key(server: &TestServer, name: &str) -> String {
    let store = SqlStore::open_sqlite_dir(server.data_dir()).await.unwrap();
    let key = api_key::generate();
    assert!(store.create_api_key(name, &api_key::key_hash(&key), 1).await.unwrap());
    key
}

async fn revoke_key(server: &TestServer, name: &str) {
    let store = SqlStore::open_sqlite_dir(server.data_dir()).await.unwrap();
    assert!(store.revoke_api_key(name, 2).await.unwrap());
}

/// `METHOD path` with `key` as a Bearer key (none when empty) and a JSON body (none when empty).
async fn call(server: &TestServer, method_path: &str, key: &str, body: &str) -> Response {
    let mut head = format!("{method_path} HTTP/1.1");
    if !key.is_empty() {
        head.push_str(&format!("\r\nAuthorization: Bearer {key}"));
    }
    if !body.is_empty() {
        head.push_str("\r\nContent-Type: application/json");
    }
    request(server, &head, body).await
}

fn json_of(response: &Response) -> Value {
    assert_eq!(response.header("content-type"), Some("application/json"), "status {}", response.status);
    serde_json::from_slice(&response.body).unwrap()
}

/// Asserts a refusal: its status and `{"error": text}`.
fn assert_refused(response: &Response, status: u16, error: &str) {
    assert_eq!((response.status, json_of(response)), (status, json!({"error": error})));
}

async fn post(server: &TestServer, key: &str, room: &str, body: Value) -> Response {
    call(server, &format!("POST /api/rooms/{room}/messages"), key, &body.to_string()).await
}

#[tokio::test]
async fn a_posted_message_is_stored_answered_201_and_broadcast_to_members() {
    let server = TestServer::start().await;
    let key = create_key(&server, "billing").await;
    let mut member = Client::connect(&server, "user=ada").await;
    let (join_ref, _) = member.join("room:lobby", json!({})).await;
    let posted = post(&server, &key, "lobby", json!({"user": "Billing bot", "body": "  invoice paid  "})).await;
    assert_eq!(posted.status, 201);
    let posted = json_of(&posted);
    let timestamp = posted["timestamp"].as_i64().unwrap();
    assert_eq!(
        posted,
        json!({"room": "lobby", "id": 1, "user": "Billing bot", "body": "invoice paid", "timestamp": timestamp,
               "duplicate": false})
    );
    let broadcast = member.assert_broadcast("room:lobby", "message:new").await;
    assert_eq!(broadcast, json!({"id": 1, "user": "Billing bot", "body": "invoice paid", "timestamp": timestamp}));
    // The same path as `message:new`: the next socket message gets the next id.
    let msg_ref = member.push(Some(&join_ref), "room:lobby", "message:new", json!({"body": "thanks"})).await;
    assert_eq!(member.assert_reply(&msg_ref, "ok").await, json!({"id": 2}));
    let history = json_of(&call(&server, "GET /api/rooms/lobby/messages", &key, "").await);
    assert_eq!(history["messages"][0], broadcast);
}

#[tokio::test]
async fn a_repeated_client_id_answers_the_stored_message_without_a_second_broadcast() {
    let server = TestServer::start().await;
    let key = create_key(&server, "billing").await;
    let mut member = Client::connect(&server, "user=ada").await;
    let (join_ref, _) = member.join("room:orders", json!({})).await;
    let message = json!({"user": "bot", "body": "order 42 shipped", "client_id": "order-42"});
    let first = post(&server, &key, "orders", message.clone()).await;
    assert_eq!((first.status, json_of(&first)["id"].clone()), (201, json!(1)));
    let again = post(&server, &key, "orders", json!({"user": "bot", "body": "changed", "client_id": "order-42"})).await;
    assert_eq!(again.status, 200);
    let again = json_of(&again);
    assert_eq!(
        (again["id"].clone(), again["body"].clone(), again["duplicate"].clone()),
        (json!(1), json!("order 42 shipped"), json!(true))
    );
    assert_eq!(member.assert_broadcast("room:orders", "message:new").await["id"], json!(1));
    member.refute_event("room:orders", "message:new", Duration::from_millis(300)).await;
    // A socket retry with the same client_id in the room is the same message too: one idempotency for both paths.
    let msg_ref =
        member.push(Some(&join_ref), "room:orders", "message:new", json!({"body": "x", "client_id": "order-42"})).await;
    assert_eq!(member.assert_reply(&msg_ref, "ok").await, json!({"id": 1}));
    let history = json_of(&call(&server, "GET /api/rooms/orders/messages", &key, "").await);
    assert_eq!(history["messages"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn history_pages_back_from_the_newest_within_the_page_cap() {
    let server = TestServer::start_configured(Default::default(), |config| config.guard.max_history_page = 4).await;
    let key = create_key(&server, "reader").await;
    for n in 1..=5 {
        assert_eq!(post(&server, &key, "log", json!({"user": "bot", "body": format!("m{n}")})).await.status, 201);
    }
    let ids = |response: Response| -> Vec<u64> {
        json_of(&response)["messages"].as_array().unwrap().iter().map(|m| m["id"].as_u64().unwrap()).collect()
    };
    assert_eq!(ids(call(&server, "GET /api/rooms/log/messages", &key, "").await), [2, 3, 4, 5], "50, capped");
    assert_eq!(ids(call(&server, "GET /api/rooms/log/messages?limit=1000", &key, "").await), [2, 3, 4, 5]);
    assert_eq!(ids(call(&server, "GET /api/rooms/log/messages?limit=2", &key, "").await), [4, 5]);
    assert_eq!(ids(call(&server, "GET /api/rooms/log/messages?before_id=4&limit=2", &key, "").await), [2, 3]);
    assert_eq!(ids(call(&server, "GET /api/rooms/log/messages?before_id=2", &key, "").await), [1]);
    assert_eq!(ids(call(&server, "GET /api/rooms/empty/messages", &key, "").await), Vec::<u64>::new());
    let bad = call(&server, "GET /api/rooms/log/messages?before_id=x", &key, "").await;
    assert_refused(&bad, 400, "invalid query");
}

#[tokio::test]
async fn presence_lists_every_member_with_their_metas() {
    let server = TestServer::start().await;
    let key = create_key(&server, "reader").await;
    assert_eq!(json_of(&call(&server, "GET /api/rooms/hall/presence", &key, "").await), json!({}));
    let mut tabs = Vec::new();
    for _ in 0..2 {
        let mut tab = Client::connect(&server, "user=ada").await;
        tab.join("room:hall", json!({})).await;
        tabs.push(tab);
    }
    let mut watcher = Client::connect(&server, "user=bob").await;
    watcher.join("room:hall", json!({"watch": true})).await;
    let presence = json_of(&call(&server, "GET /api/rooms/hall/presence", &key, "").await);
    assert_eq!(presence.as_object().unwrap().keys().collect::<Vec<_>>(), ["ada"], "watchers are in nobody's presence");
    let metas = presence["ada"]["metas"].as_array().unwrap();
    assert_eq!(metas.len(), 2, "one meta per connection");
    assert!(metas.iter().all(|m| m["typing"] == json!(false) && m["phx_ref"].is_string() && m["online_at"].is_i64()));
    drop(tabs);
    tokio::time::timeout(WAIT, async {
        while json_of(&call(&server, "GET /api/rooms/hall/presence", &key, "").await) != json!({}) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("members leave when their sockets close");
}

#[tokio::test]
async fn rooms_are_listed_most_recently_active_first() {
    let server = TestServer::start().await;
    let key = create_key(&server, "reader").await;
    assert_eq!(json_of(&call(&server, "GET /api/rooms", &key, "").await), json!({"rooms": []}));
    for room in ["older", "newer"] {
        post(&server, &key, room, json!({"user": "bot", "body": "hi"})).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rooms = json_of(&call(&server, "GET /api/rooms", &key, "").await)["rooms"].clone();
    let names: Vec<&str> = rooms.as_array().unwrap().iter().map(|r| r["room"].as_str().unwrap()).collect();
    assert_eq!(names, ["newer", "older"]);
    assert!(rooms[0]["last_message_at"].as_i64().unwrap() > 1_700_000_000_000);
    let one = json_of(&call(&server, "GET /api/rooms?limit=1", &key, "").await);
    assert_eq!(one["rooms"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn every_endpoint_needs_a_live_key() {
    let server = TestServer::start().await;
    let key = create_key(&server, "soon-revoked").await;
    let endpoints = [
        ("POST /api/rooms/lobby/messages", r#"{"user": "bot", "body": "hi"}"#),
        ("GET /api/rooms/lobby/messages", ""),
        ("GET /api/rooms/lobby/presence", ""),
        ("GET /api/rooms", ""),
    ];
    for (endpoint, body) in endpoints {
        let missing = call(&server, endpoint, "", body).await;
        assert_refused(&missing, 401, "unauthorized");
        assert_eq!(missing.header("www-authenticate"), Some("Bearer realm=\"parley\""), "{endpoint}");
        let wrong = call(&server, endpoint, "pk_not-a-key", body).await;
        assert_refused(&wrong, 401, "unauthorized");
        assert_eq!(wrong.header("www-authenticate"), Some("Bearer realm=\"parley\", error=\"invalid_token\""));
        let basic = request(&server, &format!("{endpoint} HTTP/1.1\r\nAuthorization: Basic {key}"), "").await;
        assert_refused(&basic, 401, "unauthorized");
        assert!(call(&server, endpoint, &key, body).await.status < 300, "{endpoint} with the key");
    }
    revoke_key(&server, "soon-revoked").await;
    for (endpoint, body) in endpoints {
        assert_refused(&call(&server, endpoint, &key, body).await, 401, "unauthorized");
    }
}

#[tokio::test]
async fn refusals_are_json_with_their_status_and_the_protocol_reason() {
    let server =
        TestServer::start_configured(Default::default(), |config| config.guard.max_body_bytes = 8 * 1024).await;
    let key = create_key(&server, "backend").await;
    let hi = json!({"user": "bot", "body": "hi"});
    for room in ["UPPER", "a_b", "-x", "socket"] {
        assert_refused(&post(&server, &key, room, hi.clone()).await, 400, "invalid room");
        assert_refused(&call(&server, &format!("GET /api/rooms/{room}/presence"), &key, "").await, 400, "invalid room");
    }
    let refused = [
        (json!({"user": "bot", "body": " \n\u{200b} "}), "empty message"),
        (json!({"user": "bot", "body": "x".repeat(4001)}), "message too long"),
        (json!({"user": "", "body": "hi"}), "invalid user"),
        (json!({"user": "<script>", "body": "hi"}), "invalid user"),
        (json!({"user": "bot", "body": "hi", "client_id": ""}), "invalid payload"),
        (json!({"user": "bot"}), "invalid payload"),
        (json!({"user": "bot", "body": 7}), "invalid payload"),
    ];
    for (body, error) in refused {
        assert_refused(&post(&server, &key, "lobby", body).await, 422, error);
    }
    assert_refused(&call(&server, "POST /api/rooms/lobby/messages", &key, "{not json").await, 400, "invalid payload");
    let untyped =
        request(&server, &format!("POST /api/rooms/lobby/messages HTTP/1.1\r\nAuthorization: Bearer {key}"), "{}")
            .await;
    assert_refused(&untyped, 415, "invalid payload");
    let huge = json!({"user": "bot", "body": "x".repeat(10_000)}).to_string();
    assert_refused(&call(&server, "POST /api/rooms/lobby/messages", &key, &huge).await, 413, "body too large");
    assert_refused(&call(&server, "GET /api/nothing/here", &key, "").await, 404, "not found");
    assert_refused(&call(&server, "GET /api", &key, "").await, 404, "not found");
    let wrong_method = call(&server, "DELETE /api/rooms", &key, "").await;
    assert_refused(&wrong_method, 405, "method not allowed");
    assert!(wrong_method.header("allow").is_some_and(|allow| allow.contains("GET")));
    let stored = json_of(&call(&server, "GET /api/rooms/lobby/messages", &key, "").await);
    assert_eq!(stored, json!({"messages": []}), "nothing refused was stored");
}

#[tokio::test]
async fn each_key_posts_within_its_own_rate_limit() {
    let server =
        TestServer::start_configured(Default::default(), |config| config.guard.api_max_messages_per_10s = 2).await;
    let (busy, other) = (create_key(&server, "busy").await, create_key(&server, "other").await);
    let hi = json!({"user": "bot", "body": "hi"});
    for _ in 0..2 {
        assert_eq!(post(&server, &busy, "lobby", hi.clone()).await.status, 201);
    }
    let limited = post(&server, &busy, "lobby", hi.clone()).await;
    assert_refused(&limited, 429, "rate limited");
    let retry_after: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=10).contains(&retry_after), "{retry_after}");
    assert_eq!(post(&server, &other, "lobby", hi).await.status, 201, "another key has its own window");
    assert_eq!(
        json_of(&call(&server, "GET /api/rooms/lobby/messages", &busy, "").await)["messages"].as_array().unwrap().len(),
        3,
        "reads are not limited"
    );
}

#[tokio::test]
async fn the_openapi_description_is_generated_from_the_handlers() {
    let server = TestServer::start().await;
    let response = call(&server, "GET /api/openapi.json", "", "").await;
    assert_eq!(response.status, 200, "the description needs no key");
    let description = json_of(&response);
    assert!(description["openapi"].as_str().unwrap().starts_with("3."));
    let paths = &description["paths"];
    for (path, method) in [
        ("/api/rooms/{room}/messages", "post"),
        ("/api/rooms/{room}/messages", "get"),
        ("/api/rooms/{room}/presence", "get"),
        ("/api/rooms", "get"),
    ] {
        let operation = &paths[path][method];
        assert!(operation["responses"]["401"].is_object(), "{method} {path}");
        assert_eq!(operation["security"], json!([{"api_key": []}]), "{method} {path}");
    }
    let post = &paths["/api/rooms/{room}/messages"]["post"];
    assert_eq!(
        post["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/PostMessage"
    );
    let schemas = &description["components"]["schemas"];
    for schema in ["PostMessage", "PostedMessage", "MessagePage", "Message", "RoomList", "ApiError"] {
        assert!(schemas[schema].is_object(), "{schema}");
    }
    assert_eq!(schemas["PostMessage"]["required"], json!(["user", "body"]));
    let scheme = &description["components"]["securitySchemes"]["api_key"];
    assert_eq!((scheme["type"].as_str(), scheme["scheme"].as_str()), (Some("http"), Some("bearer")));
}

/// Runs `server api-key …` against `data_dir`: (exit success, stdout).
fn api_key_command(data_dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .arg("api-key")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    (output.status.success(), String::from_utf8(output.stdout).unwrap())
}

#[tokio::test]
async fn the_command_line_creates_lists_and_revokes_keys_of_a_running_server() {
    let server = TestServer::start().await;
    let dir = server.data_dir().to_owned();
    let (created, key) = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || api_key_command(&dir, &["create", "--name", "crm"])
    })
    .await
    .unwrap();
    assert!(created);
    let key = key.trim().to_owned();
    assert!(key.starts_with("pk_") && key.len() == 46, "{key}");
    let hi = json!({"user": "crm", "body": "hi"});
    assert_eq!(post(&server, &key, "lobby", hi.clone()).await.status, 201, "usable at once by the running server");
    let run = |args: &'static [&'static str]| {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || api_key_command(&dir, args))
    };
    assert!(!run(&["create", "--name", "crm"]).await.unwrap().0, "a live name is unique");
    let (listed, list) = run(&["list"]).await.unwrap();
    assert!(listed);
    let columns: Vec<&str> = list.trim_end().split('\t').collect();
    assert_eq!((columns[0], columns[2]), ("crm", "-"));
    assert!(columns[1].ends_with(" UTC"), "{list}");
    assert!(!list.contains(&key[3..]), "never the key");
    assert!(run(&["revoke", "--name", "crm"]).await.unwrap().0);
    assert_refused(&post(&server, &key, "lobby", hi).await, 401, "unauthorized");
    assert!(!run(&["revoke", "--name", "crm"]).await.unwrap().0, "nothing left to revoke");
    let (_, list) = run(&["list"]).await.unwrap();
    assert!(list.trim_end().split('\t').nth(2).unwrap().ends_with(" UTC"), "the revocation's date: {list}");
}
