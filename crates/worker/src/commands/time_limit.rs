//! The per-command time limit: a command running longer than its limit is stopped (its
//! process tree killed, as for an abort) and fails as TIMEOUT, a class of its own, unlike
//! HUNG (silent too long) or CANCELED. The limit is the command's `timeout_seconds`
//! parameter, else the worker's configured default; none when neither is set.

use std::time::Duration;

use castanet_protocol::v1::FaultClass;

use super::{CommandContext, CommandError, CommandFn, Params};

/// The parameter every command may carry.
pub const TIMEOUT_PARAMETER: &str = "timeout_seconds";

/// The limit for one command: its parameter (a number > 0) or the worker's default.
pub fn limit_for(ctx: &CommandContext, params: &Params) -> Result<Option<Duration>, CommandError> {
    if !params.has(TIMEOUT_PARAMETER) {
        return Ok(ctx.time_limit);
    }
    let seconds = params.positive_number(TIMEOUT_PARAMETER)?;
    Duration::try_from_secs_f64(seconds)
        .map(Some)
        .map_err(|_| CommandError::invalid(format!("{TIMEOUT_PARAMETER} {seconds} is too large")))
}

/// Runs `command` and stops it once `limit` has passed.
pub async fn run_limited(
    ctx: &CommandContext,
    command: CommandFn,
    params: &Params,
    limit: Duration,
) -> Result<(), CommandError> {
    let limited = CommandContext {
        task_id: ctx.task_id.clone(),
        log: ctx.log.clone(),
        cancel: ctx.cancel.child_token(),
        progress: ctx.progress.clone(),
        preview: ctx.preview.clone(),
        hung_after: ctx.hung_after,
        storage_roots: ctx.storage_roots.clone(),
        link_roots: ctx.link_roots.clone(),
        time_limit: None,
        slot_pin: ctx.slot_pin.clone(),
        processes: ctx.processes.clone(),
        timings: ctx.timings.clone(),
    };
    let running = command(&limited, params);
    tokio::pin!(running);
    tokio::select! {
        result = &mut running => return result,
        () = tokio::time::sleep(limit) => {}
    }
    limited.cancel.cancel();
    match running.await {
        // Stopped by the limit, not by an abort of the task.
        Err(CommandError::Canceled) if !ctx.cancel.is_cancelled() => {
            let message = format!(
                "did not finish within its time limit of {}",
                describe(limit)
            );
            ctx.log
                .line(format!("Timed out: the command {message}"))
                .await;
            Err(CommandError::new(FaultClass::Timeout, message))
        }
        other => other,
    }
}

fn describe(limit: Duration) -> String {
    if limit.subsec_millis() == 0 {
        format!("{} s", limit.as_secs())
    } else {
        format!("{:.1} s", limit.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::commands::testing::{run_collecting, run_collecting_with_limit};

    #[tokio::test]
    async fn a_command_over_its_limit_is_killed_and_fails_as_timeout() {
        let started = Instant::now();
        let (result, lines) = run_collecting(
            "exec",
            r#"{"exe": "sh", "args": ["-c", "echo started; sleep 30"], "timeout_seconds": 0.5}"#,
        )
        .await;
        assert_eq!(
            result,
            Err(CommandError::new(
                FaultClass::Timeout,
                "did not finish within its time limit of 0.5 s"
            ))
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert!(lines.iter().any(|l| l.ends_with("> started")), "{lines:?}");
        assert!(
            lines.iter().any(|l| l.starts_with("Timed out:")),
            "{lines:?}"
        );
    }

    #[tokio::test]
    async fn the_worker_default_applies_and_a_parameter_overrides_it() {
        let (result, _) = run_collecting_with_limit(
            "sleep",
            r#"{"duration_in_seconds": 30}"#,
            Duration::from_millis(300),
        )
        .await;
        assert!(
            matches!(
                &result,
                Err(CommandError::Failed {
                    fault: FaultClass::Timeout,
                    ..
                })
            ),
            "{result:?}"
        );
        let (result, _) = run_collecting_with_limit(
            "sleep",
            r#"{"duration_in_seconds": 0.2, "timeout_seconds": 20}"#,
            Duration::from_millis(50),
        )
        .await;
        assert_eq!(result, Ok(()));
    }

    #[tokio::test]
    async fn a_bad_limit_is_an_invalid_command() {
        let (result, _) =
            run_collecting("echo", r#"{"message": "hi", "timeout_seconds": -1}"#).await;
        assert!(
            matches!(
                &result,
                Err(CommandError::Failed {
                    fault: FaultClass::InvalidCommand,
                    ..
                })
            ),
            "{result:?}"
        );
    }
}
