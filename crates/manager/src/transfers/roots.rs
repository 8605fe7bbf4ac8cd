//! Which of the manager's files workers without shared storage may read, and where they may
//! write: under the shared storage directory (job files, Shaman checkouts) and under the
//! values of two-way path variables on the manager's platform (render outputs, projects),
//! judged after resolving symlinks. The Shaman file store itself is read through checkouts
//! but never written.
use std::path::{Path, PathBuf};

use super::TransferError;
use crate::config::ManagerConfig;
use crate::variables::Variables;

pub(super) struct FarmRoots {
    roots: Vec<PathBuf>,
    file_store: Option<PathBuf>,
}

impl FarmRoots {
    pub(super) fn from_config(config: &ManagerConfig) -> Self {
        let shared = config.shaman.shared_storage_path(&config.base_dir);
        let shared = std::path::absolute(&shared).unwrap_or(shared);
        let mut roots = vec![shared.clone()];
        let variables = Variables::from_config(config);
        for variable in variables.resolve_for(variables.manager_platform()) {
            let is_path = variable.is_twoway || variable.name == crate::variables::JOBS;
            if is_path && Path::new(&variable.value).is_absolute() {
                roots.push(PathBuf::from(&variable.value));
            }
        }
        roots.sort();
        roots.dedup();
        FarmRoots {
            roots,
            file_store: config.shaman.enabled.then(|| shared.join("file-store")),
        }
    }

    /// The roots as they are on disk now (a root made after the start counts).
    fn canonical_roots(&self) -> Vec<PathBuf> {
        self.roots
            .iter()
            .filter_map(|root| std::fs::canonicalize(root).ok())
            .collect()
    }

    fn outside(&self, path: &Path) -> TransferError {
        let roots: Vec<String> = self
            .roots
            .iter()
            .map(|root| root.display().to_string())
            .collect();
        TransferError::OutsideStorage {
            path: path.display().to_string(),
            roots: roots.join(", "),
        }
    }

    /// Checks that `path` (absolute, no `..`) names a place under a root, before anything is
    /// asked of the file system about it (whether it exists is nobody's business elsewhere).
    pub(super) fn names_inside(&self, path: &Path) -> Result<(), TransferError> {
        if self.roots.iter().any(|root| path.starts_with(root)) {
            Ok(())
        } else {
            Err(self.outside(path))
        }
    }

    /// `path` resolved, when it exists and lies under a root.
    pub(super) fn readable(&self, path: &Path) -> Result<PathBuf, TransferError> {
        let canonical = std::fs::canonicalize(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => TransferError::Missing(path.display().to_string()),
            _ => TransferError::io(path, e),
        })?;
        if self
            .canonical_roots()
            .iter()
            .any(|root| canonical.starts_with(root))
        {
            Ok(canonical)
        } else {
            Err(self.outside(path))
        }
    }

    /// Checks that a file may be stored at `path` (absolute, no `..`): it lies under a root,
    /// outside the Shaman file store, is not a directory, and no symlink on the way leads
    /// out of its root. Returns the path with its nearest existing ancestor resolved. A root
    /// that does not exist yet (nothing rendered to it so far) is made as the file is stored.
    pub(super) fn writable(&self, path: &Path) -> Result<PathBuf, TransferError> {
        let Some(root) = self.roots.iter().find(|root| path.starts_with(root)) else {
            return Err(self.outside(path));
        };
        let mut existing = path;
        let mut rest = Vec::new();
        let resolved = loop {
            match std::fs::canonicalize(existing) {
                Ok(resolved) => break resolved,
                Err(_) => {
                    let (Some(parent), Some(name)) = (existing.parent(), existing.file_name())
                    else {
                        return Err(self.outside(path));
                    };
                    rest.push(name.to_owned());
                    existing = parent;
                }
            }
        };
        // Where the root exists, what exists of the path must resolve inside it (a symlink
        // in the tree may not point elsewhere). Where it does not, nothing below it exists
        // and the directories made follow the path itself.
        if let Ok(canonical_root) = std::fs::canonicalize(root)
            && !resolved.starts_with(&canonical_root)
        {
            return Err(self.outside(path));
        }
        let file_store = self
            .file_store
            .as_ref()
            .and_then(|store| std::fs::canonicalize(store).ok());
        let full = rest
            .iter()
            .rev()
            .fold(resolved, |full, name| full.join(name));
        if file_store.is_some_and(|store| full.starts_with(store)) {
            return Err(TransferError::FileStore(path.display().to_string()));
        }
        if full.is_dir() {
            return Err(TransferError::BadPath(format!(
                "{} is a directory on the manager, not a file",
                path.display()
            )));
        }
        Ok(full)
    }
}
