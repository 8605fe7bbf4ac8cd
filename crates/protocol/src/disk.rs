//! File system helpers both sides use: free space on a file system (the manager's database check,
//! the worker's self-check) and removing the leftovers of transfers nobody continued.
use std::path::Path;

/// Bytes an unprivileged process may still write on the file system holding `path`.
#[cfg(unix)]
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("the path holds a NUL byte"))?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a NUL-terminated string and `stats` is written by a successful call
    // before it is read.
    let stats = unsafe {
        if libc::statvfs(path.as_ptr(), stats.as_mut_ptr()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        stats.assume_init()
    };
    #[allow(clippy::unnecessary_cast)] // the field types differ between Unix systems
    Ok((stats.f_bavail as u64).saturating_mul(stats.f_frsize as u64))
}

/// Not measured on this system.
#[cfg(not(unix))]
pub fn free_bytes(_path: &Path) -> std::io::Result<u64> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "free space is not measured on this system",
    ))
}

#[cfg(all(test, unix))]
mod tests {
    #[test]
    fn a_real_directory_has_some_room_and_a_missing_one_is_an_error() {
        let dir = std::env::temp_dir();
        assert!(super::free_bytes(&dir).expect("statvfs") > 0);
        assert!(super::free_bytes(&dir.join("no such directory here")).is_err());
    }
}

/// Removes the files directly in `dir` not modified for `max_age` (leftovers of transfers
/// nobody continued); returns how many. A missing directory holds none.
pub fn remove_files_older_than(dir: &std::path::Path, max_age: std::time::Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let stale = |entry: &std::fs::DirEntry| {
        entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|modified| modified.elapsed().is_ok_and(|age| age > max_age))
    };
    entries
        .flatten()
        .filter(stale)
        .filter(|entry| std::fs::remove_file(entry.path()).is_ok())
        .count()
}
