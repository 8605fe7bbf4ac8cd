//! Checkouts: a directory under `jobs/` holding, for every file of a job, a relative
//! symlink into the file store, so the share can be mounted anywhere.
use std::path::{Component, Path, PathBuf};

use rand::Rng;

use super::paths::{checked_checkout_path, checked_relative};
use super::{FileKey, FileSpec, PathError, Shaman};

/// How many uniquified names are tried when the requested checkout exists.
const UNIQUE_ATTEMPTS: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error("{0}")]
    Path(#[from] PathError),
    #[error("unknown files requested (upload them first): {}", .0.join(", "))]
    MissingFiles(Vec<String>),
    #[error("checkout \"{0}\" already exists, and so do {UNIQUE_ATTEMPTS} variants of its name")]
    Exists(String),
    #[error("two files want the same path \"{0}\"")]
    Conflict(String),
    #[error("shared storage I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

/// The relative path from directory `from` to `to` (both absolute, no "..").
fn relative_to(to: &Path, from: &Path) -> PathBuf {
    let to: Vec<Component> = to.components().collect();
    let from: Vec<Component> = from.components().collect();
    let common = to.iter().zip(&from).take_while(|(a, b)| a == b).count();
    let mut relative = PathBuf::new();
    for _ in common..from.len() {
        relative.push("..");
    }
    for part in &to[common..] {
        relative.push(part);
    }
    relative
}

fn random_suffix() -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..4)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

impl Shaman {
    /// Creates a checkout of `files` at `requested` (relative to the checkout root), or at
    /// `requested-xxxx` when that exists. Returns the path used, relative to the root.
    /// On any failure nothing of the new checkout remains.
    pub async fn create_checkout(
        &self,
        requested: &str,
        files: &[FileSpec],
    ) -> Result<String, CheckoutError> {
        let relative = checked_checkout_path(requested)?;
        let mut links = Vec::with_capacity(files.len());
        let mut missing = Vec::new();
        let mut paths_seen = std::collections::HashMap::new();
        for spec in files {
            let key = FileKey::new(&spec.sha, spec.size)?;
            let path = checked_relative(&spec.path)?;
            if let Some(other) = paths_seen.insert(path.clone(), key.clone()) {
                if other != key {
                    return Err(CheckoutError::Conflict(spec.path.clone()));
                }
                continue;
            }
            let blob = self.blob_path(&key);
            if tokio::fs::metadata(&blob).await.is_err() {
                missing.push(spec.path.clone());
            }
            links.push((path, blob));
        }
        if !missing.is_empty() {
            return Err(CheckoutError::MissingFiles(missing));
        }

        let root = self.checkout_root();
        tokio::fs::create_dir_all(&root).await?;
        let _guard = self.inner.checkout_lock.lock().await;
        let mut chosen = None;
        for attempt in 0..=UNIQUE_ATTEMPTS {
            let candidate = if attempt == 0 {
                relative.clone()
            } else {
                let mut name = relative.clone().into_os_string();
                name.push(format!("-{}", random_suffix()));
                PathBuf::from(name)
            };
            let full = root.join(&candidate);
            if let Some(parent) = full.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            match tokio::fs::create_dir(&full).await {
                Ok(()) => {
                    chosen = Some((candidate, full));
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let Some((chosen, dir)) = chosen else {
            return Err(CheckoutError::Exists(requested.to_string()));
        };
        let chosen = chosen.to_string_lossy().replace('\\', "/");
        // Until every link is made a note names the checkout, so that a manager killed
        // half-way removes the half checkout at its next start (its client got no answer).
        // On failure exactly the directory this call created goes, never a pre-existing one.
        let note = match self.note_checkout_in_progress(&chosen).await {
            Ok(note) => note,
            Err(e) => {
                let _ = tokio::fs::remove_dir_all(&dir).await;
                return Err(e);
            }
        };
        if let Err(e) = self.link_all(&dir, &links).await {
            let _ = tokio::fs::remove_dir_all(&dir).await;
            let _ = tokio::fs::remove_file(&note).await;
            return Err(e);
        }
        if let Err(e) = tokio::fs::remove_file(&note).await {
            // Left in place, the note would remove a finished checkout at the next start.
            let _ = tokio::fs::remove_dir_all(&dir).await;
            return Err(e.into());
        }
        // So that after a power loss the note cannot come back and take the finished
        // checkout for a half one.
        sync_notes_dir(&self.checkouts_in_progress_dir()).await;
        Ok(chosen)
    }

    /// Writes a note naming the checkout being made (relative to the checkout root) and
    /// returns its path.
    async fn note_checkout_in_progress(&self, checkout: &str) -> Result<PathBuf, CheckoutError> {
        let notes = self.checkouts_in_progress_dir();
        tokio::fs::create_dir_all(&notes).await?;
        let note = notes.join(uuid::Uuid::new_v4().simple().to_string());
        tokio::fs::write(&note, checkout).await?;
        Ok(note)
    }

    /// Removes the checkouts a killed manager was making and the temporary files of the
    /// uploads it was receiving: nothing else would ever remove them. Only at start, with the
    /// file store locked (`lock_file_store`) and before this process makes or receives
    /// anything. What cannot be removed is logged and skipped (tried again at the next start):
    /// one bad entry must not keep the others, or the uploads, from being cleaned up.
    pub async fn remove_interrupted_work(&self) {
        let checkouts = self.remove_interrupted_checkouts().await;
        let uploads = self.remove_interrupted_uploads().await;
        if checkouts > 0 || uploads > 0 {
            tracing::info!(
                checkouts,
                uploads,
                "shaman: removed interrupted checkouts and uploads"
            );
        }
    }

    /// Removes every checkout a note names, and the notes. Returns how many checkouts went.
    async fn remove_interrupted_checkouts(&self) -> u64 {
        let notes_dir = self.checkouts_in_progress_dir();
        let mut notes = match tokio::fs::read_dir(&notes_dir).await {
            Ok(notes) => notes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return 0,
            Err(e) => {
                tracing::warn!(
                    "shaman: cannot read the checkout notes in {}: {e}",
                    notes_dir.display()
                );
                return 0;
            }
        };
        let mut removed = 0;
        loop {
            let note = match notes.next_entry().await {
                Ok(Some(note)) => note.path(),
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(
                        "shaman: cannot read the checkout notes in {}: {e}",
                        notes_dir.display()
                    );
                    break;
                }
            };
            match self.remove_checkout_of_note(&note).await {
                Ok(true) => removed += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(
                        "shaman: cannot remove the checkout the note {} names: {e}",
                        note.display()
                    );
                    continue;
                }
            }
            if let Err(e) = tokio::fs::remove_file(&note).await {
                tracing::warn!(
                    "shaman: cannot remove the checkout note {}: {e}",
                    note.display()
                );
            }
        }
        sync_notes_dir(&notes_dir).await;
        removed
    }

    /// Removes the half checkout `note` names; false when there was none (or the note is
    /// not a valid checkout path, which is logged).
    async fn remove_checkout_of_note(&self, note: &Path) -> std::io::Result<bool> {
        let named = tokio::fs::read_to_string(note).await?;
        // Only this module writes notes, but a note names what gets deleted: it is checked
        // like a client's checkout path.
        let relative = match checked_checkout_path(&named) {
            Ok(relative) => relative,
            Err(e) => {
                tracing::warn!("shaman: ignoring the checkout note {}: {e}", note.display());
                return Ok(false);
            }
        };
        match tokio::fs::remove_dir_all(self.checkout_root().join(relative)).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn link_all(
        &self,
        dir: &Path,
        links: &[(PathBuf, PathBuf)],
    ) -> Result<(), CheckoutError> {
        for (path, blob) in links {
            let link = dir.join(path);
            let parent = link.parent().unwrap_or(dir);
            tokio::fs::create_dir_all(parent).await?;
            // The parent must be a real directory inside this checkout, not reached through a link.
            let canonical = tokio::fs::canonicalize(parent).await?;
            let canonical_dir = tokio::fs::canonicalize(dir).await?;
            if !canonical.starts_with(&canonical_dir) {
                return Err(PathError::Escapes(path.to_string_lossy().into_owned()).into());
            }
            let target = relative_to(&tokio::fs::canonicalize(blob).await?, &canonical);
            tokio::fs::symlink(&target, &link).await?;
            super::files::touch(blob).await;
        }
        Ok(())
    }

    /// Removes a checkout (when its job is deleted).
    pub async fn erase_checkout(&self, checkout: &str) -> Result<(), CheckoutError> {
        let relative = checked_checkout_path(checkout)?;
        match tokio::fs::remove_dir_all(self.checkout_root().join(relative)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Makes the removal of notes durable (fsync of their folder); a failure is logged.
async fn sync_notes_dir(dir: &Path) {
    let dir = dir.to_path_buf();
    let synced = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || std::fs::File::open(&dir)?.sync_all()
    })
    .await
    .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
    match synced {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(
            "shaman: cannot sync the checkout notes in {}: {e}",
            dir.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_targets_climb_to_the_common_ancestor() {
        let blob = Path::new("/s/file-store/stored/ab/cd/5.blob");
        assert_eq!(
            relative_to(blob, Path::new("/s/jobs/shot")),
            PathBuf::from("../../file-store/stored/ab/cd/5.blob")
        );
        assert_eq!(
            relative_to(blob, Path::new("/s/jobs/shot/textures")),
            PathBuf::from("../../../file-store/stored/ab/cd/5.blob")
        );
    }
}
