//! File globs for the FFmpeg commands: wildcards (`*`, `?`, `[…]`) in the file-name part
//! only, e.g. `/render/shot/*.png`; the directory part is taken literally.

use std::path::{Path, PathBuf};

use castanet_protocol::v1::FaultClass;

use super::CommandError;

/// The paths matching `pattern`, sorted. A missing directory matches nothing.
pub fn expand(pattern: &str) -> Result<Vec<PathBuf>, CommandError> {
    let path = Path::new(pattern);
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(CommandError::invalid(format!(
            "{pattern:?} is not a file glob"
        )));
    };
    let dir_text = dir.to_string_lossy();
    if dir_text.contains(['*', '?', '[']) {
        return Err(CommandError::invalid(format!(
            "glob {pattern:?}: only the file name may contain wildcards"
        )));
    }
    let name: Vec<char> = name.to_string_lossy().chars().collect();
    let dir = if dir_text.is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(CommandError::new(
                FaultClass::MissingInput,
                format!("cannot list {}: {e}", dir.display()),
            ));
        }
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|entry| {
            let file_name: Vec<char> = entry.file_name().to_string_lossy().chars().collect();
            !file_name.starts_with(&['.']) && matches(&name, &file_name)
        })
        .map(|entry| entry.path())
        .collect();
    found.sort();
    Ok(found)
}

/// Shell-style wildcard match of a whole file name.
fn matches(pattern: &[char], name: &[char]) -> bool {
    match pattern.first() {
        None => name.is_empty(),
        Some('*') => (0..=name.len()).any(|skip| matches(&pattern[1..], &name[skip..])),
        Some('?') => !name.is_empty() && matches(&pattern[1..], &name[1..]),
        Some('[') => match (pattern.iter().position(|&c| c == ']'), name.first()) {
            (Some(close), Some(&c)) if close > 1 => {
                let set = &pattern[1..close];
                let (negate, set) = match set.first() {
                    Some('!' | '^') => (true, &set[1..]),
                    _ => (false, set),
                };
                let mut hit = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == '-' {
                        hit |= set[i] <= c && c <= set[i + 2];
                        i += 3;
                    } else {
                        hit |= set[i] == c;
                        i += 1;
                    }
                }
                hit != negate && matches(&pattern[close + 1..], &name[1..])
            }
            _ => name.first() == Some(&'[') && matches(&pattern[1..], &name[1..]),
        },
        Some(&p) => name.first() == Some(&p) && matches(&pattern[1..], &name[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, name: &str) -> bool {
        let p: Vec<char> = pattern.chars().collect();
        let n: Vec<char> = name.chars().collect();
        matches(&p, &n)
    }

    #[test]
    fn wildcards() {
        assert!(m("*.png", "frame_0001.png"));
        assert!(!m("*.png", "frame_0001.png.tmp"));
        assert!(m("f_??.exr", "f_01.exr"));
        assert!(m("f_[0-9].jpg", "f_7.jpg"));
        assert!(!m("f_[!0-9].jpg", "f_7.jpg"));
        assert!(m("plain", "plain"));
    }

    #[test]
    fn expanding_lists_sorted_matches() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        for name in ["b.png", "a.png", "c.txt", ".hidden.png"] {
            std::fs::write(dir.path().join(name), "x")?;
        }
        let pattern = format!("{}/*.png", dir.path().display());
        let found = expand(&pattern)?;
        assert_eq!(found, [dir.path().join("a.png"), dir.path().join("b.png")]);
        assert_eq!(
            expand("/nonexistent/castanet/*.png")?,
            Vec::<PathBuf>::new()
        );
        assert!(expand("/tmp/*/x.png").is_err());
        Ok(())
    }
}
