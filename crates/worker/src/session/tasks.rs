//! The tasks this worker process is running: one runner per task lease, abortable one by
//! one or all at once, and listed as leases when the worker reconnects.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use castanet_protocol::v1::{AssignTask, TaskLease};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::slots::SlotPool;
use crate::runner::{self, Outcome, RunnerDeps};
use crate::timings::TaskTimings;

/// The running-task table.
pub struct RunningTasks {
    deps: RunnerDeps,
    table: Arc<Mutex<HashMap<String, Entry>>>,
    tracker: TaskTracker,
    /// How many tasks are in the table (for "go offline once idle").
    count: watch::Sender<usize>,
    /// How many runners have not ended yet: the table's, plus aborted ones still stopping.
    alive: watch::Sender<usize>,
    /// Which slot each runner occupies (its GPUs when slots are pinned).
    slots: SlotPool,
}

/// Aborts every running task of a [`RunningTasks`] from elsewhere.
#[derive(Clone)]
pub struct TaskAborter {
    table: Arc<Mutex<HashMap<String, Entry>>>,
    count: watch::Sender<usize>,
}

impl TaskAborter {
    /// Aborts every running task; returns how many there were.
    pub fn abort_all(&self) -> usize {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let aborted = table.len();
        for (_, entry) in table.drain() {
            entry.cancel.cancel();
        }
        self.count.send_replace(0);
        aborted
    }
}

struct Entry {
    lease_epoch: u64,
    cancel: CancellationToken,
}

impl RunningTasks {
    pub fn new(deps: RunnerDeps, slots: u32) -> Self {
        Self {
            deps,
            table: Arc::default(),
            tracker: TaskTracker::new(),
            count: watch::Sender::new(0),
            alive: watch::Sender::new(0),
            slots: SlotPool::new(slots),
        }
    }

    /// Starts a runner for `task`; its token is a child of `parent`. A repeated assignment
    /// of the same lease is ignored; a newer lease of a running task replaces the old run.
    pub fn start(&self, mut task: AssignTask, parent: &CancellationToken) {
        let timings = Arc::new(TaskTimings::received_now());
        let task_id = task.task_id.clone();
        let lease_epoch = task.lease_epoch;
        let cancel = parent.child_token();
        {
            let mut table = self.lock();
            if let Some(old) = table.get(&task_id) {
                if old.lease_epoch == lease_epoch {
                    tracing::debug!(%task_id, lease_epoch, "task already running; ignoring the repeated assignment");
                    return;
                }
                tracing::info!(%task_id, old = old.lease_epoch, new = lease_epoch, "task reassigned with a new lease; restarting it");
                old.cancel.cancel();
            }
            table.insert(
                task_id.clone(),
                Entry {
                    lease_epoch,
                    cancel: cancel.clone(),
                },
            );
            self.count.send_replace(table.len());
        }
        let slot = self.slots.acquire(task.slot);
        task.slot = slot.slot();
        tracing::info!(
            %task_id,
            task = %task.task_name,
            job = %task.job_name,
            slot = task.slot,
            "task started"
        );
        let deps = self.deps.clone();
        let table = self.table.clone();
        let count = self.count.clone();
        let alive = self.alive.clone();
        alive.send_modify(|n| *n += 1);
        self.tracker.spawn(async move {
            let outcome = runner::run_task(&deps, task, cancel, timings).await;
            // Free only now: the task's processes are gone.
            drop(slot);
            {
                let mut table = table.lock().unwrap_or_else(PoisonError::into_inner);
                if table
                    .get(&task_id)
                    .is_some_and(|e| e.lease_epoch == lease_epoch)
                {
                    table.remove(&task_id);
                }
                count.send_replace(table.len());
            }
            alive.send_modify(|n| *n = n.saturating_sub(1));
            match outcome {
                Outcome::Completed => tracing::info!(%task_id, "task finished: completed"),
                Outcome::Failed(reason) => {
                    tracing::info!(%task_id, %reason, "task finished: failed")
                }
                Outcome::Aborted => tracing::info!(%task_id, "task aborted"),
                Outcome::Stopped(reason) => tracing::warn!(%task_id, %reason, "task stopped"),
            }
        });
    }

    /// Aborts the task if it runs under `lease_epoch` or an older lease (0 = any lease).
    /// Returns whether a task was aborted.
    pub fn abort(&self, task_id: &str, lease_epoch: u64) -> bool {
        let mut table = self.lock();
        let matches = table
            .get(task_id)
            .is_some_and(|e| lease_epoch == 0 || e.lease_epoch <= lease_epoch);
        if matches && let Some(entry) = table.remove(task_id) {
            entry.cancel.cancel();
            self.count.send_replace(table.len());
        }
        matches
    }

    /// Aborts every running task.
    pub fn abort_all(&self) {
        self.aborter().abort_all();
    }

    /// A handle that aborts every running task, for the fence timer.
    pub fn aborter(&self) -> TaskAborter {
        TaskAborter {
            table: self.table.clone(),
            count: self.count.clone(),
        }
    }

    /// The leases of the running tasks, for ConnectRequest.
    pub fn leases(&self) -> Vec<TaskLease> {
        let mut leases: Vec<TaskLease> = self
            .lock()
            .iter()
            .map(|(task_id, entry)| TaskLease {
                task_id: task_id.clone(),
                lease_epoch: entry.lease_epoch,
            })
            .collect();
        leases.sort_by(|a, b| a.task_id.cmp(&b.task_id));
        leases
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Follows the number of running tasks.
    pub fn watch_count(&self) -> watch::Receiver<usize> {
        self.count.subscribe()
    }

    /// Waits (up to `limit`) until every aborted runner has ended: an aborted run whose
    /// result was ready is in the update journal by then, so the replay after the next
    /// sign-on delivers it instead of the task running again.
    pub async fn wait_for_aborted(&self, limit: Duration) -> bool {
        let mut alive = self.alive.subscribe();
        let all_ended = async {
            loop {
                if *alive.borrow_and_update() <= self.len() {
                    return;
                }
                if alive.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(limit, all_ended).await.is_ok()
    }

    /// Waits (up to `limit`) for every runner ever started to end; false on timeout.
    pub async fn wait_all(&self, limit: Duration) -> bool {
        self.tracker.close();
        tokio::time::timeout(limit, self.tracker.wait())
            .await
            .is_ok()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
