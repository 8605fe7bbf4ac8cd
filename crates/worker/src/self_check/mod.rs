//! The worker's checks of itself. Before each task (`task_ready`): can it reach the task's
//! inputs and write where the task's commands write? A render node whose share is mounted read-only, or absent,
//! would otherwise fail every task it is handed; it declines the task instead (fault class
//! SELF_CHECK) and the manager blocklists it for the job's tasks of that type. `machine.rs`
//! holds the full report of `castanet worker --test`.

mod machine;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use castanet_protocol::v1::Command;

#[cfg(test)]
pub(crate) use machine::TINY_SCENE_SCRIPT;
pub use machine::{Check, MachineReport, run_machine_checks};

use crate::config::WorkerConfig;

/// How long a look at an output location may take: a hung network mount answers never.
const PROBE_TIME_LIMIT: Duration = Duration::from_secs(30);

/// What is wrong with the worker's own directories (`machine::directory_checks`), checked at
/// every sign-on and reported to the manager; empty when all is well. Each problem is logged.
pub async fn sign_on_problems(config: &WorkerConfig) -> Vec<String> {
    let config = config.clone();
    let checks = tokio::task::spawn_blocking(move || machine::directory_checks(&config));
    let problems = match tokio::time::timeout(PROBE_TIME_LIMIT, checks).await {
        Ok(Ok(checks)) => checks
            .into_iter()
            .filter_map(|check| check.outcome.err().map(|e| format!("{}: {e}", check.name)))
            .collect(),
        Ok(Err(join)) => vec![format!("the directory checks could not run: {join}")],
        Err(_) => vec![format!(
            "the directory checks did not finish within {} s (a hung network mount?)",
            PROBE_TIME_LIMIT.as_secs()
        )],
    };
    for problem in &problems {
        tracing::warn!("self-check: {problem}");
    }
    problems
}

/// Whether this worker can do the task: every input under a storage root is reachable (the
/// root is there, and not an empty mount point while the input is missing) and every
/// directory the commands write into can be written. The first problem is returned, in words
/// for the task log and the blocklist. A missing input on a mounted root is not this
/// worker's problem: the command reports it as the job's (`missing-input`).
pub async fn task_ready(commands: &[Command], storage_roots: &[PathBuf]) -> Result<(), String> {
    let mut inputs: Vec<PathBuf> = commands
        .iter()
        .flat_map(|c| crate::commands::input_files(&c.name, &c.parameters_json))
        .collect();
    let mut directories: Vec<PathBuf> = commands
        .iter()
        .flat_map(|c| crate::commands::output_directories(&c.name, &c.parameters_json))
        .collect();
    let mut made: Vec<PathBuf> = commands
        .iter()
        .flat_map(|c| crate::commands::directories_made(&c.name, &c.parameters_json))
        .collect();
    for paths in [&mut inputs, &mut directories, &mut made] {
        paths.sort();
        paths.dedup();
    }
    if inputs.is_empty() && directories.is_empty() && made.is_empty() {
        return Ok(());
    }
    let roots = storage_roots.to_vec();
    let probe = tokio::task::spawn_blocking(move || {
        inputs
            .iter()
            .try_for_each(|input| check_input_reachable(input, &roots))?;
        // Making a directory that exists writes nothing.
        made.iter()
            .filter(|directory| !directory.is_dir())
            .try_for_each(|directory| check_writable(directory))?;
        directories
            .iter()
            .try_for_each(|directory| check_writable(directory))
    });
    match tokio::time::timeout(PROBE_TIME_LIMIT, probe).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(format!("the check could not run: {join}")),
        Err(_) => Err(format!(
            "the task's storage did not answer within {} s (a hung network mount?)",
            PROBE_TIME_LIMIT.as_secs()
        )),
    }
}

/// Whether `input` can be reached from this worker, as far as its storage root tells: the root
/// holding it must be there, and must not be an empty directory while the input is missing
/// (a mount point with nothing mounted on it).
pub fn check_input_reachable(input: &Path, storage_roots: &[PathBuf]) -> Result<(), String> {
    let Some(root) = storage_roots
        .iter()
        .filter(|root| input.starts_with(root))
        .max_by_key(|root| root.components().count())
    else {
        return Ok(());
    };
    if !root.is_dir() {
        return Err(format!(
            "the input {} is on storage root {}, which is not there on this worker (is the \
             shared storage mounted?)",
            input.display(),
            root.display()
        ));
    }
    let empty = std::fs::read_dir(root).is_ok_and(|mut entries| entries.next().is_none());
    if empty && !input.exists() {
        return Err(format!(
            "the input {} is missing and storage root {} is empty on this worker (is the \
             shared storage mounted?)",
            input.display(),
            root.display()
        ));
    }
    Ok(())
}

/// Whether a file can be made in `directory`, or in its nearest existing ancestor when it
/// does not exist yet (the commands make the rest, as Blender does).
pub fn check_writable(directory: &Path) -> Result<(), String> {
    let mut existing = directory;
    while !existing.exists() {
        match existing.parent() {
            Some(parent) => existing = parent,
            None => return Err(format!("no part of {} exists", directory.display())),
        }
    }
    if !existing.is_dir() {
        return Err(format!(
            "cannot write in {}: {} is not a directory",
            directory.display(),
            existing.display()
        ));
    }
    let probe = existing.join(format!(
        ".castanet-write-check-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    ));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .and_then(|mut file| file.write_all(b"castanet"));
    let removed = std::fs::remove_file(&probe);
    match (written, removed) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(error), _) => Err(format!("cannot write in {}: {error}", existing.display())),
        (Ok(()), Err(error)) => Err(format!(
            "cannot remove a file written in {}: {error}",
            existing.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render_into(output: &Path) -> Command {
        Command {
            name: "blender-render".into(),
            parameters_json: serde_json::json!({
                "args": ["--render-output", format!("{}/######", output.display())]
            })
            .to_string(),
            total_step_count: 1,
        }
    }

    #[tokio::test]
    async fn a_writable_or_yet_to_be_made_directory_passes_and_leaves_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let later = dir.path().join("shot").join("frames");
        let commands = [render_into(dir.path()), render_into(&later)];
        assert_eq!(task_ready(&commands, &[]).await, Ok(()));
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("list").collect();
        assert!(left.is_empty(), "{left:?}");
        assert!(!later.exists(), "checking makes no directories");
    }

    fn render_of(blend: &Path) -> Command {
        Command {
            name: "blender-render".into(),
            parameters_json: serde_json::json!({"blendfile": blend, "args": []}).to_string(),
            total_step_count: 1,
        }
    }

    #[tokio::test]
    async fn an_input_on_an_unmounted_storage_root_is_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("projects");
        let blend = root.join("shot").join("scene.blend");
        let roots = [root.clone()];
        let missing = task_ready(&[render_of(&blend)], &roots)
            .await
            .expect_err("no root");
        assert!(
            missing.contains("which is not there on this worker"),
            "{missing}"
        );
        std::fs::create_dir(&root).expect("mkdir");
        let empty = task_ready(&[render_of(&blend)], &roots)
            .await
            .expect_err("empty root");
        assert!(empty.contains("is empty on this worker"), "{empty}");
        // A mounted root without the file: the job's problem, which the command reports.
        std::fs::create_dir(root.join("shot")).expect("mkdir");
        assert_eq!(task_ready(&[render_of(&blend)], &roots).await, Ok(()));
        // Outside every storage root nothing can be told.
        assert_eq!(
            task_ready(&[render_of(Path::new("/elsewhere/a.blend"))], &roots).await,
            Ok(())
        );
    }

    #[tokio::test]
    async fn a_file_in_the_way_is_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("shot");
        std::fs::write(&file, b"x").expect("write");
        let problem = task_ready(&[render_into(&file.join("frames"))], &[])
            .await
            .expect_err("a file where a directory should be");
        assert!(problem.contains("is not a directory"), "{problem}");
        assert!(problem.contains(&file.display().to_string()), "{problem}");
    }
}
