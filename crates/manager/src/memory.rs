//! Gives memory the allocator holds but no longer uses back to the operating system,
//! every few seconds. glibc keeps freed memory in its per-thread arenas; under a farm's
//! steady load (thousands of task updates a second, on several threads) that was about
//! 60 MiB of a 170 MiB resident set in `castanet bench --scenario soak` — memory a
//! studio's monitoring would count against the manager.
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often freed memory is returned.
pub const TRIM_INTERVAL: Duration = Duration::from_secs(5);

/// Returns freed memory every `TRIM_INTERVAL` until `shutdown`.
pub async fn trim_periodically(shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(TRIM_INTERVAL) => {}
        }
        // A few milliseconds with the allocator's locks held: off the runtime's threads.
        let _ = tokio::task::spawn_blocking(trim).await;
    }
}

/// Returns the allocator's free memory to the OS; a no-op where the allocator is not glibc's.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator's own heaps.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// How many malloc arenas the manager's threads share. glibc gives up to 8 per core, each
/// keeping its own freed memory; two held the soak's running peak 7 MiB lower at the same
/// throughput (the manager's hot paths allocate briefly, so contention for two is low).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 2;

/// Caps the allocator's arenas. Call before any thread starts: threads already running keep
/// the arena they have. A no-op where the allocator is not glibc's.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; no thread allocates concurrently yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn trimming_stops_with_the_shutdown() {
        let shutdown = CancellationToken::new();
        let running = tokio::spawn(trim_periodically(shutdown.clone()));
        trim();
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), running)
            .await
            .expect("stops at once")
            .expect("no panic");
    }
}
