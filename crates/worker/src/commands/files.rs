//! The file-management family: `create-directory` (alias `make-directory`),
//! `move-directory`, `copy-file`, `delete-file` and `delete-directory`. Every one of them acts
//! only under the worker's configured storage roots (`confine.rs`): reads too, since a copy or
//! move into a root would hand an outside file to later commands.

use std::io;
use std::path::{Path, PathBuf};

use castanet_protocol::v1::FaultClass;

use super::confine::{Reach, confined};
use super::unwritable::write_failure;
use super::{CommandContext, CommandError, Params};

/// `create-directory {path}`: creates it and its parents.
pub async fn create_directory(ctx: &CommandContext, params: &Params) -> Result<(), CommandError> {
    let path = params.non_empty_string("path")?;
    confined(ctx, "create", "path", path, Reach::InsideOrRoot).await?;
    tokio::fs::create_dir_all(path)
        .await
        .map_err(|e| output_failure(&format!("cannot create directory {path}"), &e))?;
    ctx.log.line(format!("created directory {path}")).await;
    Ok(())
}

/// `move-directory {src, dest}`: an existing `dest` is first moved aside to
/// `<dest>-<its mtime as YYYY-MM-DD_HHMMSS>` (with `-2`, `-3`… if that exists too).
pub async fn move_directory(ctx: &CommandContext, params: &Params) -> Result<(), CommandError> {
    let src = params.non_empty_string("src")?;
    let dest = params.non_empty_string("dest")?;
    confined(ctx, "move", "src", src, Reach::Inside).await?;
    // The old `dest` is moved aside next to it, so it stays under the same root.
    confined(ctx, "move to", "dest", dest, Reach::Inside).await?;
    if !tokio::fs::try_exists(src).await.unwrap_or(false) {
        return Err(CommandError::new(
            FaultClass::MissingInput,
            format!("cannot move {src}: it does not exist"),
        ));
    }
    if let Ok(meta) = tokio::fs::symlink_metadata(dest).await {
        let stamp = meta
            .modified()
            .map(|t| {
                chrono::DateTime::<chrono::Local>::from(t)
                    .format("%Y-%m-%d_%H%M%S")
                    .to_string()
            })
            .unwrap_or_else(|_| "old".to_string());
        let aside = free_name(&format!("{dest}-{stamp}")).await;
        rename(ctx, dest, &aside).await?;
    }
    rename(ctx, src, dest).await
}

async fn rename(ctx: &CommandContext, from: &str, to: &str) -> Result<(), CommandError> {
    // Both places are written (an entry leaves one, arrives in the other).
    tokio::fs::rename(from, to)
        .await
        .map_err(|e| output_failure(&format!("cannot move {from} to {to}"), &e))?;
    ctx.log.line(format!("moved {from} to {to}")).await;
    Ok(())
}

/// `base`, or `base-2`, `base-3`… whichever does not exist yet.
async fn free_name(base: &str) -> String {
    let mut candidate = base.to_string();
    let mut n = 1u32;
    while tokio::fs::symlink_metadata(&candidate).await.is_ok() {
        n += 1;
        candidate = format!("{base}-{n}");
    }
    candidate
}

/// `copy-file {src, dest}`: both absolute; `src` a regular file; `dest` must not exist.
pub async fn copy_file(ctx: &CommandContext, params: &Params) -> Result<(), CommandError> {
    let src = params.non_empty_string("src")?;
    let dest = params.non_empty_string("dest")?;
    confined(ctx, "copy", "src", src, Reach::Source).await?;
    confined(ctx, "copy to", "dest", dest, Reach::Inside).await?;
    match tokio::fs::metadata(src).await {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => {
            return Err(CommandError::invalid(format!(
                "cannot copy {src}: not a regular file"
            )));
        }
        Err(e) => return Err(io_failure(&format!("cannot copy {src}"), &e)),
    }
    if tokio::fs::symlink_metadata(dest).await.is_ok() {
        return Err(CommandError::invalid(format!(
            "cannot copy to {dest}: it already exists"
        )));
    }
    if let Some(parent) = Path::new(dest).parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| output_failure(&format!("cannot create {}", parent.display()), &e))?;
    }
    let bytes = match tokio::fs::copy(src, dest).await {
        Ok(bytes) => bytes,
        // Refused while the source still opens: the refusal is the destination's.
        Err(e) if tokio::fs::File::open(src).await.is_ok() => {
            return Err(output_failure(&format!("cannot copy {src} to {dest}"), &e));
        }
        Err(e) => return Err(io_failure(&format!("cannot copy {src} to {dest}"), &e)),
    };
    ctx.log
        .line(format!("copied {src} to {dest} ({bytes} bytes)"))
        .await;
    Ok(())
}

/// `delete-file {path}`: a file under a storage root; already gone is fine (retries).
pub async fn delete_file(ctx: &CommandContext, params: &Params) -> Result<(), CommandError> {
    let Some(path) = deletable(ctx, params).await? else {
        return Ok(());
    };
    if path.is_dir() {
        return Err(CommandError::invalid(format!(
            "{} is a directory; use delete-directory",
            path.display()
        )));
    }
    tokio::fs::remove_file(&path)
        .await
        .map_err(|e| io_failure(&format!("cannot delete {}", path.display()), &e))?;
    ctx.log
        .line(format!("deleted file {}", path.display()))
        .await;
    Ok(())
}

/// `delete-directory {path}`: a directory under a storage root, with its contents.
pub async fn delete_directory(ctx: &CommandContext, params: &Params) -> Result<(), CommandError> {
    let Some(path) = deletable(ctx, params).await? else {
        return Ok(());
    };
    if !path.is_dir() {
        return Err(CommandError::invalid(format!(
            "{} is not a directory; use delete-file",
            path.display()
        )));
    }
    tokio::fs::remove_dir_all(&path)
        .await
        .map_err(|e| io_failure(&format!("cannot delete {}", path.display()), &e))?;
    ctx.log
        .line(format!("deleted directory {}", path.display()))
        .await;
    Ok(())
}

/// The resolved `path` parameter when it lies strictly inside a storage root; `None` (logged)
/// when it does not exist.
async fn deletable(ctx: &CommandContext, params: &Params) -> Result<Option<PathBuf>, CommandError> {
    let path = params.non_empty_string("path")?;
    let resolved = confined(ctx, "delete", "path", path, Reach::Inside).await?;
    match tokio::fs::symlink_metadata(&resolved).await {
        Ok(_) => Ok(Some(resolved)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            ctx.log
                .line(format!("{path} does not exist; nothing to delete"))
                .await;
            Ok(None)
        }
        Err(e) => Err(io_failure(&format!("cannot resolve {path}"), &e)),
    }
}

/// An I/O error writing a destination: an unwritable location (permissions, a read-only
/// mount, a file where a directory should be) is OUTPUT_UNWRITABLE, naming the path in `what`.
fn output_failure(what: &str, error: &io::Error) -> CommandError {
    write_failure(what, error).unwrap_or_else(|| io_failure(what, error))
}

/// An I/O error as a command failure: a full disk is DISK_FULL, a missing path MISSING_INPUT.
fn io_failure(what: &str, error: &io::Error) -> CommandError {
    let fault = match error.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => FaultClass::DiskFull,
        io::ErrorKind::NotFound => FaultClass::MissingInput,
        _ => FaultClass::NonzeroExit,
    };
    CommandError::new(fault, format!("{what}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testing::{run_collecting, run_collecting_in, run_collecting_with_links};

    fn json(value: serde_json::Value) -> String {
        value.to_string()
    }

    #[tokio::test]
    async fn create_copy_and_move() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let roots = vec![dir.path().to_path_buf()];
        let d = |p: &str| dir.path().join(p).display().to_string();
        let (r, _) = run_collecting_in(
            "create-directory",
            &json(serde_json::json!({"path": d("a/b")})),
            roots.clone(),
        )
        .await;
        assert_eq!(r, Ok(()));
        std::fs::write(dir.path().join("a/b/f.txt"), "hi")?;
        let copy = serde_json::json!({"src": d("a/b/f.txt"), "dest": d("c/f.txt")});
        assert_eq!(
            run_collecting_in("copy-file", &json(copy.clone()), roots.clone())
                .await
                .0,
            Ok(())
        );
        assert_eq!(std::fs::read_to_string(dir.path().join("c/f.txt"))?, "hi");
        // The destination exists now.
        assert!(matches!(
            run_collecting_in("copy-file", &json(copy), roots.clone())
                .await
                .0,
            Err(CommandError::Failed {
                fault: FaultClass::InvalidCommand,
                ..
            })
        ));
        let missing = serde_json::json!({"src": d("nope"), "dest": d("x")});
        assert!(matches!(
            run_collecting_in("copy-file", &json(missing), roots.clone())
                .await
                .0,
            Err(CommandError::Failed {
                fault: FaultClass::MissingInput,
                ..
            })
        ));

        // Moving onto an existing directory moves that one aside first.
        let mv = serde_json::json!({"src": d("a"), "dest": d("c")});
        let (r, lines) = run_collecting_in("move-directory", &json(mv), roots.clone()).await;
        assert_eq!(r, Ok(()), "{lines:?}");
        assert!(dir.path().join("c/b/f.txt").is_file());
        let aside: Vec<_> = std::fs::read_dir(dir.path())?
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("c-"))
            .collect();
        assert_eq!(aside.len(), 1, "{lines:?}");
        assert!(aside[0].path().join("f.txt").is_file());
        Ok(())
    }

    /// A regular file where a directory should be (ENOTDIR) makes the destination unwritable
    /// even for root, whom permissions do not stop.
    #[tokio::test]
    async fn unwritable_destinations_are_output_unwritable()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let roots = vec![dir.path().to_path_buf()];
        let d = |p: &str| dir.path().join(p).display().to_string();
        std::fs::write(dir.path().join("file"), "not a directory")?;
        std::fs::write(dir.path().join("src.txt"), "hi")?;
        std::fs::create_dir(dir.path().join("frames"))?;
        let cases = [
            (
                "create-directory",
                serde_json::json!({"path": d("file/out")}),
                d("file/out"),
            ),
            (
                "copy-file",
                serde_json::json!({"src": d("src.txt"), "dest": d("file/out/src.txt")}),
                d("file/out"),
            ),
            (
                "move-directory",
                serde_json::json!({"src": d("frames"), "dest": d("file/frames")}),
                d("file/frames"),
            ),
        ];
        for (command, params, path) in cases {
            let (result, _) = run_collecting_in(command, &json(params), roots.clone()).await;
            assert!(
                matches!(&result, Err(CommandError::Failed { fault: FaultClass::OutputUnwritable, message })
                    if message.contains(&path) && message.contains("Not a directory")),
                "{command}: {result:?}"
            );
        }
        // A missing source is still a missing input.
        let missing = serde_json::json!({"src": d("absent"), "dest": d("elsewhere")});
        assert!(matches!(
            run_collecting_in("move-directory", &json(missing), roots.clone())
                .await
                .0,
            Err(CommandError::Failed {
                fault: FaultClass::MissingInput,
                ..
            })
        ));
        Ok(())
    }

    #[tokio::test]
    async fn deletes_stay_inside_the_storage_roots() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("storage");
        std::fs::create_dir_all(root.join("job/frames"))?;
        std::fs::write(root.join("job/f.png"), "x")?;
        std::fs::write(dir.path().join("outside.txt"), "x")?;
        let p = |path: &Path| json(serde_json::json!({"path": path.display().to_string()}));

        // No roots: nothing is deleted.
        let (r, _) = run_collecting("delete-file", &p(&root.join("job/f.png"))).await;
        assert!(
            matches!(&r, Err(CommandError::Failed { message, .. }) if message.contains("no storage_roots")),
            "{r:?}"
        );
        assert!(root.join("job/f.png").exists());

        let roots = vec![root.clone()];
        let outside = dir.path().join("outside.txt");
        let sneaky = root.join("job/../../outside.txt");
        for target in [&outside, &sneaky, &root] {
            let (r, _) = run_collecting_in("delete-file", &p(target), roots.clone()).await;
            assert!(r.is_err(), "{}", target.display());
        }
        assert!(outside.exists());

        assert_eq!(
            run_collecting_in("delete-file", &p(&root.join("job/f.png")), roots.clone())
                .await
                .0,
            Ok(())
        );
        assert!(!root.join("job/f.png").exists());
        assert_eq!(
            run_collecting_in("delete-directory", &p(&root.join("job")), roots.clone())
                .await
                .0,
            Ok(())
        );
        assert!(!root.join("job").exists() && root.exists());
        // Already gone is fine.
        assert_eq!(
            run_collecting_in("delete-directory", &p(&root.join("job")), roots)
                .await
                .0,
            Ok(())
        );
        Ok(())
    }

    /// Issue 23, item 5: an outside folder moved in and then deleted, or copied in, or a
    /// directory made through a link that leaves the root: each is refused, nothing changes.
    #[tokio::test]
    async fn every_file_command_stays_inside_the_storage_roots()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("storage");
        let outside = dir.path().join("precious");
        std::fs::create_dir_all(root.join("job"))?;
        std::fs::create_dir_all(&outside)?;
        std::fs::write(outside.join("keep.txt"), "x")?;
        std::os::unix::fs::symlink(&outside, root.join("job/link"))?;
        let roots = vec![root.clone()];
        let d = |path: &Path| path.display().to_string();
        let cases = [
            (
                "move-directory",
                serde_json::json!({"src": d(&outside), "dest": d(&root.join("job/in"))}),
            ),
            (
                "move-directory",
                serde_json::json!({"src": d(&root.join("job/link")), "dest": d(&root.join("job/in"))}),
            ),
            (
                "move-directory",
                serde_json::json!({"src": d(&root.join("job")), "dest": d(&outside.join("job"))}),
            ),
            (
                "move-directory",
                serde_json::json!({"src": d(&root), "dest": d(&root.join("job/root"))}),
            ),
            (
                "copy-file",
                serde_json::json!({"src": d(&outside.join("keep.txt")), "dest": d(&root.join("job/keep.txt"))}),
            ),
            (
                "copy-file",
                serde_json::json!({"src": d(&root.join("job/link/keep.txt")), "dest": d(&root.join("job/keep.txt"))}),
            ),
            (
                "create-directory",
                serde_json::json!({"path": d(&outside.join("new"))}),
            ),
            (
                "create-directory",
                serde_json::json!({"path": d(&root.join("job/link/new"))}),
            ),
            (
                "create-directory",
                serde_json::json!({"path": "relative/dir"}),
            ),
        ];
        for (command, params) in cases {
            let (result, _) =
                run_collecting_in(command, &json(params.clone()), roots.clone()).await;
            assert!(
                matches!(&result, Err(CommandError::Failed { fault: FaultClass::InvalidCommand, message })
                    if message.starts_with("refusing to")),
                "{command} {params}: {result:?}"
            );
        }
        // Without roots, file commands touch nothing at all.
        let inside = serde_json::json!({"path": d(&root.join("job/new"))});
        let (result, _) = run_collecting("create-directory", &json(inside)).await;
        assert!(
            matches!(&result, Err(CommandError::Failed { message, .. }) if message.contains("no storage_roots")),
            "{result:?}"
        );
        assert!(outside.join("keep.txt").is_file() && !outside.join("new").exists());
        assert!(root.join("job").is_dir() && !root.join("job/new").exists());
        assert!(!root.join("job/in").exists() && !root.join("job/keep.txt").exists());
        Ok(())
    }

    /// A job's file tree may be links to files elsewhere (a Shaman checkout, the input cache of
    /// a worker without shared storage): such a file is copied (its content, not the link);
    /// a link to a directory on the way still leads out and is refused above.
    #[tokio::test]
    async fn a_linked_file_in_a_root_is_copied_from() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("mirror");
        let cache = dir.path().join("cache");
        std::fs::create_dir_all(root.join("job"))?;
        std::fs::create_dir_all(&cache)?;
        std::fs::write(cache.join("blob"), "input")?;
        std::os::unix::fs::symlink(cache.join("blob"), root.join("job/in.bin"))?;
        let params = serde_json::json!({
            "src": root.join("job/in.bin").display().to_string(),
            "dest": root.join("job/out.bin").display().to_string(),
        });
        let roots = vec![root.clone()];
        // Only where the link may point: into a storage root or a link root (the cache).
        let (refused, _) =
            run_collecting_in("copy-file", &json(params.clone()), roots.clone()).await;
        assert!(
            matches!(&refused, Err(CommandError::Failed { message, .. }) if message.contains("outside the storage roots")),
            "{refused:?}"
        );
        let (result, _) =
            run_collecting_with_links("copy-file", &json(params), roots, vec![cache.clone()]).await;
        assert_eq!(result, Ok(()));
        let copied = std::fs::symlink_metadata(root.join("job/out.bin"))?;
        assert!(copied.is_file(), "the copy is a file, not a link");
        assert_eq!(std::fs::read_to_string(root.join("job/out.bin"))?, "input");
        Ok(())
    }
}
