//! Validation of everything a client names: checksums, sizes, file paths inside a
//! checkout and checkout paths. Nothing a client sends may escape the shared storage.
use std::path::{Component, Path, PathBuf};

/// Identity of a stored file: SHA-256 (lower-case hex) and size in bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FileKey {
    pub sha: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("checksum \"{0}\" is not a SHA-256 hex digest (64 characters 0-9, a-f)")]
    BadChecksum(String),
    #[error(
        "path \"{0}\" must be relative and stay inside the checkout (no \"..\", no absolute paths)"
    )]
    Escapes(String),
    #[error("path \"{path}\" contains the character {character:?}, which is not allowed")]
    BadCharacter { path: String, character: char },
    #[error("path must not be empty")]
    Empty,
}

impl FileKey {
    pub fn new(sha: &str, size: u64) -> Result<Self, PathError> {
        let valid = sha.len() == 64 && sha.chars().all(|c| c.is_ascii_hexdigit());
        if !valid {
            return Err(PathError::BadChecksum(sha.to_string()));
        }
        Ok(Self {
            sha: sha.to_ascii_lowercase(),
            size,
        })
    }
}

/// A relative path made only of plain names (no root, no "..", no "."-tricks).
pub fn checked_relative(path: &str) -> Result<PathBuf, PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    // Windows separators and drive letters would mean something else on another platform.
    if path.contains('\\') || path.contains(':') || path.contains('\0') {
        return Err(PathError::Escapes(path.to_string()));
    }
    let relative = Path::new(path);
    let mut clean = PathBuf::new();
    for component in relative.components() {
        match component {
            Component::Normal(name) => clean.push(name),
            Component::CurDir => {}
            _ => return Err(PathError::Escapes(path.to_string())),
        }
    }
    if clean.as_os_str().is_empty() {
        return Err(PathError::Empty);
    }
    Ok(clean)
}

/// A checkout path: relative, plain names, and none of the characters that mean
/// something to shells or other platforms.
pub fn checked_checkout_path(path: &str) -> Result<PathBuf, PathError> {
    if let Some(character) = path.chars().find(|c| "?*:;{}\\".contains(*c)) {
        return Err(PathError::BadCharacter {
            path: path.to_string(),
            character,
        });
    }
    checked_relative(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_escape_or_trick_are_refused() {
        for bad in [
            "../../etc/passwd",
            "/etc/passwd",
            "a/../../b",
            "..",
            "a/..",
            "c:/x",
            "a\\..\\b",
            "",
        ] {
            assert!(checked_relative(bad).is_err(), "{bad} must be refused");
        }
        assert_eq!(
            checked_relative("./a/b.blend").unwrap(),
            PathBuf::from("a/b.blend")
        );
        assert!(checked_checkout_path("shot{1}").is_err());
        assert!(checked_checkout_path("jobs/shot*").is_err());
        assert_eq!(
            checked_checkout_path("sprite/shot 01").unwrap(),
            PathBuf::from("sprite/shot 01")
        );
    }

    #[test]
    fn checksums_must_be_sha256_hex() {
        assert!(FileKey::new("abc", 1).is_err());
        assert!(FileKey::new(&"g".repeat(64), 1).is_err());
        let key = FileKey::new(&"AB".repeat(32), 5).unwrap();
        assert_eq!(key.sha, "ab".repeat(32));
    }
}
