//! Runs the impossible-task check (`store/impossible.rs`): when asked, on the jobs asked
//! about (a job was submitted or released, a blocklist entry added) or the whole farm (a
//! worker deleted), and on the whole farm every `interval` (workers sign on again with
//! other task types, tags change). Failed tasks are logged, their jobs' running tasks
//! aborted, and the changes announced.
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Dispatcher;
use crate::ops;
use crate::store::{Assignment, FeasibilityScope, ImpossibleJob};

/// How often the check runs without being asked.
pub const FEASIBILITY_INTERVAL: Duration = Duration::from_secs(30);

impl Dispatcher {
    /// Asks for the impossible-task check of `scope` soon (coalesced with other requests).
    pub fn check_feasibility(&self, scope: FeasibilityScope) {
        self.asked().merge(scope);
        self.inner.feasibility.notify_one();
    }

    fn asked(&self) -> std::sync::MutexGuard<'_, FeasibilityScope> {
        // A scope is replaced or widened whole: a panic elsewhere cannot leave it half-made.
        self.inner
            .feasibility_asked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs the impossible-task check until `shutdown`.
    pub async fn run_feasibility_checks(self, interval: Duration, shutdown: CancellationToken) {
        // Its own clock: requests for single jobs, however often, do not put it off.
        let start = tokio::time::Instant::now() + interval;
        let mut farm_wide = tokio::time::interval_at(start, interval);
        farm_wide.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let periodic = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.inner.feasibility.notified() => false,
                _ = farm_wide.tick() => true,
            };
            let mut scope = std::mem::take(&mut *self.asked());
            if periodic {
                scope = FeasibilityScope::Farm;
            }
            if let Err(e) = self.fail_impossible_tasks(&scope).await {
                tracing::error!("checking for tasks no worker can run failed: {e}");
            }
        }
    }

    /// One check of `scope`: fails what can never run. Returns how many tasks failed.
    pub async fn fail_impossible_tasks(
        &self,
        scope: &FeasibilityScope,
    ) -> Result<usize, crate::store::StoreError> {
        let jobs = self.inner.store.fail_impossible_tasks(scope).await?;
        Ok(self
            .announce_failed(jobs, "no registered worker can ever run it")
            .await)
    }

    /// Fails a just-assigned task whose instruction is too large for any worker to receive
    /// (handing it out again would only repeat the refusal), and its job.
    pub(super) async fn fail_undeliverable(
        &self,
        assignment: &Assignment,
        reason: String,
    ) -> Result<(), crate::store::StoreError> {
        let store = &self.inner.store;
        store
            .unassign_task(&assignment.task_id, assignment.lease_epoch)
            .await?;
        let jobs = store
            .fail_undeliverable_task(&assignment.task_id, &assignment.job_id, reason)
            .await?;
        self.announce_failed(jobs, "no worker can receive it").await;
        Ok(())
    }

    /// Logs and announces failed tasks, and aborts the rest of their failed jobs. Returns how
    /// many tasks failed.
    async fn announce_failed(&self, jobs: Vec<ImpossibleJob>, why: &str) -> usize {
        let (failed, effects) = ops::job_actions::failed_as_impossible(&jobs, why);
        ops::apply(effects, self).await;
        failed
    }
}
