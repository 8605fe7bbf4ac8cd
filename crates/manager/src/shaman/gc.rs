//! Garbage collection: stored files older than a maximum age that no checkout links to
//! are deleted. Requirements and checkouts touch the files they use, so a file in use
//! is never old.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{Shaman, ShamanError};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    pub deleted_files: u64,
    pub deleted_bytes: u64,
    pub kept_in_use: u64,
}

fn walk(dir: &Path, visit: &mut dyn FnMut(&Path, &std::fs::Metadata)) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path)?;
        if meta.is_dir() {
            walk(&path, visit)?;
        } else {
            visit(&path, &meta);
        }
    }
    Ok(())
}

fn collect(stored: &Path, checkouts: &Path, max_age: Duration) -> std::io::Result<GcReport> {
    let cutoff = SystemTime::now()
        .checked_sub(max_age)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut old: HashMap<PathBuf, SystemTime> = HashMap::new();
    walk(stored, &mut |path, meta| {
        if let Ok(modified) = meta.modified()
            && modified < cutoff
            && let Ok(canonical) = std::fs::canonicalize(path)
        {
            old.insert(canonical, modified);
        }
    })?;
    let mut report = GcReport::default();
    walk(checkouts, &mut |path, meta| {
        if !meta.file_type().is_symlink() {
            return;
        }
        if let Ok(target) = std::fs::canonicalize(path)
            && old.remove(&target).is_some()
        {
            report.kept_in_use += 1;
        }
    })?;
    for (path, modified) in old {
        // Skip files touched since the scan: a checkout or requirements call wants them.
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.modified().ok() != Some(modified) {
            continue;
        }
        if std::fs::remove_file(&path).is_ok() {
            report.deleted_files += 1;
            report.deleted_bytes += meta.len();
        }
    }
    Ok(report)
}

impl Shaman {
    /// Deletes stored files older than `max_age` that no checkout links to.
    pub async fn collect_garbage(&self, max_age: Duration) -> Result<GcReport, ShamanError> {
        let stored = self.stored_dir();
        let checkouts = self.checkout_root();
        let report = tokio::task::spawn_blocking(move || collect(&stored, &checkouts, max_age))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))??;
        if report.deleted_files > 0 {
            tracing::info!(
                files = report.deleted_files,
                bytes = report.deleted_bytes,
                "shaman: removed unused uploaded files"
            );
        }
        Ok(report)
    }

    /// Collects garbage every `period` until `shutdown`.
    pub async fn run_garbage_collector(
        self,
        period: Duration,
        max_age: Duration,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(period) => {}
            }
            if let Err(e) = self.collect_garbage(max_age).await {
                tracing::warn!("shaman garbage collection failed: {e}");
            }
        }
    }
}
