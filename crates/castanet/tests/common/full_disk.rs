//! Disks that fill up, for the resource-exhaustion tests: a small tmpfs (root only), a
//! filler file that takes every free byte of it, workers whose log goes to a file the test
//! reads, and checks of a marker task's log.
use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{BIN, ManagerProcess, WorkerProcess};

/// A tmpfs mounted on a directory, unmounted on drop.
pub struct Tmpfs {
    pub dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount` syntax, e.g. `32m`) on `dir` (made if missing);
    /// `Err` says why it cannot be mounted (not root, no `mount`).
    pub fn mount(dir: &Path, size: &str) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "mount -t tmpfs: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// Takes every free byte with a filler file; removing it gives the space back.
    pub fn fill(&self) -> Filler {
        let path = self.dir.join("filler");
        let mut file = File::create(&path).expect("filler file");
        let block = vec![0u8; 64 * 1024];
        // tmpfs hands out whole pages: once a write fails, not one page is left.
        while file.write_all(&block).is_ok() {}
        while file.write_all(&block[..512]).is_ok() {}
        Filler(path)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// The file that keeps a tmpfs full.
pub struct Filler(PathBuf);

impl Filler {
    /// Gives the space back.
    pub fn remove(self) {
        std::fs::remove_file(&self.0).expect("remove the filler");
    }
}

/// Starts a worker whose log (stderr) goes to `log`, so the test can read what it said.
pub fn start_worker_logging_to(
    manager: &ManagerProcess,
    data_dir: &Path,
    name: &str,
    slots: u32,
    log: &Path,
) -> WorkerProcess {
    let stderr = File::create(log).expect("worker log file");
    let child = Command::new(BIN)
        .args(["worker", "--manager", &manager.url, "--name", name])
        .args(["--slots", &slots.to_string()])
        .arg("--data-dir")
        .arg(data_dir)
        .env("CASTANET_REGISTRATION_SECRET", &manager.secret)
        .env("CASTANET_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("worker starts");
    WorkerProcess {
        child,
        name: name.to_string(),
    }
}

/// Whether the log of a marker task (`common::markers`, `ticks` ticks) holds its run's start
/// line, every tick once, its end line, and no line twice; `Err` says what is wrong.
pub fn check_marker_log(log: &str, task: &str, ticks: u32) -> Result<(), String> {
    let mut seen = HashSet::new();
    let mut marks = Vec::new();
    for line in log.lines().filter(|line| !line.is_empty()) {
        if !seen.insert(line) {
            return Err(format!("line stored twice: {line:?}"));
        }
        // The worker prefixes a program's output with `pid=N > `.
        let output = line.split_once(" > ").map_or(line, |(_, output)| output);
        let fields: Vec<&str> = output.split_whitespace().collect();
        if let [kind, name, _pid, count] = fields[..]
            && name == task
            && matches!(kind, "start" | "tick" | "end")
        {
            marks.push(format!("{kind} {count}"));
        }
    }
    let expected: Vec<String> = std::iter::once("start 0".to_string())
        .chain((1..=ticks).map(|i| format!("tick {i}")))
        .chain(std::iter::once(format!("end {ticks}")))
        .collect();
    if marks != expected {
        return Err(format!(
            "{task}: marks {marks:?}, expected start 0, tick 1..{ticks}, end {ticks}"
        ));
    }
    Ok(())
}
