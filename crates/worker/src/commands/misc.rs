//! The "misc" command family: `echo` and `sleep` (Flamenco's names and parameters).

use std::time::Duration;

use super::{CommandContext, CommandError, Params};

/// `echo {message}`: logs `echo: "<message>"`.
pub async fn echo(ctx: &CommandContext, params: &Params) -> Result<(), CommandError> {
    let message = params.string("message")?;
    ctx.log.line(format!("echo: {message:?}")).await;
    Ok(())
}

/// `sleep {duration_in_seconds}`: waits (cancellably), then logs `slept Ns`.
pub async fn sleep(ctx: &CommandContext, params: &Params) -> Result<(), CommandError> {
    let seconds = params.whole_seconds("duration_in_seconds")?;
    tokio::select! {
        biased;
        () = ctx.cancel.cancelled() => Err(CommandError::Canceled),
        () = tokio::time::sleep(Duration::from_secs(seconds)) => {
            ctx.log.line(format!("slept {seconds}s")).await;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use castanet_protocol::v1::FaultClass;
    use tokio_util::sync::CancellationToken;

    use crate::commands::CommandError;
    use crate::commands::testing::{run_collecting, run_collecting_with};

    #[tokio::test]
    async fn echo_logs_the_quoted_message() {
        let (result, lines) = run_collecting("echo", r#"{"message": "hello \"farm\""}"#).await;
        assert_eq!(result, Ok(()));
        assert_eq!(lines, [r#"echo: "hello \"farm\"""#]);
    }

    #[tokio::test]
    async fn echo_needs_a_string_message() {
        for params in [r#"{}"#, r#"{"message": 5}"#] {
            let (result, lines) = run_collecting("echo", params).await;
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
            assert!(lines.is_empty());
        }
    }

    #[tokio::test]
    async fn sleep_truncates_and_logs() {
        let (result, lines) = run_collecting("sleep", r#"{"duration_in_seconds": 0.9}"#).await;
        assert_eq!(result, Ok(()));
        assert_eq!(lines, ["slept 0s"]);
    }

    #[tokio::test]
    async fn sleep_waits_the_whole_seconds() {
        let started = Instant::now();
        let (result, lines) = run_collecting("sleep", r#"{"duration_in_seconds": 1.5}"#).await;
        assert_eq!(result, Ok(()));
        assert_eq!(lines, ["slept 1s"]);
        assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    }

    #[tokio::test]
    async fn sleep_rejects_bad_durations() {
        for params in [
            r#"{}"#,
            r#"{"duration_in_seconds": -1}"#,
            r#"{"duration_in_seconds": "5"}"#,
        ] {
            let (result, _) = run_collecting("sleep", params).await;
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

    #[tokio::test]
    async fn sleep_is_cancellable() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        let started = Instant::now();
        let (result, lines) =
            run_collecting_with("sleep", r#"{"duration_in_seconds": 3600}"#, cancel).await;
        assert_eq!(result, Err(CommandError::Canceled));
        assert!(lines.is_empty());
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
