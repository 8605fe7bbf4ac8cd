//! Mirror paths: how a worker without shared storage names the farm's files. A farm path as
//! the manager writes it (`/srv/farm/jobs/a.blend`, `S:\projects\a.blend`) becomes a relative
//! path with `/` separators (`srv/farm/jobs/a.blend`, `S/projects/a.blend`); the worker keeps
//! the file at that path under its mirror directory. The manager turns mirror paths back
//! into its own paths; both sides refuse anything that could leave the mirror.

/// The mirror path of `farm_path` (an absolute path in the manager's notation), or `None`
/// when it is not absolute or names `..`.
pub fn from_farm_path(farm_path: &str) -> Option<String> {
    let unified = farm_path.replace('\\', "/");
    let rest = if let Some(rest) = unified.strip_prefix('/') {
        rest.to_owned()
    } else {
        let mut chars = unified.chars();
        let drive = chars.next().filter(char::is_ascii_alphabetic)?;
        let after = chars.as_str().strip_prefix(':')?;
        if !(after.is_empty() || after.starts_with('/')) {
            return None;
        }
        format!("{drive}/{}", after.trim_start_matches('/'))
    };
    let parts: Vec<&str> = rest
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    if parts.contains(&"..") {
        return None;
    }
    Some(parts.join("/"))
}

/// Checks a mirror path received from the other side: relative, `/`-separated, no `..`,
/// no empty or `.` parts, no NUL. Returns its parts.
pub fn parts(mirror_path: &str) -> Result<Vec<&str>, String> {
    if mirror_path.is_empty() {
        return Err("an empty path".to_owned());
    }
    if mirror_path.starts_with('/') || mirror_path.contains('\\') || mirror_path.contains('\0') {
        return Err(format!(
            "{mirror_path:?} is not a mirror path (relative, '/' separators)"
        ));
    }
    let parts: Vec<&str> = mirror_path.split('/').collect();
    if parts
        .iter()
        .any(|part| part.is_empty() || *part == "." || *part == "..")
    {
        return Err(format!("{mirror_path:?} has an empty, '.' or '..' part"));
    }
    Ok(parts)
}

/// The farm path (in the notation of a manager on Windows when `windows`) a mirror path
/// stands for: `S/projects/a.blend` is `S:\projects\a.blend` on Windows, and
/// `/S/projects/a.blend` elsewhere.
pub fn to_farm_path(mirror_path: &str, windows: bool) -> Result<String, String> {
    let parts = parts(mirror_path)?;
    if windows {
        let drive = parts[0];
        if drive.len() != 1 || !drive.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(format!(
                "{mirror_path:?} does not start with a drive letter"
            ));
        }
        Ok(format!("{drive}:\\{}", parts[1..].join("\\")))
    } else {
        Ok(format!("/{}", parts.join("/")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn farm_paths_become_relative_mirror_paths() {
        assert_eq!(
            from_farm_path("/srv/farm/jobs/a.blend").as_deref(),
            Some("srv/farm/jobs/a.blend")
        );
        assert_eq!(
            from_farm_path("S:\\projects\\a.blend").as_deref(),
            Some("S/projects/a.blend")
        );
        assert_eq!(from_farm_path("//srv/./x/").as_deref(), Some("srv/x"));
        assert_eq!(from_farm_path("relative/a.blend"), None);
        assert_eq!(from_farm_path("/srv/../etc/passwd"), None);
        assert_eq!(from_farm_path("S:projects"), None);
    }

    #[test]
    fn mirror_paths_go_back_to_the_managers_notation() {
        assert_eq!(
            to_farm_path("srv/farm/a.blend", false).as_deref(),
            Ok("/srv/farm/a.blend")
        );
        assert_eq!(
            to_farm_path("S/projects/a.blend", true).as_deref(),
            Ok("S:\\projects\\a.blend")
        );
        for hostile in ["", "/etc/passwd", "a/../b", "a//b", "a\\b", "./a", "a\0b"] {
            assert!(to_farm_path(hostile, false).is_err(), "{hostile:?}");
        }
        assert!(to_farm_path("srv/a", true).is_err());
    }
}
