//! The worker's identity on disk: `<data_dir>/credentials.toml`, written atomically and privately.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File name of the credentials inside the data directory.
pub const CREDENTIALS_FILE: &str = "credentials.toml";

const HEADER: &str = "# Castanet worker credentials, written by the worker after registering.\n\
# Keep this file private: the token lets anyone act as this worker.\n\
# Delete it to make the worker register again.\n\n";

/// What the manager issued when this worker registered.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub worker_id: String,
    pub token: String,
    /// The manager that issued them (informational; a different manager answers UNAUTHENTICATED).
    pub manager_url: String,
    /// The manager's TLS certificate fingerprint, pinned on first use (https only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager_fingerprint: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("worker_id", &self.worker_id)
            .field("token", &"<redacted>")
            .field("manager_url", &self.manager_url)
            .field("manager_fingerprint", &self.manager_fingerprint)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("not valid credentials: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("cannot encode credentials: {0}")]
    Encode(#[from] toml::ser::Error),
    #[error("the file has an empty worker_id or token")]
    Incomplete,
}

/// Where the credentials live for a data directory.
pub fn path_in(data_dir: &Path) -> PathBuf {
    data_dir.join(CREDENTIALS_FILE)
}

/// Reads the credentials; `Ok(None)` when the file does not exist.
pub fn load(data_dir: &Path) -> Result<Option<Credentials>, CredentialsError> {
    let text = match std::fs::read_to_string(path_in(data_dir)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let creds: Credentials = toml::from_str(&text)?;
    if creds.worker_id.trim().is_empty() || creds.token.trim().is_empty() {
        return Err(CredentialsError::Incomplete);
    }
    Ok(Some(creds))
}

/// Writes the credentials to a temporary file (mode 0600 on unix) and renames it into place.
pub fn save(data_dir: &Path, creds: &Credentials) -> Result<(), CredentialsError> {
    create_private_dir(data_dir)?;
    let text = format!("{HEADER}{}", toml::to_string(creds)?);
    let target = path_in(data_dir);
    let temp = data_dir.join(format!(".{CREDENTIALS_FILE}.{}.tmp", std::process::id()));
    let written =
        write_private(&temp, text.as_bytes()).and_then(|()| std::fs::rename(&temp, &target));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    Ok(written?)
}

/// Removes the credentials (the manager no longer knows this worker); a missing file is fine.
pub fn delete(data_dir: &Path) -> Result<(), CredentialsError> {
    match std::fs::remove_file(path_in(data_dir)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    crate::platform::make_private_dir_builder(&mut builder);
    builder.create(dir)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    crate::platform::make_private_file_options(&mut options);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Credentials {
        Credentials {
            worker_id: "0b7c5f5e-4a43-4c1e-9a51-000000000001".into(),
            token: "s3cr3t-token".into(),
            manager_url: "http://127.0.0.1:8080".into(),
            manager_fingerprint: None,
        }
    }

    #[test]
    fn round_trip() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let data_dir = dir.path().join("nested/worker");
        assert!(load(&data_dir)?.is_none());

        save(&data_dir, &sample())?;
        assert_eq!(load(&data_dir)?, Some(sample()));
        let text = std::fs::read_to_string(path_in(&data_dir))?;
        assert!(text.starts_with("# Castanet worker credentials"));

        let replaced = Credentials {
            token: "other".into(),
            ..sample()
        };
        save(&data_dir, &replaced)?;
        assert_eq!(load(&data_dir)?, Some(replaced));
        // Only the credentials file is left behind, no temporary file.
        assert_eq!(std::fs::read_dir(&data_dir)?.count(), 1);

        delete(&data_dir)?;
        assert!(load(&data_dir)?.is_none());
        delete(&data_dir)?;
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn file_is_private() -> Result<(), Box<dyn std::error::Error>> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        save(dir.path(), &sample())?;
        let mode = std::fs::metadata(path_in(dir.path()))?.permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        Ok(())
    }

    #[test]
    fn broken_files_are_errors() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::write(path_in(dir.path()), "worker_id = 3")?;
        assert!(matches!(load(dir.path()), Err(CredentialsError::Parse(_))));
        std::fs::write(
            path_in(dir.path()),
            "worker_id = \"\"\ntoken = \"t\"\nmanager_url = \"\"\n",
        )?;
        assert!(matches!(
            load(dir.path()),
            Err(CredentialsError::Incomplete)
        ));
        Ok(())
    }

    #[test]
    fn debug_output_hides_the_token() {
        assert!(!format!("{:?}", sample()).contains("s3cr3t"));
    }
}
