//! Windows backend of `platform`. Not compiled on the project machine (no Windows target), so
//! it stays small: a new process group at spawn, `taskkill /T /F` to end the whole tree.

/// CREATE_NEW_PROCESS_GROUP: the command and its children form a group of their own.
const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;

pub fn start_own_process_tree(command: &mut tokio::process::Command) {
    command.creation_flags(CREATE_NEW_PROCESS_GROUP);
}

pub fn die_with_worker(_command: &mut tokio::process::Command) {
    // No parent-death signal on Windows; the tree kill on abort and exit still applies.
}

/// `taskkill /T /F` ends the process and every process it started, however deep.
pub fn kill_process_tree(pid: u32) {
    let result = std::process::Command::new("taskkill")
        .args(["/T", "/F", "/PID", &pid.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    if let Err(error) = result {
        tracing::warn!(pid, %error, "could not run taskkill to end the process tree");
    }
}

pub fn prefer_for_oom_kill(_pid: u32) {}

pub fn process_start_time(_pid: u32) -> Option<u64> {
    None
}

pub fn boot_id() -> String {
    String::new()
}

pub fn process_tree_members(_root: u32) -> Vec<u32> {
    Vec::new()
}

pub fn hostname() -> Option<String> {
    std::env::var("COMPUTERNAME").ok()
}

pub fn terminating_signal(_status: &std::process::ExitStatus) -> Option<i32> {
    None
}

pub fn make_private_dir_builder(_builder: &mut std::fs::DirBuilder) {}

pub fn make_private_file_options(_options: &mut std::fs::OpenOptions) {}

pub fn make_runnable(_path: &std::path::Path) -> std::io::Result<()> {
    Ok(())
}

/// Needs Developer Mode or the symlink privilege on Windows.
pub fn symlink_file(target: &std::path::Path, link: &std::path::Path) -> std::io::Result<()> {
    std::os::windows::fs::symlink_file(target, link)
}
