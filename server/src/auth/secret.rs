//! The secret key base that signs tokens: from configuration, or generated on first run and kept in the data dir.
//!
//! Like Phoenix's `secret_key_base`, it must be long and random; nodes that share it accept each other's tokens, and
//! so does a Phoenix backend configured with the same value.

use std::{io::Write, path::Path};

use base64::Engine;
use rand::RngCore;

/// File in the data directory holding a generated secret.
pub const SECRET_FILE: &str = "secret_key_base";
/// Shortest accepted secret (Phoenix requires at least 64 bytes for its endpoint secret).
pub(crate) const MIN_SECRET_BYTES: usize = 64;

/// Why no secret could be had.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The configured secret is too short to be safe.
    #[error("secret key base must be at least {MIN_SECRET_BYTES} bytes")]
    TooShort,
    /// Reading or writing the secret file failed.
    #[error("secret key base file: {0}")]
    Io(#[from] std::io::Error),
}

/// The secret given by flag (`--secret-key-base`) or by file (`--secret-key-base-file`, so it never shows in `ps` or
/// `/proc/<pid>/cmdline`); a file's trailing line break is not part of it. `None` when neither is given.
pub fn configured(value: Option<&str>, file: Option<&Path>) -> Result<Option<String>, SecretError> {
    match (value, file) {
        (Some(value), _) => Ok(Some(value.to_owned())),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)?;
            Ok(Some(text.trim_end_matches(['\n', '\r']).to_owned()))
        }
        (None, None) => Ok(None),
    }
}

/// The configured secret, else the one stored in `data_dir`, else a new one (stored with owner-only permissions).
pub fn load_or_create(data_dir: &Path, configured: Option<&str>) -> Result<Vec<u8>, SecretError> {
    if let Some(secret) = configured {
        return if secret.len() >= MIN_SECRET_BYTES {
            Ok(secret.as_bytes().to_vec())
        } else {
            Err(SecretError::TooShort)
        };
    }
    let path = data_dir.join(SECRET_FILE);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim();
        if existing.len() >= MIN_SECRET_BYTES {
            return Ok(existing.as_bytes().to_vec());
        }
    }
    let mut bytes = [0u8; 64];
    rand::rng().fill_bytes(&mut bytes);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    std::fs::create_dir_all(data_dir)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path)?;
    file.write_all(secret.as_bytes())?;
    file.sync_all()?;
    tracing::info!(path = %path.display(), "generated a new secret key base");
    Ok(secret.into_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_reused_and_configured_wins() {
        let dir = std::env::temp_dir().join(format!("secret-test-{}", std::process::id()));
        let first = load_or_create(&dir, None).unwrap();
        assert!(first.len() >= MIN_SECRET_BYTES);
        assert_eq!(load_or_create(&dir, None).unwrap(), first, "kept in the data dir");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(SECRET_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let configured = "x".repeat(64);
        assert_eq!(load_or_create(&dir, Some(&configured)).unwrap(), configured.as_bytes());
        assert!(matches!(load_or_create(&dir, Some("short")), Err(SecretError::TooShort)));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_secret_file_loses_its_line_break_only() {
        let path = std::env::temp_dir().join(format!("secret-file-test-{}", std::process::id()));
        let secret = format!(" {} ", "s".repeat(64));
        std::fs::write(&path, format!("{secret}\r\n")).unwrap();
        assert_eq!(configured(None, Some(&path)).unwrap(), Some(secret));
        assert_eq!(configured(Some("flag"), None).unwrap().as_deref(), Some("flag"));
        assert_eq!(configured(None, None).unwrap(), None);
        let _ = std::fs::remove_file(&path);
        assert!(matches!(configured(None, Some(&path)), Err(SecretError::Io(_))), "a missing file is an error");
    }
}
