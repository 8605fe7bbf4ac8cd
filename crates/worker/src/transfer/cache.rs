//! The worker's content-addressed input cache: one file per SHA-256 under
//! `<cache>/blobs/<sha[0:2]>/<sha>`, downloads in progress under `<cache>/partial/`. Bounded
//! by size: the least recently used blobs (by modification time, refreshed on every use)
//! are removed to make room, never one the running tasks need.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

pub struct Cache {
    dir: PathBuf,
    limit_bytes: u64,
    /// One download per blob at a time (two slots may want the same file).
    fetching: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Blobs the running tasks use, kept from eviction.
    in_use: Mutex<HashMap<String, usize>>,
}

impl Cache {
    pub fn new(dir: PathBuf, limit_bytes: u64) -> Self {
        Cache {
            dir,
            limit_bytes,
            fetching: Mutex::new(HashMap::new()),
            in_use: Mutex::new(HashMap::new()),
        }
    }

    pub fn limit_bytes(&self) -> u64 {
        self.limit_bytes
    }

    /// Where blob `sha` lives; `sha` is checked by [`is_sha256`] where it comes in.
    pub fn blob_path(&self, sha: &str) -> PathBuf {
        self.dir.join("blobs").join(&sha[..2]).join(sha)
    }

    pub fn partial_path(&self, sha: &str) -> PathBuf {
        self.dir.join("partial").join(format!("{sha}.part"))
    }

    /// Whether the blob is there with this size; a hit refreshes its place in the LRU order.
    pub fn holds(&self, sha: &str, size: u64) -> bool {
        let path = self.blob_path(sha);
        match std::fs::metadata(&path) {
            Ok(metadata) if metadata.is_file() && metadata.len() == size => {
                touch(&path);
                true
            }
            _ => false,
        }
    }

    /// Serialises the downloads of one blob.
    pub fn fetch_lock(&self, sha: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut fetching = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
        if fetching.len() > 10_000 {
            fetching.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        fetching.entry(sha.to_owned()).or_default().clone()
    }

    /// Moves a verified download into the cache.
    pub fn admit(&self, partial: &Path, sha: &str) -> std::io::Result<PathBuf> {
        let blob = self.blob_path(sha);
        if let Some(parent) = blob.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::rename(partial, &blob)?;
        // Read-only: a program writing through a mirror link must not change the cache.
        let mut permissions = std::fs::metadata(&blob)?.permissions();
        permissions.set_readonly(true);
        std::fs::set_permissions(&blob, permissions)?;
        Ok(blob)
    }

    /// Marks blobs as needed by a running task until [`release`](Self::release).
    pub fn pin(&self, shas: &[String]) {
        let mut in_use = self.in_use.lock().unwrap_or_else(|p| p.into_inner());
        for sha in shas {
            *in_use.entry(sha.clone()).or_default() += 1;
        }
    }

    pub fn release(&self, shas: &[String]) {
        let mut in_use = self.in_use.lock().unwrap_or_else(|p| p.into_inner());
        for sha in shas {
            if let Some(count) = in_use.get_mut(sha) {
                *count -= 1;
                if *count == 0 {
                    in_use.remove(sha);
                }
            }
        }
    }

    /// Every blob with its size and last use (blocking: walks the cache).
    fn blobs(&self) -> Vec<(PathBuf, String, u64, SystemTime)> {
        let mut found = Vec::new();
        let Ok(prefixes) = std::fs::read_dir(self.dir.join("blobs")) else {
            return found;
        };
        for prefix in prefixes.flatten() {
            let Ok(entries) = std::fs::read_dir(prefix.path()) else {
                continue;
            };
            for entry in entries.flatten() {
                let Ok(metadata) = entry.metadata() else {
                    continue;
                };
                let used = metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                let sha = entry.file_name().to_string_lossy().into_owned();
                found.push((entry.path(), sha, metadata.len(), used));
            }
        }
        found
    }

    /// Bytes the cache holds (blocking).
    pub fn size(&self) -> u64 {
        self.blobs().iter().map(|(_, _, size, _)| size).sum()
    }

    /// Removes least recently used blobs not in use until `incoming` more bytes fit under the
    /// limit (blocking). Returns the bytes removed; what is in use is never removed, so a
    /// task needing more than the limit still runs (the cache is over its limit meanwhile).
    pub fn make_room(&self, incoming: u64) -> u64 {
        let mut blobs = self.blobs();
        let mut total: u64 = blobs.iter().map(|(_, _, size, _)| size).sum();
        if total + incoming <= self.limit_bytes {
            return 0;
        }
        blobs.sort_by_key(|(_, _, _, used)| *used);
        let mut removed = 0;
        for (path, sha, size, _) in blobs {
            if total + incoming <= self.limit_bytes {
                break;
            }
            // Asked again under the lock for each file: another slot may have just taken it.
            let in_use = self.in_use.lock().unwrap_or_else(|p| p.into_inner());
            if in_use.contains_key(&sha) {
                continue;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= size;
                removed += size;
            }
        }
        removed
    }
}

/// Marks a blob as just used (its modification time orders the evictions).
fn touch(path: &Path) {
    if let Ok(file) = std::fs::File::open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

/// Whether `text` is a SHA-256 in lower- or upper-case hex (what the manager lists must be,
/// before it names a file here).
pub fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}
