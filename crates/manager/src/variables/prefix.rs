//! Path-prefix matching for variable values: case-insensitive, `/` and `\` equal, and the
//! match ends where a path component ends.

fn is_separator(c: char) -> bool {
    c == '/' || c == '\\'
}

fn same_path_char(a: char, b: char) -> bool {
    (is_separator(a) && is_separator(b)) || a.to_lowercase().eq(b.to_lowercase())
}

/// The byte length of the part of `text` that `prefix` matches, when `text` starts with
/// `prefix` (ignoring case and the kind of slash) and the match ends at the end of `text`, at
/// a separator, or with a separator of its own. An empty prefix matches nothing.
pub fn matched_prefix_len(text: &str, prefix: &str) -> Option<usize> {
    if prefix.is_empty() {
        return None;
    }
    let mut text_chars = text.char_indices();
    for expected in prefix.chars() {
        let (_, actual) = text_chars.next()?;
        if !same_path_char(actual, expected) {
            return None;
        }
    }
    let matched = text_chars.next().map_or(text.len(), |(index, _)| index);
    let rest = &text[matched..];
    let ends_component =
        prefix.ends_with(is_separator) || rest.is_empty() || rest.starts_with(is_separator);
    ends_component.then_some(matched)
}

/// `value` without trailing separators, but never reduced to nothing (`/` stays `/`, `\\` stays).
pub fn trim_trailing_separators(value: &str) -> &str {
    let trimmed = value.trim_end_matches(is_separator);
    if trimmed.is_empty() { value } else { trimmed }
}

/// `text` with every separator turned into the one `platform` uses.
pub fn to_platform_separators(text: &str, platform: &str) -> String {
    if platform == super::WINDOWS {
        text.replace('/', "\\")
    } else {
        text.replace('\\', "/")
    }
}

/// Windows reads `X:` as "the current directory on drive X"; a drive letter alone, or followed
/// directly by a name, gets its root separator (`S:` → `S:\`, `S:jobs` → `S:\jobs`).
pub fn ensure_drive_absolute(text: &str) -> String {
    let mut chars = text.chars();
    let (Some(letter), Some(':')) = (chars.next(), chars.next()) else {
        return text.to_owned();
    };
    if !letter.is_ascii_alphabetic() {
        return text.to_owned();
    }
    let rest = &text[2..];
    if rest.starts_with(is_separator) {
        text.to_owned()
    } else {
        format!("{letter}:\\{rest}")
    }
}
