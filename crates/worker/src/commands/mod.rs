//! Task commands: one table maps each command name to the async function that runs it.
//! Command families live in their own files (`misc.rs`: echo, sleep; `exec.rs`: exec;
//! `blender.rs`; `ffmpeg.rs`; `files.rs`: file management; `openjd.rs`: a task of an Open
//! Job Description template; `unwritable.rs`: recognising outputs that cannot be written; `locations.rs`: where a
//! command writes and what it reads, looked at before it runs).

mod blender;
mod confine;
mod exec;
mod ffmpeg;
mod files;
mod glob;
mod locations;
mod misc;
mod openjd;
mod params;
#[cfg(test)]
mod real_tools_tests;
mod time_limit;
mod unwritable;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use castanet_protocol::v1::FaultClass;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::leftovers::ProcessRecords;
use crate::logs::LogSink;
use crate::preview::PreviewSink;
use crate::progress::ProgressSink;
use crate::slot_gpus::SlotPin;
use crate::timings::TaskTimings;
pub use locations::{directories_made, input_directories, input_files, output_directories};
pub use params::Params;

/// How long a program may print nothing before it counts as hung, unless configured.
pub const DEFAULT_HUNG_AFTER: Duration = Duration::from_secs(600);

/// What a running command may use.
pub struct CommandContext {
    pub task_id: String,
    /// The task log.
    pub log: LogSink,
    /// Fires when the task is aborted or the worker shuts down.
    pub cancel: CancellationToken,
    /// Where the command publishes its progress and activity.
    pub progress: ProgressSink,
    /// Where freshly rendered frames are offered as the job's "last rendered" preview.
    pub preview: PreviewSink,
    /// A program silent for this long is killed (HUNG).
    pub hung_after: Duration,
    /// The only directories under which deletes are allowed.
    pub storage_roots: Arc<Vec<PathBuf>>,
    /// Where a file link inside a storage root may point for a copy to read through it (the
    /// input cache of a worker without shared storage).
    pub link_roots: Arc<Vec<PathBuf>>,
    /// How long a command may run when it sets no `timeout_seconds` (None: no limit).
    pub time_limit: Option<Duration>,
    /// The GPUs of the slot the task runs in, when that slot is pinned.
    pub slot_pin: Option<Arc<SlotPin>>,
    /// Where the command's process groups are recorded while they run.
    pub processes: ProcessRecords,
    /// When the task's steps happened (the first program's start is noted here).
    pub timings: Arc<TaskTimings>,
}

/// Why a command did not succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommandError {
    /// The command failed; `fault` tells the manager whose fault it likely was.
    #[error("{message}")]
    Failed { fault: FaultClass, message: String },
    /// The task was aborted; nothing is reported.
    #[error("canceled")]
    Canceled,
}

impl CommandError {
    pub fn new(fault: FaultClass, message: impl Into<String>) -> Self {
        Self::Failed {
            fault,
            message: message.into(),
        }
    }

    /// The command or its parameters are wrong (a job fault, not a worker fault).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(FaultClass::InvalidCommand, message)
    }
}

/// The future a command function returns.
pub type CommandFuture<'a> = BoxFuture<'a, Result<(), CommandError>>;

/// A command implementation.
pub type CommandFn = for<'a> fn(&'a CommandContext, &'a Params) -> CommandFuture<'a>;

/// Every command this worker knows, by Flamenco name.
const REGISTRY: &[(&str, CommandFn)] = &[
    ("echo", |ctx, params| Box::pin(misc::echo(ctx, params))),
    ("sleep", |ctx, params| Box::pin(misc::sleep(ctx, params))),
    ("exec", |ctx, params| Box::pin(exec::exec(ctx, params))),
    ("blender-render", |ctx, params| {
        Box::pin(blender::blender_render(ctx, params))
    }),
    ("frames-to-video", |ctx, params| {
        Box::pin(ffmpeg::frames_to_video(ctx, params))
    }),
    ("ffmpeg", |ctx, params| {
        Box::pin(ffmpeg::ffmpeg(ctx, params))
    }),
    ("ffmpeg-each", |ctx, params| {
        Box::pin(ffmpeg::ffmpeg_each(ctx, params))
    }),
    ("create-directory", |ctx, params| {
        Box::pin(files::create_directory(ctx, params))
    }),
    ("make-directory", |ctx, params| {
        Box::pin(files::create_directory(ctx, params))
    }),
    ("move-directory", |ctx, params| {
        Box::pin(files::move_directory(ctx, params))
    }),
    ("copy-file", |ctx, params| {
        Box::pin(files::copy_file(ctx, params))
    }),
    ("delete-file", |ctx, params| {
        Box::pin(files::delete_file(ctx, params))
    }),
    ("delete-directory", |ctx, params| {
        Box::pin(files::delete_directory(ctx, params))
    }),
    ("openjd-run", |ctx, params| {
        Box::pin(openjd::openjd_run(ctx, params))
    }),
];

/// The implementation of command `name`, if there is one.
pub fn lookup(name: &str) -> Option<CommandFn> {
    REGISTRY.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// Parses the parameters and runs command `name`.
pub async fn run(
    ctx: &CommandContext,
    name: &str,
    parameters_json: &str,
) -> Result<(), CommandError> {
    let Some(command) = lookup(name) else {
        return Err(CommandError::invalid(format!("unknown command {name:?}")));
    };
    let params = Params::parse(parameters_json)?;
    match time_limit::limit_for(ctx, &params)? {
        Some(limit) => time_limit::run_limited(ctx, command, &params, limit).await,
        None => command(ctx, &params).await,
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Running commands in tests, with their log lines captured.
    use super::*;

    /// Runs a command and returns its result and every line it logged.
    pub async fn run_collecting(
        name: &str,
        params: &str,
    ) -> (Result<(), CommandError>, Vec<String>) {
        run_collecting_with(name, params, CancellationToken::new()).await
    }

    pub async fn run_collecting_with(
        name: &str,
        params: &str,
        cancel: CancellationToken,
    ) -> (Result<(), CommandError>, Vec<String>) {
        let (ctx, rx) = context(cancel);
        collect(ctx, rx, name, params).await
    }

    /// Runs a command whose output may pause for at most `hung_after`.
    pub async fn run_collecting_hung_after(
        name: &str,
        params: &str,
        hung_after: Duration,
    ) -> (Result<(), CommandError>, Vec<String>) {
        let (mut ctx, rx) = context(CancellationToken::new());
        ctx.hung_after = hung_after;
        collect(ctx, rx, name, params).await
    }

    /// Runs a command under the worker-wide time limit `limit`.
    pub async fn run_collecting_with_limit(
        name: &str,
        params: &str,
        limit: Duration,
    ) -> (Result<(), CommandError>, Vec<String>) {
        let (mut ctx, rx) = context(CancellationToken::new());
        ctx.time_limit = Some(limit);
        collect(ctx, rx, name, params).await
    }

    /// Runs a command with deletes allowed under `roots`.
    pub async fn run_collecting_in(
        name: &str,
        params: &str,
        roots: Vec<PathBuf>,
    ) -> (Result<(), CommandError>, Vec<String>) {
        let (mut ctx, rx) = context(CancellationToken::new());
        ctx.storage_roots = Arc::new(roots);
        collect(ctx, rx, name, params).await
    }

    /// [`run_collecting_in`] with `link_roots` too.
    pub async fn run_collecting_with_links(
        name: &str,
        params: &str,
        roots: Vec<PathBuf>,
        link_roots: Vec<PathBuf>,
    ) -> (Result<(), CommandError>, Vec<String>) {
        let (mut ctx, rx) = context(CancellationToken::new());
        ctx.storage_roots = Arc::new(roots);
        ctx.link_roots = Arc::new(link_roots);
        collect(ctx, rx, name, params).await
    }

    /// Runs a command and also returns every progress value it published.
    pub async fn run_collecting_progress(
        name: &str,
        params: &str,
    ) -> (
        Result<(), CommandError>,
        Vec<String>,
        Vec<crate::progress::Progress>,
    ) {
        let (mut ctx, rx) = context(CancellationToken::new());
        let (sink, mut watch) = ProgressSink::channel();
        ctx.progress = sink;
        let seen = tokio::spawn(async move {
            let mut seen = Vec::new();
            while watch.changed().await.is_ok() {
                seen.push(watch.borrow_and_update().clone());
            }
            seen
        });
        let (result, lines) = collect(ctx, rx, name, params).await;
        let seen = seen.await.unwrap_or_default();
        (result, lines, seen)
    }

    fn context(cancel: CancellationToken) -> (CommandContext, tokio::sync::mpsc::Receiver<String>) {
        let (log, rx) = LogSink::channel(10_000);
        let ctx = CommandContext {
            task_id: "task-1".into(),
            log,
            cancel,
            progress: ProgressSink::channel().0,
            preview: PreviewSink::detached(),
            hung_after: DEFAULT_HUNG_AFTER,
            storage_roots: Arc::new(Vec::new()),
            link_roots: Arc::new(Vec::new()),
            time_limit: None,
            slot_pin: None,
            processes: ProcessRecords::default(),
            timings: Arc::new(TaskTimings::received_now()),
        };
        (ctx, rx)
    }

    async fn collect(
        ctx: CommandContext,
        mut rx: tokio::sync::mpsc::Receiver<String>,
        name: &str,
        params: &str,
    ) -> (Result<(), CommandError>, Vec<String>) {
        let result = run(&ctx, name, params).await;
        drop(ctx);
        let mut lines = Vec::new();
        while let Some(line) = rx.recv().await {
            lines.push(line);
        }
        (result, lines)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::run_collecting;
    use super::*;

    #[tokio::test]
    async fn unknown_commands_are_invalid() {
        let (result, lines) = run_collecting("render-everything", "{}").await;
        assert_eq!(
            result,
            Err(CommandError::invalid(
                "unknown command \"render-everything\""
            ))
        );
        assert!(lines.is_empty());
    }

    #[tokio::test]
    async fn parameters_must_be_a_json_object() {
        let (result, _) = run_collecting("echo", "[1, 2]").await;
        assert!(matches!(
            result,
            Err(CommandError::Failed {
                fault: FaultClass::InvalidCommand,
                ..
            })
        ));
        let (result, _) = run_collecting("echo", "{not json").await;
        assert!(matches!(
            result,
            Err(CommandError::Failed {
                fault: FaultClass::InvalidCommand,
                ..
            })
        ));
    }

    #[test]
    fn the_registry_knows_the_basic_commands() {
        let names: Vec<_> = REGISTRY.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            names,
            [
                "echo",
                "sleep",
                "exec",
                "blender-render",
                "frames-to-video",
                "ffmpeg",
                "ffmpeg-each",
                "create-directory",
                "make-directory",
                "move-directory",
                "copy-file",
                "delete-file",
                "delete-directory",
                "openjd-run"
            ]
        );
        assert!(lookup("exec").is_some());
        assert!(lookup("Exec").is_none());
    }
}
