//! The worker's per-OS code behind one OS-neutral API: starting a command as the root of a
//! process tree the worker can kill as a whole, tying it to the worker's life, the process
//! facts the leftover sweep needs, and file permissions. Callers use only these functions; `unix.rs` and
//! `windows.rs` hold the implementations.
//!
//! The Windows backend cannot be compiled on the project machine (no Windows target is
//! installed), so it is kept small: a new process group at spawn and `taskkill /T /F` to end
//! the tree.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as imp;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as imp;

/// Makes the command the root of a process tree of its own, so [`kill_process_tree`] with its
/// pid ends everything it starts (a process group on Unix, a new process group on Windows).
pub fn start_own_process_tree(command: &mut tokio::process::Command) {
    imp::start_own_process_tree(command);
}

/// The command is killed when the worker dies, however it dies, where the OS offers that
/// (Linux's parent-death signal); elsewhere the tree kill on abort and exit still applies.
pub fn die_with_worker(command: &mut tokio::process::Command) {
    imp::die_with_worker(command);
}

/// Kills the process tree rooted at `pid` (started with [`start_own_process_tree`]).
pub fn kill_process_tree(pid: u32) {
    imp::kill_process_tree(pid);
}

/// Makes the kernel's out-of-memory killer pick the command before the worker (Linux only).
pub fn prefer_for_oom_kill(pid: u32) {
    imp::prefer_for_oom_kill(pid);
}

/// When process `pid` started, in an OS-specific unit; with [`boot_id`] it tells a recorded
/// pid from a reused one. `None` when the OS does not say.
pub fn process_start_time(pid: u32) -> Option<u64> {
    imp::process_start_time(pid)
}

/// An id of the current boot (empty when unknown).
pub fn boot_id() -> String {
    imp::boot_id()
}

/// Live (non-zombie) processes of the tree started as `root` (empty when the OS cannot say).
pub fn process_tree_members(root: u32) -> Vec<u32> {
    imp::process_tree_members(root)
}

/// This machine's host name as the OS reports it.
pub fn hostname() -> Option<String> {
    imp::hostname()
}

/// The signal that ended a process, where the OS has signals.
pub fn terminating_signal(status: &std::process::ExitStatus) -> Option<i32> {
    imp::terminating_signal(status)
}

/// Only the worker's user may enter directories this builder creates (0700 on Unix; Windows
/// relies on the profile directory's ACL).
pub fn make_private_dir_builder(builder: &mut std::fs::DirBuilder) {
    imp::make_private_dir_builder(builder);
}

/// Only the worker's user may read files these options create (0600 on Unix).
pub fn make_private_file_options(options: &mut std::fs::OpenOptions) {
    imp::make_private_file_options(options);
}

/// Lets a written script file be run directly (0755 on Unix; Windows runs by extension).
pub fn make_runnable(path: &std::path::Path) -> std::io::Result<()> {
    imp::make_runnable(path)
}

/// Makes `link` a symbolic link to the file `target` (the mirror's links into the input
/// cache of a worker without shared storage).
pub fn symlink_file(target: &std::path::Path, link: &std::path::Path) -> std::io::Result<()> {
    imp::symlink_file(target, link)
}
