//! `shellSplit(text)` for job-type scripts: POSIX-shell-like word splitting, so a setting such as
//! `--threads 4 --title "My Shot"` can become an argument list.
//!
//! Supported: whitespace between words, 'single quotes' (literal), "double quotes" (where a
//! backslash escapes only `\`, `"`, `$`, `` ` `` and newline), and backslash escapes outside quotes.
//! No expansion of any kind happens.

/// The longest text `shellSplit` takes: a command line, not a file. The split runs in native code
/// that the script's time limit cannot interrupt and makes its words outside the script's memory
/// limit (about 24 times the text's size for one-letter words).
pub const MAX_SHELL_SPLIT_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShellSplitError {
    #[error("shellSplit: the text is {0} bytes long; at most {MAX_SHELL_SPLIT_BYTES} are split")]
    TooLong(usize),
    #[error("shellSplit: unterminated {0} quote in {1:?}")]
    UnterminatedQuote(&'static str, String),
    #[error("shellSplit: {0:?} ends with an unfinished backslash escape")]
    TrailingBackslash(String),
}

enum Quoting {
    None,
    Single,
    Double,
}

pub fn shell_split(text: &str) -> Result<Vec<String>, ShellSplitError> {
    if text.len() > MAX_SHELL_SPLIT_BYTES {
        return Err(ShellSplitError::TooLong(text.len()));
    }
    let mut words = Vec::new();
    let mut word = String::new();
    // Tracks whether a word has begun, so that `''` yields an empty word.
    let mut in_word = false;
    let mut quoting = Quoting::None;
    let mut chars = text.chars();

    while let Some(character) = chars.next() {
        match quoting {
            Quoting::Single => match character {
                '\'' => quoting = Quoting::None,
                _ => word.push(character),
            },
            Quoting::Double => match character {
                '"' => quoting = Quoting::None,
                '\\' => match chars.next() {
                    Some('\n') => {}
                    Some(escaped @ ('\\' | '"' | '$' | '`')) => word.push(escaped),
                    Some(other) => {
                        word.push('\\');
                        word.push(other);
                    }
                    None => {
                        return Err(ShellSplitError::UnterminatedQuote(
                            "double",
                            text.to_owned(),
                        ));
                    }
                },
                _ => word.push(character),
            },
            Quoting::None => match character {
                '\'' => {
                    quoting = Quoting::Single;
                    in_word = true;
                }
                '"' => {
                    quoting = Quoting::Double;
                    in_word = true;
                }
                '\\' => match chars.next() {
                    // A backslash-newline continues the line.
                    Some('\n') => {}
                    Some(escaped) => {
                        word.push(escaped);
                        in_word = true;
                    }
                    None => return Err(ShellSplitError::TrailingBackslash(text.to_owned())),
                },
                _ if character.is_whitespace() => {
                    if in_word {
                        words.push(std::mem::take(&mut word));
                        in_word = false;
                    }
                }
                _ => {
                    word.push(character);
                    in_word = true;
                }
            },
        }
    }
    match quoting {
        Quoting::Single => Err(ShellSplitError::UnterminatedQuote(
            "single",
            text.to_owned(),
        )),
        Quoting::Double => Err(ShellSplitError::UnterminatedQuote(
            "double",
            text.to_owned(),
        )),
        Quoting::None => {
            if in_word {
                words.push(word);
            }
            Ok(words)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_a_posix_shell() {
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("   ", &[]),
            ("a b  c", &["a", "b", "c"]),
            (
                "--title \"My Shot\" -t 4",
                &["--title", "My Shot", "-t", "4"],
            ),
            ("'it''s' x", &["its", "x"]),
            ("'a \"b\"'", &["a \"b\""]),
            ("\"a \\\"b\\\" \\n\"", &["a \"b\" \\n"]),
            ("a\\ b c", &["a b", "c"]),
            ("'' x", &["", "x"]),
            ("pre\"mid dle\"post", &["premid dlepost"]),
            ("a\tb\nc", &["a", "b", "c"]),
        ];
        for (text, expected) in cases {
            let words = shell_split(text).unwrap_or_else(|error| panic!("{text:?}: {error}"));
            assert_eq!(words, *expected, "{text:?}");
        }
    }

    #[test]
    fn unfinished_quotes_and_escapes_are_errors() {
        assert!(matches!(
            shell_split("a 'b"),
            Err(ShellSplitError::UnterminatedQuote("single", _))
        ));
        assert!(matches!(
            shell_split("a \"b"),
            Err(ShellSplitError::UnterminatedQuote("double", _))
        ));
        assert!(matches!(
            shell_split("a b\\"),
            Err(ShellSplitError::TrailingBackslash(_))
        ));
    }
}
