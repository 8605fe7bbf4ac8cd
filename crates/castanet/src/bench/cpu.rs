//! CPU time of this process's threads (Linux `/proc/self/task/*/schedstat`, nanoseconds on
//! the CPU), split into the threads of one name and all the others: what the simulated SSE
//! clients cost, apart from what the manager and the simulated workers cost.
use std::time::Duration;

/// CPU time used so far by the threads named `name` and by every other thread of the process.
/// Zero where /proc cannot tell (not Linux).
pub fn split_by_thread_name(name: &str) -> (Duration, Duration) {
    let (mut named, mut others) = (0u64, 0u64);
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return (Duration::ZERO, Duration::ZERO);
    };
    for task in tasks.flatten() {
        let path = task.path();
        let Ok(schedstat) = std::fs::read_to_string(path.join("schedstat")) else {
            continue;
        };
        let Some(on_cpu) = schedstat
            .split_whitespace()
            .next()
            .and_then(|ns| ns.parse::<u64>().ok())
        else {
            continue;
        };
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.trim_end() == name {
            named += on_cpu;
        } else {
            others += on_cpu;
        }
    }
    (Duration::from_nanos(named), Duration::from_nanos(others))
}
