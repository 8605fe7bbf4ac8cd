//! The manager's background work. Everything the manager runs outside a request — the
//! dispatcher, the monitors, the deleter, notification delivery, follow-ups a request
//! leaves behind — is spawned here, so that shutdown stops it with one cancellation and
//! waits for it before the store is closed: no task writes to a closed database.
use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Spawns and tracks the manager's background tasks. Cheap to clone.
#[derive(Clone, Default)]
pub struct Background {
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl Background {
    /// Runs `task` until it ends; shutdown waits for it.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(task);
    }

    /// Cancelled when the manager starts to stop: long-running tasks select on it.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Asks every task to stop and waits for them, at most `grace`. Returns how many were
    /// still running when the grace ran out (they are left to the runtime's end).
    pub async fn stop(&self, grace: Duration) -> usize {
        self.shutdown.cancel();
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait()).await.is_ok() {
            return 0;
        }
        self.tasks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stop_cancels_and_waits_for_every_task() {
        let background = Background::default();
        let (finished, mut finished_rx) = tokio::sync::mpsc::unbounded_channel();
        for n in 0..3 {
            let shutdown = background.shutdown().clone();
            let finished = finished.clone();
            background.spawn(async move {
                shutdown.cancelled().await;
                // Work after the cancellation still runs before `stop` returns.
                tokio::task::yield_now().await;
                let _ = finished.send(n);
            });
        }
        drop(finished);
        assert_eq!(background.stop(Duration::from_secs(10)).await, 0);
        let mut ended = Vec::new();
        while let Ok(n) = finished_rx.try_recv() {
            ended.push(n);
        }
        ended.sort();
        assert_eq!(ended, vec![0, 1, 2]);
    }

    #[tokio::test]
    async fn a_task_that_ignores_the_cancellation_is_counted_after_the_grace() {
        let background = Background::default();
        background.spawn(std::future::pending());
        assert_eq!(background.stop(Duration::from_millis(20)).await, 1);
    }
}
