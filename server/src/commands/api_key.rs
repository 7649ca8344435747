//! `server api-key create|revoke|list`: the operator's side of API keys, run against the database `serve` uses
//! (`--data-dir`'s SQLite file or `--database-url`), while the server runs or not: the server reads keys at every
//! request.

use std::io::Write;

use crate::{
    auth::api_key,
    clock::now_ms,
    config::{ApiKeyAction, ApiKeyArgs},
    launch::ServerError,
    store::{ApiKey, ApiKeyStore, MessageStore, SqlStore},
};

/// Runs one `api-key` command, printing its result on stdout.
pub(crate) async fn run(args: ApiKeyArgs) -> Result<(), ServerError> {
    let store = super::open_store(&args.store).await?;
    let result = act(&store, args.action).await;
    store.close().await;
    let output = result?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(output.as_bytes())?;
    Ok(())
}

async fn act(store: &SqlStore, action: ApiKeyAction) -> Result<String, ServerError> {
    match action {
        ApiKeyAction::Create { name } => {
            let key = api_key::generate();
            if !store.create_api_key(&name, &api_key::key_hash(&key), now_ms()).await? {
                return Err(ServerError::Config("a live API key already has this name (revoke it first)"));
            }
            // Only the key, so a script can take it whole: `KEY=$(server api-key create --name app)`.
            Ok(format!("{key}\n"))
        }
        ApiKeyAction::Revoke { name } => {
            if !store.revoke_api_key(&name, now_ms()).await? {
                return Err(ServerError::Config("no live API key has this name"));
            }
            Ok(format!("revoked {name}\n"))
        }
        ApiKeyAction::List => Ok(store.api_keys().await?.iter().map(line).collect()),
    }
}

/// `name<TAB>created<TAB>revoked` (dates in UTC; `-` for a live key): never the key, which is not stored.
fn line(key: &ApiKey) -> String {
    let revoked = key.revoked_at.map_or_else(|| "-".to_owned(), utc);
    format!("{}\t{}\t{revoked}\n", key.name, utc(key.created_at))
}

/// `YYYY-MM-DD HH:MM:SS UTC` of a timestamp in milliseconds since the epoch.
fn utc(timestamp: i64) -> String {
    const DAY_MS: i64 = 86_400_000;
    let seconds = timestamp.rem_euclid(DAY_MS) / 1000;
    let date = app::pages::room::reading::iso_date(timestamp.div_euclid(DAY_MS));
    format!("{date} {:02}:{:02}:{:02} UTC", seconds / 3600, seconds / 60 % 60, seconds % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_keys_show_names_and_utc_dates() {
        let live = ApiKey { name: "billing".into(), created_at: 1_764_512_096_000, revoked_at: None };
        assert_eq!(line(&live), "billing\t2025-11-30 14:14:56 UTC\t-\n");
        let revoked = ApiKey { revoked_at: Some(86_400_000), ..live };
        assert_eq!(line(&revoked), "billing\t2025-11-30 14:14:56 UTC\t1970-01-02 00:00:00 UTC\n");
    }
}
