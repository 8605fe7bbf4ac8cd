//! The dispatcher as the place effects land (`ops::Effector`) for its own operations —
//! the impossible-task check and undeliverable assignments — which run without the rest of
//! the manager's state.
use super::Dispatcher;
use crate::events::Event;
use crate::ops::{Abort, Effector, LogLine};

impl Effector for Dispatcher {
    async fn write_log_line(&self, line: &LogLine) -> Result<(), String> {
        self.inner
            .logs
            .append_manager_line(&line.job_id, &line.task_id, &line.text)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn publish(&self, event: Event) {
        self.inner.events.publish(event);
    }

    fn abort(&self, abort: &Abort) {
        self.abort_tasks(&abort.tasks, &abort.reason);
    }

    fn free_slot(&self, worker_id: &str, task_id: &str) {
        // A lazy status request waiting for the slot is settled by the settler, which the
        // dispatcher wakes whenever it aborts a task of such a worker.
        self.task_finished(worker_id, task_id);
    }

    fn kick(&self) {
        Dispatcher::kick(self);
    }

    fn check_feasibility(&self, scope: crate::store::FeasibilityScope) {
        Dispatcher::check_feasibility(self, scope);
    }
}
