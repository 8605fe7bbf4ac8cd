//! The follow-up work of a state change as a value, and the one function that applies it.
//! Building the value is pure, so each kind of follow-up is written once (here) and every
//! operation gets the same lines, events and aborts for the same store outcome.
use std::future::Future;

use crate::AppState;
use crate::events::Event;
use crate::store::{FailureReport, FeasibilityScope, JobChange, TaskToAbort};

/// A manager line for one task's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub job_id: String,
    pub task_id: String,
    pub text: String,
}

/// Tasks of one job to stop on their workers, with the reason the workers are told.
#[derive(Clone, Debug)]
pub struct Abort {
    pub job_id: String,
    pub tasks: Vec<TaskToAbort>,
    pub reason: String,
}

/// What follows a state change. Applied in this order: log lines, aborts, freed slots,
/// events (each once, in the order first added), one dispatcher kick, one request for the
/// impossible-task check.
#[derive(Clone, Debug, Default)]
pub struct Effects {
    pub log_lines: Vec<LogLine>,
    pub aborts: Vec<Abort>,
    /// (worker id, task id) whose slot the task no longer holds.
    pub freed_slots: Vec<(String, String)>,
    pub events: Vec<Event>,
    /// Whether the dispatcher should look for work (something became runnable or free).
    pub kick: bool,
    /// Which tasks the impossible-task check should look at soon (new tasks, fewer workers).
    pub check_feasibility: FeasibilityScope,
}

impl Effects {
    pub fn new() -> Self {
        Self::default()
    }

    /// A manager line in a task's log (announced to log tails once written).
    pub fn log(&mut self, job_id: &str, task_id: &str, text: impl Into<String>) -> &mut Self {
        self.log_lines.push(LogLine {
            job_id: job_id.to_string(),
            task_id: task_id.to_string(),
            text: text.into(),
        });
        self
    }

    pub fn event(&mut self, event: Event) -> &mut Self {
        self.events.push(event);
        self
    }

    pub fn task_changed(&mut self, job_id: &str, task_id: &str) -> &mut Self {
        self.event(Event::task(job_id, task_id))
    }

    pub fn job_changed(&mut self, job_id: &str) -> &mut Self {
        self.event(Event::job(job_id))
    }

    pub fn worker_changed(&mut self, worker_id: &str) -> &mut Self {
        self.event(Event::worker(worker_id))
    }

    pub fn kick(&mut self) -> &mut Self {
        self.kick = true;
        self
    }

    /// Workers went away: any waiting task may now be one no worker can run.
    pub fn check_feasibility(&mut self) -> &mut Self {
        self.check_feasibility.merge(FeasibilityScope::Farm);
        self
    }

    /// Tasks of `job_id` appeared, were released or blocklisted: one of them may be one no
    /// worker can run.
    pub fn check_feasibility_of(&mut self, job_id: &str) -> &mut Self {
        self.check_feasibility.add_job(job_id);
        self
    }

    /// Stops `tasks` of `job_id` on their workers; the tasks and the job changed.
    pub fn abort(&mut self, job_id: &str, tasks: &[TaskToAbort], reason: &str) -> &mut Self {
        if tasks.is_empty() {
            return self;
        }
        self.aborts.push(Abort {
            job_id: job_id.to_string(),
            tasks: tasks.to_vec(),
            reason: reason.to_string(),
        });
        for task in tasks {
            self.task_changed(job_id, &task.task_id);
        }
        self.job_changed(job_id)
    }

    /// A task ended on `worker_id`: its slot is free (a lazy status request may now go out).
    pub fn free_slot(&mut self, worker_id: &str, task_id: &str) -> &mut Self {
        self.freed_slots
            .push((worker_id.to_string(), task_id.to_string()));
        self.kick()
    }

    /// Job `job_id` settled in a new status: its swept tasks stop, the job changed, and
    /// the dispatcher looks again (a queued job has work; a paused one freed workers).
    pub fn job_change(&mut self, job_id: &str, change: &JobChange) -> &mut Self {
        let reason = format!("the job got status \"{}\"", change.status);
        self.abort(job_id, &change.to_abort, &reason);
        self.job_changed(job_id).kick()
    }

    /// What a task failure led to: lines in the tasks' logs, requeued tasks, the job's change.
    pub fn failure_report(&mut self, job_id: &str, report: &FailureReport) -> &mut Self {
        for (task_id, line) in &report.log_lines {
            self.log(job_id, task_id, line.as_str());
        }
        for task_id in &report.requeued {
            self.task_changed(job_id, task_id);
        }
        if !report.requeued.is_empty() {
            self.job_changed(job_id).kick();
        }
        if let Some(change) = &report.job_change {
            self.job_change(job_id, change);
        }
        if report.blocklisted {
            self.check_feasibility_of(job_id);
        }
        self
    }

    /// Tasks (task id, job id) handed back to the queue because of `reason`.
    pub fn requeued(&mut self, requeued: &[(String, String)], reason: &str) -> &mut Self {
        for (task_id, job_id) in requeued {
            self.log(
                job_id,
                task_id,
                format!("Task returned to the queue because {reason}"),
            );
            self.task_changed(job_id, task_id).job_changed(job_id);
        }
        if !requeued.is_empty() {
            self.kick();
        }
        self
    }

    /// Adds everything of `other` after what is here.
    pub fn merge(&mut self, other: Effects) -> &mut Self {
        self.log_lines.extend(other.log_lines);
        self.aborts.extend(other.aborts);
        self.freed_slots.extend(other.freed_slots);
        self.events.extend(other.events);
        self.kick |= other.kick;
        self.check_feasibility.merge(other.check_feasibility);
        self
    }
}

/// Where effects land: the manager's task logs, event bus and dispatcher (tests use a
/// recording fake).
pub trait Effector {
    /// Appends a manager line to a task log; the error says why it could not.
    fn write_log_line(&self, line: &LogLine) -> impl Future<Output = Result<(), String>> + Send;
    fn publish(&self, event: Event);
    /// Sends the abort instructions to the workers holding the tasks.
    fn abort(&self, abort: &Abort);
    fn free_slot(&self, worker_id: &str, task_id: &str);
    fn kick(&self);
    fn check_feasibility(&self, scope: FeasibilityScope);
}

/// Carries out `effects` (see [`Effects`] for the order). A log line that cannot be
/// written is logged and skipped; the rest still happens.
pub async fn apply(effects: Effects, to: &impl Effector) {
    for line in &effects.log_lines {
        match to.write_log_line(line).await {
            Ok(()) => to.publish(Event::task_log(&line.job_id, &line.task_id)),
            Err(e) => tracing::warn!(task = %line.task_id, "cannot write task log: {e}"),
        }
    }
    for abort in &effects.aborts {
        to.abort(abort);
    }
    for (worker_id, task_id) in &effects.freed_slots {
        to.free_slot(worker_id, task_id);
    }
    let mut published: Vec<&Event> = Vec::with_capacity(effects.events.len());
    for event in &effects.events {
        if !published.contains(&event) {
            to.publish(event.clone());
            published.push(event);
        }
    }
    if effects.kick {
        to.kick();
    }
    if !effects.check_feasibility.is_nothing() {
        to.check_feasibility(effects.check_feasibility);
    }
}

impl Effector for AppState {
    async fn write_log_line(&self, line: &LogLine) -> Result<(), String> {
        self.logs
            .append_manager_line(&line.job_id, &line.task_id, &line.text)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn publish(&self, event: Event) {
        self.events.publish(event);
    }

    fn abort(&self, abort: &Abort) {
        self.dispatcher.abort_tasks(&abort.tasks, &abort.reason);
    }

    fn free_slot(&self, worker_id: &str, task_id: &str) {
        // Through the crate root: worker_status applies effects itself.
        self.slot_freed(worker_id, task_id);
    }

    fn kick(&self) {
        self.dispatcher.kick();
    }

    fn check_feasibility(&self, scope: FeasibilityScope) {
        self.dispatcher.check_feasibility(scope);
    }
}

#[cfg(test)]
mod tests;
