//! Unix backend of `platform`: process groups, SIGKILL, and Linux's /proc and parent-death signal.

use std::io;

pub fn start_own_process_tree(command: &mut tokio::process::Command) {
    command.process_group(0);
}

/// The kernel sends SIGKILL when the spawning *thread* ends: commands are spawned from the
/// runtime's worker threads, which live as long as the process (never from `spawn_blocking`
/// threads, which end when idle).
#[cfg(target_os = "linux")]
pub fn die_with_worker(command: &mut tokio::process::Command) {
    let parent = libc::pid_t::try_from(std::process::id()).unwrap_or(0);
    // SAFETY: between fork and exec only async-signal-safe calls are made (prctl, getppid).
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(io::Error::last_os_error());
            }
            // The worker died before the signal was armed: do not start at all.
            if libc::getppid() != parent {
                return Err(io::Error::other(
                    "the worker exited while starting the command",
                ));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
pub fn die_with_worker(_command: &mut tokio::process::Command) {}

/// SIGKILL to every process in the group led by `pid`.
pub fn kill_process_tree(pid: u32) {
    let Ok(pgid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: killpg only sends a signal; a group that no longer exists gives ESRCH.
    unsafe {
        libc::killpg(pgid, libc::SIGKILL);
    }
}

/// Children get this `oom_score_adj` so the kernel picks them before the worker.
#[cfg(target_os = "linux")]
const CHILD_OOM_SCORE_ADJ: &str = "500";

#[cfg(target_os = "linux")]
pub fn prefer_for_oom_kill(pid: u32) {
    if let Err(e) = std::fs::write(format!("/proc/{pid}/oom_score_adj"), CHILD_OOM_SCORE_ADJ) {
        tracing::debug!(pid, error = %e, "could not raise the child's oom_score_adj");
    }
}

#[cfg(not(target_os = "linux"))]
pub fn prefer_for_oom_kill(_pid: u32) {}

/// The start time of process `pid` in clock ticks since boot (field 22 of its stat).
#[cfg(target_os = "linux")]
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state …": comm may hold spaces and parentheses, so split after the last ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(not(target_os = "linux"))]
pub fn process_start_time(_pid: u32) -> Option<u64> {
    None
}

#[cfg(target_os = "linux")]
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[cfg(not(target_os = "linux"))]
pub fn boot_id() -> String {
    String::new()
}

/// Live (non-zombie) processes in process group `pgid`.
#[cfg(target_os = "linux")]
pub fn process_tree_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace().collect())
                .unwrap_or_default();
            fields.first() != Some(&"Z") && fields.get(2).and_then(|g| g.parse().ok()) == Some(pgid)
        })
        .collect()
}

#[cfg(not(target_os = "linux"))]
pub fn process_tree_members(_pgid: u32) -> Vec<u32> {
    Vec::new()
}

pub fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the pointer and length describe `buf`, which outlives the call.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..len]).into_owned())
}

pub fn terminating_signal(status: &std::process::ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(status)
}

pub fn make_private_dir_builder(builder: &mut std::fs::DirBuilder) {
    std::os::unix::fs::DirBuilderExt::mode(builder, 0o700);
}

pub fn make_private_file_options(options: &mut std::fs::OpenOptions) {
    std::os::unix::fs::OpenOptionsExt::mode(options, 0o600);
}

pub fn make_runnable(path: &std::path::Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

pub fn symlink_file(target: &std::path::Path, link: &std::path::Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}
