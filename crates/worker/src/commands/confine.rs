//! Where file commands may act: only under the worker's storage roots. A path is judged after
//! resolving symlinks and `..` (a link inside a root may point anywhere); a path that does not
//! exist yet is judged by its nearest existing ancestor plus the rest, which may not hold `..`.

use std::io;
use std::path::{Component, Path, PathBuf};

use super::{CommandContext, CommandError};

/// How a path may relate to a storage root.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Reach {
    /// Strictly inside a root: what is deleted, moved or copied (never a root itself).
    Inside,
    /// Inside a root or the root itself: a directory to create.
    InsideOrRoot,
    /// Strictly inside a root, judged without following a symlink that is the last part: a
    /// file to copy from. A job's file tree may be links (a Shaman checkout into its file
    /// store; the mirror of a worker without shared storage into its input cache).
    Source,
}

/// `path` (the parameter `key` of a command that would `verb` it) resolved, when it lies
/// under a storage root as `reach` asks; a refusal naming the path and the roots otherwise.
pub(super) async fn confined(
    ctx: &CommandContext,
    verb: &str,
    key: &str,
    path: &str,
    reach: Reach,
) -> Result<PathBuf, CommandError> {
    if ctx.storage_roots.is_empty() {
        return Err(CommandError::invalid(format!(
            "refusing to {verb} {path}: this worker has no storage_roots configured, so file \
             commands touch nothing"
        )));
    }
    if !Path::new(path).is_absolute() {
        return Err(CommandError::invalid(format!(
            "refusing to {verb} {path}: parameter {key:?} is not an absolute path"
        )));
    }
    let as_path = Path::new(path);
    let final_link = match (as_path.parent(), as_path.file_name()) {
        (Some(parent), Some(name)) if reach == Reach::Source => tokio::fs::symlink_metadata(path)
            .await
            .is_ok_and(|m| m.file_type().is_symlink())
            .then_some((parent, name)),
        _ => None,
    };
    let resolved = match final_link {
        Some((parent, name)) => resolve(parent).await.map(|parent| parent.join(name)),
        None => resolve(as_path).await,
    }
    .map_err(|e| {
        CommandError::invalid(format!("refusing to {verb} {path}: cannot resolve it: {e}"))
    })?;
    if final_link.is_some() {
        // What the link points at must be a storage root's or a link root's too.
        let target = tokio::fs::canonicalize(path).await.map_err(|e| {
            CommandError::invalid(format!("refusing to {verb} {path}: cannot resolve it: {e}"))
        })?;
        let mut inside = false;
        for root in ctx.storage_roots.iter().chain(ctx.link_roots.iter()) {
            let root = tokio::fs::canonicalize(root)
                .await
                .unwrap_or_else(|_| root.clone());
            inside |= target.starts_with(&root);
        }
        if !inside {
            return Err(CommandError::invalid(format!(
                "refusing to {verb} {path}: it links to {}, outside the storage roots",
                target.display()
            )));
        }
    }
    for root in ctx.storage_roots.iter() {
        let root = tokio::fs::canonicalize(root)
            .await
            .unwrap_or_else(|_| root.clone());
        let allowed = match reach {
            Reach::Inside | Reach::Source => resolved != root && resolved.starts_with(&root),
            Reach::InsideOrRoot => resolved.starts_with(&root),
        };
        if allowed {
            return Ok(resolved);
        }
    }
    let roots: Vec<String> = ctx
        .storage_roots
        .iter()
        .map(|r| r.display().to_string())
        .collect();
    Err(CommandError::invalid(format!(
        "refusing to {verb} {path}: it is not inside a storage root ({})",
        roots.join(", ")
    )))
}

/// The canonical form of `path`; for a path that does not exist, that of its nearest existing
/// ancestor joined with the missing rest (which must be plain names).
async fn resolve(path: &Path) -> io::Result<PathBuf> {
    let mut existing = path;
    let mut missing = Vec::new();
    loop {
        match tokio::fs::canonicalize(existing).await {
            Ok(mut resolved) => {
                for name in missing.iter().rev() {
                    resolved.push(name);
                }
                return Ok(resolved);
            }
            // A file where a directory should be: judged like a missing path, so the command
            // itself meets (and reports) the unwritable destination.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                let (Some(parent), Some(Component::Normal(name))) =
                    (existing.parent(), existing.components().next_back())
                else {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "a part that does not exist is followed by \"..\"",
                    ));
                };
                missing.push(name.to_owned());
                existing = parent;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[tokio::test]
    async fn missing_paths_resolve_through_their_existing_ancestor()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let base = tokio::fs::canonicalize(dir.path()).await?;
        std::fs::create_dir(base.join("a"))?;
        assert_eq!(resolve(&base.join("a/b/c")).await?, base.join("a/b/c"));
        assert_eq!(resolve(&base.join("a/../x")).await?, base.join("x"));
        assert!(resolve(&base.join("a/nope/../../etc")).await.is_err());
        std::os::unix::fs::symlink("/tmp", base.join("a/link"))?;
        let through_link = resolve(&base.join("a/link/new")).await?;
        assert!(!through_link.starts_with(&base), "{through_link:?}");
        Ok(())
    }
}
