//! The `path` object of job-type scripts: platform-agnostic path helpers.
//!
//! Scripts build paths for workers on any OS, so backslashes become `/` first and every result
//! uses `/`. Cleaning follows POSIX path rules (`a//b/./c/..` → `a/b`), except that a leading
//! `//` (a Windows UNC share such as `\\server\share`) is kept.

/// Joins the non-empty parts with `/` and cleans the result; all parts empty gives `""`.
pub fn join(parts: &[String]) -> String {
    let parts: Vec<String> = parts
        .iter()
        .filter(|part| !part.is_empty())
        .map(|part| to_slash(part))
        .collect();
    if parts.is_empty() {
        return String::new();
    }
    clean(&parts.join("/"))
}

/// Everything but the last element: `a/b/c.blend` → `a/b`, `c.blend` → `.`, `/c` → `/`.
pub fn dirname(path: &str) -> String {
    let path = to_slash(path);
    match path.rfind('/') {
        Some(last_slash) => clean(&path[..=last_slash]),
        None => ".".to_owned(),
    }
}

/// The last element, ignoring trailing slashes: `a/b/c.blend` → `c.blend`, `""` → `.`.
pub fn basename(path: &str) -> String {
    let path = to_slash(path);
    if path.is_empty() {
        return ".".to_owned();
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".to_owned();
    }
    match trimmed.rfind('/') {
        Some(last_slash) => trimmed[last_slash + 1..].to_owned(),
        None => trimmed.to_owned(),
    }
}

/// The last element without its extension: `a/scene.flamenco.blend` → `scene.flamenco`.
/// A name whose only dot is its first character (`.hidden`) is kept whole.
pub fn stem(path: &str) -> String {
    let base = basename(path);
    match base.rfind('.') {
        Some(dot) if dot > 0 => base[..dot].to_owned(),
        _ => base,
    }
}

fn to_slash(path: &str) -> String {
    path.replace('\\', "/")
}

/// POSIX cleaning: drops empty and `.` elements, resolves `..` where possible.
fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_owned();
    }
    let is_unc = path.starts_with("//") && !path.starts_with("///");
    let rooted = path.starts_with('/');
    let mut elements: Vec<&str> = Vec::new();
    for element in path.split('/') {
        match element {
            "" | "." => {}
            ".." => match elements.last() {
                Some(&last) if last != ".." => {
                    elements.pop();
                }
                // Above the root there is nothing to go up to.
                _ if rooted => {}
                _ => elements.push(".."),
            },
            _ => elements.push(element),
        }
    }
    let joined = elements.join("/");
    match (is_unc, rooted, joined.is_empty()) {
        (true, _, _) => format!("//{joined}"),
        (false, true, _) => format!("/{joined}"),
        (false, false, true) => ".".to_owned(),
        (false, false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|part| (*part).to_owned()).collect()
    }

    #[test]
    fn join_cleans_and_uses_forward_slashes() {
        let cases: &[(&[&str], &str)] = &[
            (&["a", "b", "c"], "a/b/c"),
            (&["/render", "shot", "frames"], "/render/shot/frames"),
            (&["C:\\render", "frames"], "C:/render/frames"),
            (&["a/", "/b"], "a/b"),
            (&["a", "", "b"], "a/b"),
            (&["a/b", "../c"], "a/c"),
            (&["", ""], ""),
            (&["\\\\server\\share", "x"], "//server/share/x"),
            (&["/a", "../../b"], "/b"),
            (&["a", ".", "b"], "a/b"),
        ];
        for (parts, expected) in cases {
            assert_eq!(join(&strings(parts)), *expected, "{parts:?}");
        }
    }

    #[test]
    fn dirname_basename_and_stem() {
        let cases: &[(&str, &str, &str, &str)] = &[
            ("a/b/c.blend", "a/b", "c.blend", "c"),
            ("c.blend", ".", "c.blend", "c"),
            ("/c.blend", "/", "c.blend", "c"),
            (
                "C:\\shots\\s01.flamenco.blend",
                "C:/shots",
                "s01.flamenco.blend",
                "s01.flamenco",
            ),
            ("//server/share/f.blend", "//server/share", "f.blend", "f"),
            ("a/b/", "a/b", "b", "b"),
            ("", ".", ".", "."),
            ("/", "/", "/", "/"),
            ("dir/.hidden", "dir", ".hidden", ".hidden"),
            ("dir/noext", "dir", "noext", "noext"),
        ];
        for (path, dir, base, path_stem) in cases {
            assert_eq!(dirname(path), *dir, "dirname({path:?})");
            assert_eq!(basename(path), *base, "basename({path:?})");
            assert_eq!(stem(path), *path_stem, "stem({path:?})");
        }
    }
}
