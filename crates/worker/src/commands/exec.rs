//! `exec {exe, args[]}`: runs an executable directly (no shell) and logs its output; plus the
//! helpers every process-running command shares (hang watchdog, exit and spawn error
//! classes, failure classification from the output, and `exeArgs` splitting through the shared
//! `castanet_protocol::shell` rule).

use std::collections::VecDeque;
use std::io;
use std::process::ExitStatus;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use castanet_protocol::shell;
use castanet_protocol::v1::FaultClass;

use super::{CommandContext, CommandError, Params};
use crate::process::{ChildProcess, RunEnd};

/// `exec {exe, args[], env{}}`; `env` adds variables to the program's environment (the
/// manager's on-complete task passes the job's facts so).
pub async fn exec(ctx: &CommandContext, params: &Params) -> Result<(), CommandError> {
    let exe = params.non_empty_string("exe")?;
    let args = params.string_list("args")?;
    let env = params.string_map("env")?;
    run_process(ctx, exe, &args, &env, None, &mut |_| {}).await
}

/// Logs `going to run: …`, runs the program with each output line logged as
/// `pid=<pid> > <line>` and also passed to `on_line` (progress parsing), and turns how it
/// ended into a command result. A program silent for longer than the context's `hung_after` is killed and the
/// command fails as HUNG; a failure is classified from the program's last output lines.
pub async fn run_watched(
    ctx: &CommandContext,
    exe: &str,
    args: &[String],
    on_line: &mut (dyn FnMut(&str) + Send),
) -> Result<(), CommandError> {
    run_watched_in(ctx, exe, args, None, on_line).await
}

/// Like [`run_watched`], with the program started in `cwd` when given.
pub async fn run_watched_in(
    ctx: &CommandContext,
    exe: &str,
    args: &[String],
    cwd: Option<&std::path::Path>,
    on_line: &mut (dyn FnMut(&str) + Send),
) -> Result<(), CommandError> {
    run_process(ctx, exe, args, &[], cwd, on_line).await
}

/// Runs the program with `extra_env` added to its environment (besides a GPU slot's).
async fn run_process(
    ctx: &CommandContext,
    exe: &str,
    args: &[String],
    extra_env: &[(String, String)],
    cwd: Option<&std::path::Path>,
    on_line: &mut (dyn FnMut(&str) + Send),
) -> Result<(), CommandError> {
    ctx.log
        .line(format!("going to run: {}", quote_command_line(exe, args)))
        .await;
    let slot_env = ctx.slot_pin.as_ref().map_or(&[][..], |pin| &pin.env[..]);
    if !extra_env.is_empty() {
        let vars: Vec<String> = extra_env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        ctx.log
            .line(format!("environment: {}", vars.join(" ")))
            .await;
    }
    let env: Vec<(String, String)> = slot_env.iter().chain(extra_env).cloned().collect();
    let env = &env[..];
    if !slot_env.is_empty() {
        let vars: Vec<String> = slot_env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        ctx.log
            .line(format!("slot GPU environment: {}", vars.join(" ")))
            .await;
    }
    let child = ChildProcess::spawn_for_task(exe, args, env, cwd, &ctx.processes, &ctx.task_id)
        .map_err(|e| spawn_error(exe, &e))?;
    ctx.timings.spawned();
    let pid = child.pid();
    tracing::debug!(task_id = %ctx.task_id, pid, exe, "started process");
    let kill = ctx.cancel.child_token();
    let last_output = Mutex::new(Instant::now());
    let recent = Mutex::new(VecDeque::with_capacity(RECENT_LINES));
    let hung = AtomicBool::new(false);
    let running = child.run(&kill, |line| {
        note_output(&last_output, &recent, &line);
        on_line(&line);
        let log = ctx.log.clone();
        async move { log.line(format!("pid={pid} > {line}")).await }
    });
    let watchdog = async {
        loop {
            let since = *lock(&last_output);
            tokio::time::sleep_until((since + ctx.hung_after).into()).await;
            if lock(&last_output).elapsed() >= ctx.hung_after {
                hung.store(true, Ordering::SeqCst);
                kill.cancel();
                return std::future::pending::<()>().await;
            }
        }
    };
    let end = tokio::select! {
        end = running => end,
        () = watchdog => unreachable_pending(),
    }
    .map_err(|e| {
        CommandError::new(
            FaultClass::Crashed,
            format!("lost track of {exe} (pid {pid}): {e}"),
        )
    })?;
    match end {
        RunEnd::Canceled if hung.load(Ordering::SeqCst) => Err(CommandError::new(
            FaultClass::Hung,
            format!(
                "{exe} printed nothing for {} s and was killed",
                ctx.hung_after.as_secs()
            ),
        )),
        RunEnd::Canceled => Err(CommandError::Canceled),
        RunEnd::Exited(status) => check_exit(status).map_err(|error| {
            let lines = lock(&recent);
            reclassify(error, lines.iter().map(String::as_str))
        }),
    }
}

/// How many of a program's last output lines are kept to classify its failure.
const RECENT_LINES: usize = 40;

fn note_output(last_output: &Mutex<Instant>, recent: &Mutex<VecDeque<String>>, line: &str) {
    *lock(last_output) = Instant::now();
    let mut recent = lock(recent);
    if recent.len() == RECENT_LINES {
        recent.pop_front();
    }
    recent.push_back(line.to_string());
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The watchdog never ends on its own (it pends after killing); this keeps `select!` typed.
fn unreachable_pending() -> io::Result<RunEnd> {
    Err(io::Error::other("the hang watchdog ended unexpectedly"))
}

/// A NONZERO_EXIT whose output says why becomes DISK_FULL, CODEC_ERROR, OUTPUT_UNWRITABLE or
/// MISSING_INPUT; the message then quotes the telling line.
pub fn reclassify<'a>(
    error: CommandError,
    last_lines: impl DoubleEndedIterator<Item = &'a str>,
) -> CommandError {
    let CommandError::Failed {
        fault: FaultClass::NonzeroExit,
        message,
    } = &error
    else {
        return error;
    };
    for line in last_lines.rev() {
        if let Some(fault) = fault_in_line(line) {
            return CommandError::new(fault, format!("{message}: {}", line.trim()));
        }
    }
    error
}

/// The fault a single output line reveals, if any.
pub fn fault_in_line(line: &str) -> Option<FaultClass> {
    const DISK_FULL: [&str; 2] = ["No space left on device", "Disk quota exceeded"];
    const CODEC: [&str; 7] = [
        "Unknown encoder",
        "Unknown decoder",
        "Encoder not found",
        "Decoder not found",
        "Invalid data found when processing input",
        "Error while opening encoder",
        "Error initializing output stream",
    ];
    const MISSING: [&str; 2] = ["No such file or directory", "Cannot read file"];
    if DISK_FULL.iter().any(|p| line.contains(p)) {
        Some(FaultClass::DiskFull)
    } else if CODEC.iter().any(|p| line.contains(p)) {
        Some(FaultClass::CodecError)
    } else if line.contains("Read-only file system") {
        // Only writes fail so; which output it was is in the quoted line.
        Some(FaultClass::OutputUnwritable)
    } else if MISSING.iter().any(|p| line.contains(p)) {
        Some(FaultClass::MissingInput)
    } else {
        None
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
    if let Some(signal) = crate::platform::terminating_signal(&status) {
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
    shell::join(std::iter::once(exe).chain(args.iter().map(String::as_str)))
}

/// Splits `exeArgs` with the rule the manager's compiler uses (quotes and backslashes honoured,
/// no expansion); a line that cannot be split is a bad parameter.
pub fn shell_split(text: &str) -> Result<Vec<String>, CommandError> {
    shell::split(text)
        .map_err(|error| CommandError::invalid(format!("parameter \"exeArgs\": {error}")))
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
    fn exe_args_are_split_like_a_shell() {
        assert_eq!(
            shell_split(r#" -b  -y 'a b' "c \"d\"" e\ f"#),
            Ok(vec!["-b", "-y", "a b", "c \"d\"", "e f"]
                .into_iter()
                .map(String::from)
                .collect())
        );
        assert_eq!(shell_split(""), Ok(vec![]));
        assert_eq!(shell_split("''"), Ok(vec![String::new()]));
        assert!(shell_split("'open").is_err());
    }

    #[test]
    fn failures_are_classified_from_the_output() {
        let nonzero = CommandError::new(
            FaultClass::NonzeroExit,
            "command exited abnormally with code 1",
        );
        let cases = [
            (
                "av_interleaved_write_frame(): No space left on device",
                FaultClass::DiskFull,
            ),
            ("Unknown encoder 'libnothing'", FaultClass::CodecError),
            (
                "in.mov: Invalid data found when processing input",
                FaultClass::CodecError,
            ),
            (
                "/x/in.mov: No such file or directory",
                FaultClass::MissingInput,
            ),
            (
                "cp: cannot create regular file '/mnt/out/a': Read-only file system",
                FaultClass::OutputUnwritable,
            ),
            ("Error: something else", FaultClass::NonzeroExit),
        ];
        for (line, fault) in cases {
            let got = reclassify(nonzero.clone(), ["first line", line].into_iter());
            assert!(
                matches!(&got, CommandError::Failed { fault: f, .. } if *f == fault),
                "{line}: {got:?}"
            );
        }
        // A crash stays a crash, whatever was printed.
        let crash = CommandError::new(FaultClass::Crashed, "killed by signal 9");
        assert_eq!(
            reclassify(crash.clone(), ["No space left on device"].into_iter()),
            crash
        );
    }

    #[tokio::test]
    async fn silent_programs_are_killed_as_hung() {
        let (result, _) = crate::commands::testing::run_collecting_hung_after(
            "exec",
            r#"{"exe": "sh", "args": ["-c", "echo start; sleep 30"]}"#,
            std::time::Duration::from_millis(300),
        )
        .await;
        assert!(
            matches!(
                &result,
                Err(CommandError::Failed {
                    fault: FaultClass::Hung,
                    ..
                })
            ),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn env_adds_variables_to_the_program_and_bad_env_is_refused() {
        let (result, lines) = run_collecting(
            "exec",
            r#"{"exe": "sh", "args": ["-c", "echo \"job=$CASTANET_JOB_ID\""],
                "env": {"CASTANET_JOB_ID": "j 1"}}"#,
        )
        .await;
        assert!(result.is_ok(), "{result:?} {lines:?}");
        assert!(lines.iter().any(|l| l.ends_with("> job=j 1")), "{lines:?}");
        for bad in [r#"{"A": 1}"#, r#"{"A=B": "x"}"#, r#"["A"]"#] {
            let params = format!(r#"{{"exe": "true", "env": {bad}}}"#);
            let (result, _) = run_collecting("exec", &params).await;
            assert!(
                matches!(&result, Err(CommandError::Failed { fault: FaultClass::InvalidCommand, message }) if message.contains("env")),
                "{bad}: {result:?}"
            );
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
