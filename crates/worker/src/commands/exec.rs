//! `exec {exe, args[]}`: runs an executable directly (no shell) and logs its output; plus the
//! helpers every process-running command shares (exit and spawn error classes, quoting).

use std::io;
use std::process::ExitStatus;

use castanet_protocol::v1::FaultClass;

use super::{CommandContext, CommandError, Params};
use crate::process::{ChildProcess, RunEnd};

/// `exec {exe, args[]}`.
pub async fn exec(ctx: &CommandContext, params: &Params) -> Result<(), CommandError> {
    let exe = params.non_empty_string("exe")?;
    let args = params.string_list("args")?;
    run_logged(ctx, exe, &args).await
}

/// Logs `going to run: …`, runs the program with each output line logged as
/// `pid=<pid> > <line>`, and turns how it ended into a command result.
pub async fn run_logged(
    ctx: &CommandContext,
    exe: &str,
    args: &[String],
) -> Result<(), CommandError> {
    ctx.log
        .line(format!("going to run: {}", quote_command_line(exe, args)))
        .await;
    let child = ChildProcess::spawn(exe, args).map_err(|e| spawn_error(exe, &e))?;
    let pid = child.pid();
    tracing::debug!(task_id = %ctx.task_id, pid, exe, "started process");
    let end = child
        .run(&ctx.cancel, |line| {
            let log = ctx.log.clone();
            async move { log.line(format!("pid={pid} > {line}")).await }
        })
        .await
        .map_err(|e| {
            CommandError::new(
                FaultClass::Crashed,
                format!("lost track of {exe} (pid {pid}): {e}"),
            )
        })?;
    match end {
        RunEnd::Canceled => Err(CommandError::Canceled),
        RunEnd::Exited(status) => check_exit(status),
    }
}

/// Exit code 0 is success; another code is NONZERO_EXIT; death by a signal is CRASHED.
pub fn check_exit(status: ExitStatus) -> Result<(), CommandError> {
    if status.success() {
        return Ok(());
    }
    if let Some(code) = status.code() {
        return Err(CommandError::new(
            FaultClass::NonzeroExit,
            format!("command exited abnormally with code {code}"),
        ));
    }
    #[cfg(unix)]
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        return Err(CommandError::new(
            FaultClass::Crashed,
            format!("command was killed by signal {signal}"),
        ));
    }
    Err(CommandError::new(
        FaultClass::Crashed,
        format!("command ended abnormally: {status}"),
    ))
}

/// A program that cannot be started is a MISSING_EXECUTABLE fault.
pub fn spawn_error(exe: &str, error: &io::Error) -> CommandError {
    let message = match error.kind() {
        io::ErrorKind::NotFound => format!("executable not found: {exe}"),
        io::ErrorKind::PermissionDenied => format!("not allowed to run {exe}: {error}"),
        _ => format!("cannot run {exe}: {error}"),
    };
    CommandError::new(FaultClass::MissingExecutable, message)
}

/// The command line as a POSIX shell would need it typed, for the log.
pub fn quote_command_line(exe: &str, args: &[String]) -> String {
    std::iter::once(exe)
        .chain(args.iter().map(String::as_str))
        .map(shell_quote)
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testing::run_collecting;

    fn strip_pid(line: &str) -> String {
        match line.split_once(" > ") {
            Some((prefix, rest)) if prefix.starts_with("pid=") => format!("pid=N > {rest}"),
            _ => line.to_string(),
        }
    }

    #[test]
    fn command_lines_are_shell_quoted() {
        let args = [
            "-c".to_string(),
            "echo 'hi' there".to_string(),
            String::new(),
            "a=b/c.d".to_string(),
        ];
        assert_eq!(
            quote_command_line("/bin/sh", &args),
            r#"/bin/sh -c 'echo '\''hi'\'' there' '' a=b/c.d"#
        );
    }

    #[tokio::test]
    async fn output_lines_are_logged_with_the_pid() {
        let (result, lines) = run_collecting(
            "exec",
            r#"{"exe": "sh", "args": ["-c", "echo one; echo two"]}"#,
        )
        .await;
        assert_eq!(result, Ok(()));
        let lines: Vec<String> = lines.iter().map(|l| strip_pid(l)).collect();
        assert_eq!(
            lines,
            [
                "going to run: sh -c 'echo one; echo two'",
                "pid=N > one",
                "pid=N > two"
            ]
        );
    }

    #[tokio::test]
    async fn nonzero_exit_is_reported_with_the_code() {
        let (result, lines) = run_collecting(
            "exec",
            r#"{"exe": "sh", "args": ["-c", "echo oops >&2; exit 7"]}"#,
        )
        .await;
        assert_eq!(
            result,
            Err(CommandError::new(
                FaultClass::NonzeroExit,
                "command exited abnormally with code 7"
            ))
        );
        assert_eq!(
            lines.last().map(|l| strip_pid(l)).as_deref(),
            Some("pid=N > oops")
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn death_by_signal_is_a_crash() {
        let (result, _) =
            run_collecting("exec", r#"{"exe": "sh", "args": ["-c", "kill -9 $$"]}"#).await;
        assert_eq!(
            result,
            Err(CommandError::new(
                FaultClass::Crashed,
                "command was killed by signal 9"
            ))
        );
    }

    #[tokio::test]
    async fn missing_executables_are_classified() {
        let (result, lines) =
            run_collecting("exec", r#"{"exe": "castanet-no-such-exe", "args": []}"#).await;
        assert_eq!(
            result,
            Err(CommandError::new(
                FaultClass::MissingExecutable,
                "executable not found: castanet-no-such-exe"
            ))
        );
        assert_eq!(lines, ["going to run: castanet-no-such-exe"]);
    }

    #[tokio::test]
    async fn exe_is_required() {
        for params in [
            r#"{}"#,
            r#"{"exe": ""}"#,
            r#"{"exe": "true", "args": "no"}"#,
        ] {
            let (result, _) = run_collecting("exec", params).await;
            assert!(
                matches!(
                    result,
                    Err(CommandError::Failed {
                        fault: FaultClass::InvalidCommand,
                        ..
                    })
                ),
                "{params}: {result:?}"
            );
        }
    }
}
