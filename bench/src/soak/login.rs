//! Login failures: now and then a browser-like client opens `/login`, reads the form's action (the `login` server
//! function, `app/src/api.rs`), and posts a wrong password for the soak's account or a name nobody has. Without
//! JavaScript the server answers with a redirect back to the form naming the problem: `wrong-credentials`, or
//! `too-many-attempts` once the throttle (5 failures per 5 minutes per address and per account) is on.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use rand::{Rng, SeedableRng, rngs::StdRng};

use super::{context::Context, http, ledger::bump};

/// Registers the account the login failures aim at (the `register` server function); its name, or `None` when the
/// server would not register it.
pub async fn register(addr: SocketAddr, run: &str) -> Option<String> {
    let name = format!("soak-account-{run}");
    let page = http::get(addr, "/register").await.ok()?;
    let action = http::form_action(&page.body, "register")?.to_owned();
    let password = format!("correct horse {run}");
    let response = http::post_form(addr, &action, "/register", &[("username", name.as_str()), ("password", &password)])
        .await
        .ok()?;
    let location = response.header("location").unwrap_or_default();
    (matches!(response.status, 302 | 303) && !location.contains("problem=")).then_some(name)
}

/// Posts wrong passwords while the run chats.
pub async fn run(context: Arc<Context>, account: Option<String>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x6c6f_6769);
    let mut attempt = 0u64;
    while context.until_chatting().await {
        tokio::time::sleep(Duration::from_millis(rng.random_range(3000..9000))).await;
        if !context.chatting() {
            continue;
        }
        attempt += 1;
        let user = match &account {
            Some(account) if rng.random_bool(0.5) => account.clone(),
            _ => format!("nobody-{}-{attempt}", context.run),
        };
        let epoch = context.server.epoch();
        match try_login(context.addr, &user, &format!("wrong password {attempt}")).await {
            Ok(Answer::WrongCredentials) => bump(&context.ledger.counters.logins_wrong),
            Ok(Answer::TooManyAttempts) => bump(&context.ledger.counters.logins_throttled),
            Err(_) if context.server.interrupted_since(epoch) => bump(&context.ledger.counters.logins_interrupted),
            Err(got) => context.ledger.violation("a failed login got an undocumented answer", got),
        }
    }
}

/// The documented answers to a wrong password.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    WrongCredentials,
    TooManyAttempts,
}

async fn try_login(addr: SocketAddr, user: &str, password: &str) -> Result<Answer, String> {
    let page = http::get(addr, "/login").await.map_err(|e| format!("GET /login: {e}"))?;
    let action = http::form_action(&page.body, "login").ok_or_else(|| format!("no login form ({})", page.status))?;
    let response = http::post_form(addr, action, "/login", &[("username", user), ("password", password)])
        .await
        .map_err(|e| format!("POST {action}: {e}"))?;
    let location = response.header("location").unwrap_or_default();
    match (response.status, location) {
        (302 | 303, l) if l.starts_with("/login?problem=wrong-credentials") => Ok(Answer::WrongCredentials),
        (302 | 303, l) if l.starts_with("/login?problem=too-many-attempts") => Ok(Answer::TooManyAttempts),
        (status, location) => Err(format!("{status} to {location:?}")),
    }
}
