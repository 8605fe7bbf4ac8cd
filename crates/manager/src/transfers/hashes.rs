//! SHA-256 of the manager's files. A Shaman blob names its hash in its path, so checkout
//! files cost nothing; any other file is hashed once and remembered while its size and
//! modification time stay the same (outputs received from workers are remembered as they
//! are stored).
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use castanet_protocol::content::sha256_file;

/// Remembered hashes at most; the memory is cleared when it would hold more.
const REMEMBERED_AT_MOST: usize = 200_000;

#[derive(Default)]
pub(super) struct HashCache {
    known: Mutex<HashMap<PathBuf, (u64, SystemTime, String)>>,
}

impl HashCache {
    fn known(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, (u64, SystemTime, String)>> {
        // Only whole entries are inserted: a poisoned map is still consistent.
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The SHA-256 (hex) and size of the file at `canonical` (a resolved path).
    pub(super) async fn sha256_of(&self, canonical: &Path) -> std::io::Result<(String, u64)> {
        let metadata = tokio::fs::metadata(canonical).await?;
        if !metadata.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        let size = metadata.len();
        if let Some(sha) = shaman_blob_sha(canonical, size) {
            return Ok((sha, size));
        }
        let modified = metadata.modified()?;
        if let Some((known_size, known_modified, sha)) = self.known().get(canonical)
            && *known_size == size
            && *known_modified == modified
        {
            return Ok((sha.clone(), size));
        }
        let path = canonical.to_path_buf();
        let sha = tokio::task::spawn_blocking(move || sha256_file(&path))
            .await
            .map_err(std::io::Error::other)??;
        self.remember(canonical, size, modified, &sha);
        Ok((sha, size))
    }

    pub(super) fn remember(&self, canonical: &Path, size: u64, modified: SystemTime, sha: &str) {
        let mut known = self.known();
        if known.len() >= REMEMBERED_AT_MOST {
            known.clear();
        }
        known.insert(canonical.to_path_buf(), (size, modified, sha.to_owned()));
    }
}

/// The hash a Shaman blob's path names (`…/stored/<sha[0:2]>/<sha[2:]>/<size>.blob`), when
/// the path is one and its size matches.
fn shaman_blob_sha(path: &Path, size: u64) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let named_size: u64 = name.strip_suffix(".blob")?.parse().ok()?;
    let rest = path.parent()?;
    let tail = rest.file_name()?.to_str()?;
    let head = rest.parent()?.file_name()?.to_str()?;
    let sha = format!("{head}{tail}");
    let is_sha = sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit());
    (is_sha && named_size == size && rest.parent()?.parent()?.ends_with("stored"))
        .then(|| sha.to_ascii_lowercase())
}
