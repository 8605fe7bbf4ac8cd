//! `shellSplit(text)` for job-type scripts and `on_complete` lines: the shared splitting rule of
//! `castanet_protocol::shell` (the one the worker uses for `exeArgs`), plus the size limit that
//! only script-facing splitting needs.

use castanet_protocol::shell::{self, SplitError};

/// The longest text `shellSplit` takes: a command line, not a file. The split runs in native code
/// that the script's time limit cannot interrupt and makes its words outside the script's memory
/// limit (about 24 times the text's size for one-letter words).
pub const MAX_SHELL_SPLIT_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShellSplitError {
    #[error("shellSplit: the text is {0} bytes long; at most {MAX_SHELL_SPLIT_BYTES} are split")]
    TooLong(usize),
    #[error("shellSplit: {0}")]
    Split(#[from] SplitError),
}

pub fn shell_split(text: &str) -> Result<Vec<String>, ShellSplitError> {
    if text.len() > MAX_SHELL_SPLIT_BYTES {
        return Err(ShellSplitError::TooLong(text.len()));
    }
    Ok(shell::split(text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_with_the_shared_rule() {
        assert_eq!(
            shell_split("--title \"My Shot\" -t 4").expect("splits"),
            ["--title", "My Shot", "-t", "4"]
        );
    }

    #[test]
    fn errors_name_the_function_and_the_problem() {
        assert_eq!(
            shell_split("a 'b").unwrap_err().to_string(),
            r#"shellSplit: unterminated single quote in "a 'b""#
        );
        assert!(matches!(
            shell_split("a b\\"),
            Err(ShellSplitError::Split(SplitError::TrailingBackslash { .. }))
        ));
        let long = "x".repeat(MAX_SHELL_SPLIT_BYTES + 1);
        assert_eq!(
            shell_split(&long),
            Err(ShellSplitError::TooLong(MAX_SHELL_SPLIT_BYTES + 1))
        );
    }
}
