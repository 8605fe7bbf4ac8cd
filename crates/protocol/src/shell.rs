//! The one command-line splitting rule of Castanet, shared by the manager's job compiler
//! (`shellSplit`, `on_complete`) and the worker (`exeArgs` of blender/ffmpeg commands), so a
//! line the manager accepts is split the same way where it runs.
//!
//! POSIX-shell-like word splitting: whitespace separates words; 'single quotes' are literal;
//! inside "double quotes" a backslash escapes only `\`, `"`, `$`, `` ` `` and newline; outside
//! quotes a backslash escapes any character, and backslash-newline continues the line.
//! No expansion of any kind happens. [`quote`] is the inverse, for logging a command line.

/// Why a text could not be split into words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("unterminated {quote} quote in {text:?}")]
    UnterminatedQuote { quote: QuoteKind, text: String },
    #[error("{text:?} ends with an unfinished backslash escape")]
    TrailingBackslash { text: String },
}

/// Which quote was left open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuoteKind {
    Single,
    Double,
}

impl std::fmt::Display for QuoteKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Single => "single",
            Self::Double => "double",
        })
    }
}

/// Splits `text` into words like a POSIX shell would, without expansion.
pub fn split(text: &str) -> Result<Vec<String>, SplitError> {
    let unterminated = |quote| SplitError::UnterminatedQuote {
        quote,
        text: text.to_owned(),
    };
    let mut words = Vec::new();
    let mut word = String::new();
    // Tracks whether a word has begun, so that `''` yields an empty word.
    let mut in_word = false;
    let mut quoting: Option<QuoteKind> = None;
    let mut chars = text.chars();

    while let Some(character) = chars.next() {
        match quoting {
            Some(QuoteKind::Single) => match character {
                '\'' => quoting = None,
                _ => word.push(character),
            },
            Some(QuoteKind::Double) => match character {
                '"' => quoting = None,
                '\\' => match chars.next() {
                    Some('\n') => {}
                    Some(escaped @ ('\\' | '"' | '$' | '`')) => word.push(escaped),
                    Some(other) => {
                        word.push('\\');
                        word.push(other);
                    }
                    None => return Err(unterminated(QuoteKind::Double)),
                },
                _ => word.push(character),
            },
            None => match character {
                '\'' => {
                    quoting = Some(QuoteKind::Single);
                    in_word = true;
                }
                '"' => {
                    quoting = Some(QuoteKind::Double);
                    in_word = true;
                }
                '\\' => match chars.next() {
                    // A backslash-newline continues the line.
                    Some('\n') => {}
                    Some(escaped) => {
                        word.push(escaped);
                        in_word = true;
                    }
                    None => {
                        return Err(SplitError::TrailingBackslash {
                            text: text.to_owned(),
                        });
                    }
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
        Some(open) => Err(unterminated(open)),
        None => {
            if in_word {
                words.push(word);
            }
            Ok(words)
        }
    }
}

/// One word as a POSIX shell would need it typed: bare when it is plainly safe, otherwise in
/// single quotes (an empty word becomes `''`).
pub fn quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Words joined into one command line that [`split`] turns back into the same words.
pub fn join<'a>(words: impl IntoIterator<Item = &'a str>) -> String {
    words.into_iter().map(quote).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        split(text).unwrap_or_else(|error| panic!("{text:?}: {error}"))
    }

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
            ("\"\\$x \\` \\\\\"", &["$x ` \\"]),
            ("a\\ b c", &["a b", "c"]),
            ("'' x", &["", "x"]),
            ("\"\"", &[""]),
            ("pre\"mid dle\"post", &["premid dlepost"]),
            ("a\tb\nc", &["a", "b", "c"]),
            ("a\\\nb", &["ab"]),
            ("\"a\\\nb\"", &["ab"]),
            ("'a\\b'", &["a\\b"]),
            (
                r#" -b  -y 'a b' "c \"d\"" e\ f"#,
                &["-b", "-y", "a b", "c \"d\"", "e f"],
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(words(text), *expected, "{text:?}");
        }
    }

    #[test]
    fn unfinished_quotes_and_escapes_are_errors_naming_the_problem() {
        let error = split("a 'b").unwrap_err();
        assert_eq!(
            error,
            SplitError::UnterminatedQuote {
                quote: QuoteKind::Single,
                text: "a 'b".into()
            }
        );
        assert_eq!(error.to_string(), r#"unterminated single quote in "a 'b""#);
        assert_eq!(
            split("a \"b").unwrap_err().to_string(),
            r#"unterminated double quote in "a \"b""#
        );
        assert!(matches!(
            split("\"a\\"),
            Err(SplitError::UnterminatedQuote {
                quote: QuoteKind::Double,
                ..
            })
        ));
        assert_eq!(
            split("a b\\").unwrap_err().to_string(),
            r#""a b\\" ends with an unfinished backslash escape"#
        );
    }

    #[test]
    fn quoting_is_the_inverse_of_splitting() {
        let original = [
            "/bin/sh",
            "-c",
            "echo 'hi' there",
            "",
            "a=b/c.d",
            "tab\there",
            "$HOME",
        ];
        let line = join(original);
        assert_eq!(
            line,
            r#"/bin/sh -c 'echo '\''hi'\'' there' '' a=b/c.d 'tab	here' '$HOME'"#
        );
        assert_eq!(words(&line), original);
    }
}
