//! Task commands: one table maps each command name to the async function that runs it.
//! Command families live in their own files (`misc.rs`: echo, sleep; `exec.rs`: exec);
//! Blender and FFmpeg families will join as `blender.rs` and `ffmpeg.rs`.

mod exec;
mod misc;
mod params;

use castanet_protocol::v1::FaultClass;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::logs::LogSink;
pub use params::Params;

/// What a running command may use.
pub struct CommandContext {
    pub task_id: String,
    /// The task log.
    pub log: LogSink,
    /// Fires when the task is aborted or the worker shuts down.
    pub cancel: CancellationToken,
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
    command(ctx, &params).await
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
        let (log, mut rx) = LogSink::channel(10_000);
        let ctx = CommandContext {
            task_id: "task-1".into(),
            log,
            cancel,
        };
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
        assert_eq!(names, ["echo", "sleep", "exec"]);
        assert!(lookup("exec").is_some());
        assert!(lookup("Exec").is_none());
    }
}
