//! A small tmpfs for tests of full disks. A real full file system is what these tests need:
//! SQLite's page cap or a failing writer would not fail the way a full disk does. Only root
//! can mount one; elsewhere `mount` gives `None` and the test says it was skipped.
#![allow(dead_code)]
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted on a directory, unmounted (lazily) on drop.
pub struct Tmpfs<'a>(&'a Path);

impl<'a> Tmpfs<'a> {
    /// Mounts a tmpfs of `size` (e.g. `"3m"`) on `dir`; `None` when it cannot be mounted.
    pub fn mount(dir: &'a Path, size: &str) -> Option<Self> {
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .is_ok_and(|output| output.status.success());
        mounted.then_some(Tmpfs(dir))
    }

    /// Gives the mounted file system a new size, keeping its files.
    pub fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.0)
            .status()
            .expect("mount runs");
        assert!(status.success(), "remounting the tmpfs with {size}");
    }

    /// Takes every free byte with a filler file (big writes first, then small ones for the
    /// last partial pages); returns its path, to remove when there should be room again.
    pub fn fill(&self) -> PathBuf {
        let path = self.0.join("filler");
        let mut file = std::fs::File::create(&path).expect("filler");
        while file.write_all(&[0u8; 65536]).is_ok() {}
        while file.write_all(&[0u8; 512]).is_ok() {}
        path
    }
}

impl Drop for Tmpfs<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0).status();
    }
}
