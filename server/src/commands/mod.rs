//! The subcommands that work on the server's database rather than serve it: `server admin` ([`admin`]) and
//! `server api-key` ([`api_key`]). They run against the database `serve` uses (`--data-dir`'s SQLite file or
//! `--database-url`), whether a server runs on it or not, and print their result on stdout. This module sits on top,
//! beside `main_with`, so nothing below it knows about command lines.

pub(crate) mod admin;
pub(crate) mod api_key;

use crate::{config::StoreArgs, launch::ServerError, store::SqlStore};

/// The database a command-line tool (`server admin`, `server api-key`) works on: `--database-url`, else
/// `--data-dir`'s SQLite file (the directory made if missing), as `serve` picks it.
async fn open_store(args: &StoreArgs) -> Result<SqlStore, ServerError> {
    Ok(match &args.database_url {
        Some(url) => SqlStore::open(url).await?,
        None => {
            std::fs::create_dir_all(&args.data_dir)?;
            SqlStore::open_sqlite_dir(&args.data_dir).await?
        }
    })
}
