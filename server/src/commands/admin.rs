//! `server admin --user NAME [--revoke]`: makes an account an operator (the `/dashboard` page and the `admin:stats`
//! channel) or takes that away, in the database `serve` uses (`--data-dir`'s SQLite file or `--database-url`),
//! whether the server runs or not: the page and the channel ask the database at every render and join.

use std::io::Write;

use crate::{
    clock::now_ms,
    config::AdminArgs,
    launch::ServerError,
    store::{AccountStore, Grant, MessageStore, OperatorStore, SqlStore},
};

/// Runs one `admin` command, printing what it did on stdout.
pub(crate) async fn run(args: AdminArgs) -> Result<(), ServerError> {
    let store = super::open_store(&args.store).await?;
    let result = act(&store, &args.user, args.revoke).await;
    store.close().await;
    let output = result?;
    std::io::stdout().lock().write_all(output.as_bytes())?;
    Ok(())
}

async fn act(store: &SqlStore, user: &str, revoke: bool) -> Result<String, ServerError> {
    // Said with the spelling the account was registered with, whatever was typed.
    let name = store.find_account(user).await?.map(|account| account.username);
    if revoke {
        return Ok(match store.revoke_operator(user).await? {
            true => format!("{} is no longer an operator\n", name.as_deref().unwrap_or(user)),
            false => format!("{} was not an operator\n", name.as_deref().unwrap_or(user)),
        });
    }
    match store.grant_operator(user, now_ms()).await? {
        Grant::Granted => Ok(format!("{} is an operator\n", name.as_deref().unwrap_or(user))),
        Grant::NoSuchAccount => Err(ServerError::Config("no account has this name (register it first, at /register)")),
    }
}
