//! `openjd-run {command, args[], files[], timeout_seconds?}`: runs one task of an Open Job
//! Description template. The manager resolved every format string it could; what only the
//! worker knows is left as markers: `{{Session.WorkingDirectory}}` and `{{Task.File.NAME}}`.
//! The command makes a fresh session directory, writes the embedded files there, replaces
//! the markers in `command`, `args` and the files' data, runs the command (no shell) in that
//! directory, and removes the directory afterwards. `timeout_seconds` is the time limit every
//! command may carry.

use std::path::{Path, PathBuf};

use castanet_protocol::v1::FaultClass;
use serde_json::Value;

use super::exec::run_watched_in;
use super::{CommandContext, CommandError, Params};

const SESSION_MARKER: &str = "{{Session.WorkingDirectory}}";
const FILE_MARKER_START: &str = "{{Task.File.";

/// One embedded file as the manager sent it.
struct EmbeddedFile {
    name: String,
    filename: String,
    data: String,
    runnable: bool,
}

/// `openjd-run`.
pub async fn openjd_run(ctx: &CommandContext, params: &Params) -> Result<(), CommandError> {
    let command = params.non_empty_string("command")?.to_owned();
    let args = params.string_list("args")?;
    let files = embedded_files(params)?;
    let session = SessionDir::create(&ctx.task_id)?;
    ctx.log
        .line(format!(
            "openjd: session directory {}",
            session.path.display()
        ))
        .await;
    let result = run_in(ctx, &session.path, &command, &args, &files).await;
    session.remove(ctx).await;
    result
}

async fn run_in(
    ctx: &CommandContext,
    dir: &Path,
    command: &str,
    args: &[String],
    files: &[EmbeddedFile],
) -> Result<(), CommandError> {
    let paths: Vec<(String, PathBuf)> = files
        .iter()
        .map(|f| (f.name.clone(), dir.join(&f.filename)))
        .collect();
    let resolve = |text: &str, what: &str| resolve_markers(text, dir, &paths, what);
    for file in files {
        let data = resolve(&file.data, &format!("embedded file {}", file.name))?;
        let path = dir.join(&file.filename);
        write_file(&path, &data, file.runnable).map_err(|e| {
            CommandError::new(
                FaultClass::OutputUnwritable,
                format!(
                    "cannot write embedded file {} to {}: {e}",
                    file.name,
                    path.display()
                ),
            )
        })?;
    }
    let command = resolve(command, "parameter \"command\"")?;
    let args = args
        .iter()
        .enumerate()
        .map(|(i, a)| resolve(a, &format!("parameter \"args\" [{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    // The specification's progress messages on stdout become the task's progress and activity.
    let mut reported = Reported::default();
    let mut on_line = |line: &str| {
        if reported.note(line) {
            ctx.progress.set(reported.percent, reported.status.clone());
        }
    };
    run_watched_in(ctx, &command, &args, Some(dir), &mut on_line).await
}

/// What the program reported with `openjd_progress: <percent>` and `openjd_status: <text>`.
#[derive(Default)]
struct Reported {
    percent: Option<u32>,
    status: String,
}

impl Reported {
    /// Takes in one output line; true when it changed what is reported.
    fn note(&mut self, line: &str) -> bool {
        let line = line.trim();
        if let Some(value) = line.strip_prefix("openjd_progress:") {
            let Ok(percent) = value.trim().parse::<f64>() else {
                return false;
            };
            if !percent.is_finite() {
                return false;
            }
            self.percent = Some(percent.clamp(0.0, 100.0).floor() as u32);
            return true;
        }
        if let Some(text) = line.strip_prefix("openjd_status:") {
            self.status = text.trim().to_owned();
            return true;
        }
        false
    }
}

fn embedded_files(params: &Params) -> Result<Vec<EmbeddedFile>, CommandError> {
    let items = match params.get("files") {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(CommandError::invalid("parameter \"files\" must be a list")),
    };
    let mut files: Vec<EmbeddedFile> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let bad = |what: &str| CommandError::invalid(format!("parameter \"files\" [{i}]: {what}"));
        let Value::Object(map) = item else {
            return Err(bad("must be an object"));
        };
        let text = |key: &str| map.get(key).and_then(Value::as_str);
        let name = text("name")
            .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .ok_or_else(|| bad("\"name\" must be an identifier"))?
            .to_owned();
        let filename = match map.get("filename") {
            None | Some(Value::Null) => name.clone(),
            Some(Value::String(f)) if plain_file_name(f) => f.clone(),
            Some(_) => return Err(bad("\"filename\" must be a plain file name")),
        };
        let data = text("data")
            .ok_or_else(|| bad("\"data\" must be a string"))?
            .to_owned();
        let runnable = match map.get("runnable") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(bad("\"runnable\" must be true or false")),
        };
        if files
            .iter()
            .any(|f| f.name == name || f.filename == filename)
        {
            return Err(bad("two embedded files share a name or file name"));
        }
        files.push(EmbeddedFile {
            name,
            filename,
            data,
            runnable,
        });
    }
    Ok(files)
}

fn plain_file_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

/// `text` with the session directory and file markers replaced; a marker naming no embedded
/// file is an error naming it.
fn resolve_markers(
    text: &str,
    dir: &Path,
    files: &[(String, PathBuf)],
    what: &str,
) -> Result<String, CommandError> {
    let text = text.replace(SESSION_MARKER, &dir.to_string_lossy());
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(start) = rest.find(FILE_MARKER_START) {
        out.push_str(&rest[..start]);
        let after = &rest[start + FILE_MARKER_START.len()..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        let Some((_, path)) = files.iter().find(|(n, _)| n == name) else {
            return Err(CommandError::invalid(format!(
                "{what} refers to embedded file {name:?}, which this task does not have"
            )));
        };
        out.push_str(&path.to_string_lossy());
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn write_file(path: &Path, data: &str, runnable: bool) -> std::io::Result<()> {
    std::fs::write(path, data)?;
    if runnable {
        crate::platform::make_runnable(path)?;
    }
    Ok(())
}

/// The session's working directory, under the system's temporary directory.
struct SessionDir {
    path: PathBuf,
}

impl SessionDir {
    fn create(task_id: &str) -> Result<Self, CommandError> {
        let base = std::env::temp_dir();
        let safe_id: String = task_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(40)
            .collect();
        let mut last_error = None;
        // A leftover of an earlier run of the same task (a crash) is never reused.
        for attempt in 0..100u32 {
            let path = base.join(format!(
                "castanet-openjd-{safe_id}-{}-{attempt}",
                std::process::id()
            ));
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(Self { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last_error = Some(e),
                Err(e) => {
                    last_error = Some(e);
                    break;
                }
            }
        }
        Err(CommandError::new(
            FaultClass::OutputUnwritable,
            format!(
                "cannot make a session directory under {}: {}",
                base.display(),
                last_error.map_or_else(|| "unknown error".to_owned(), |e| e.to_string())
            ),
        ))
    }

    async fn remove(self, ctx: &CommandContext) {
        let path = self.path.clone();
        let removed = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&path)).await;
        if !matches!(removed, Ok(Ok(()))) {
            ctx.log
                .line(format!(
                    "openjd: could not remove the session directory {}",
                    self.path.display()
                ))
                .await;
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::super::testing::run_collecting;
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn writes_files_replaces_markers_runs_in_the_session_and_cleans_up() {
        let out = tempfile::tempdir().unwrap();
        let target = out.path().join("result.txt");
        let params = json!({
            "command": "{{Task.File.Run}}",
            "args": [target.to_string_lossy(), "{{Session.WorkingDirectory}}"],
            "files": [
                {"name": "Run", "filename": "run.sh", "runnable": true,
                 "data": "#!/bin/sh\ncat {{Task.File.Note}} > \"$1\"\npwd >> \"$1\"\necho \"$2\" >> \"$1\"\n"},
                {"name": "Note", "data": "hello from {{Session.WorkingDirectory}}\n", "runnable": false}
            ]
        });
        let (result, lines) = run_collecting("openjd-run", &params.to_string()).await;
        assert_eq!(result, Ok(()), "{lines:#?}");
        let written = std::fs::read_to_string(&target).unwrap();
        let rows: Vec<&str> = written.lines().collect();
        assert_eq!(rows.len(), 3, "{written}");
        let session = rows[0].strip_prefix("hello from ").unwrap();
        assert!(session.contains("castanet-openjd-"), "{session}");
        assert_eq!(rows[2], session);
        // The command ran in the session directory (pwd may show it through a symlink).
        assert!(rows[1].ends_with(Path::new(session).file_name().unwrap().to_str().unwrap()));
        assert!(
            !Path::new(session).exists(),
            "the session directory is removed"
        );
    }

    #[tokio::test]
    async fn refuses_unknown_file_references_and_bad_parameters() {
        let params = json!({"command": "{{Task.File.Missing}}", "files": []});
        let (result, _) = run_collecting("openjd-run", &params.to_string()).await;
        let Err(CommandError::Failed { fault, message }) = result else {
            panic!("expected a failure");
        };
        assert_eq!(fault, FaultClass::InvalidCommand);
        assert!(message.contains("embedded file \"Missing\""), "{message}");

        let params =
            json!({"command": "true", "files": [{"name": "A", "filename": "../x", "data": ""}]});
        let (result, _) = run_collecting("openjd-run", &params.to_string()).await;
        assert!(
            format!("{result:?}").contains("plain file name"),
            "{result:?}"
        );

        let (result, _) = run_collecting("openjd-run", "{}").await;
        assert!(format!("{result:?}").contains("command"), "{result:?}");
    }

    #[test]
    fn progress_and_status_messages_are_read() {
        let mut reported = Reported::default();
        assert!(!reported.note("rendering"));
        assert!(reported.note("openjd_progress: 42.7"));
        assert_eq!(reported.percent, Some(42));
        assert!(reported.note("openjd_status: Loading the things"));
        assert_eq!(reported.status, "Loading the things");
        assert!(reported.note("openjd_progress: 250"));
        assert_eq!(reported.percent, Some(100));
        assert!(!reported.note("openjd_progress: lots"));
        assert_eq!(reported.percent, Some(100));
    }

    #[tokio::test]
    async fn a_failing_command_fails_the_task() {
        let params = json!({"command": "sh", "args": ["-c", "exit 3"]});
        let (result, _) = run_collecting("openjd-run", &params.to_string()).await;
        assert!(format!("{result:?}").contains("code 3"), "{result:?}");
    }
}
