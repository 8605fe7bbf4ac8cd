//! How a task's status change ripples into its job's status (Flamenco's rules, with the
//! counts taken after the change), and which tasks a job status change sweeps along.
use super::{JobStatus, TaskStatus};

/// Number of a job's tasks in each status, after the change being judged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskCounts {
    pub total: u64,
    pub queued: u64,
    pub active: u64,
    pub paused: u64,
    pub soft_failed: u64,
    pub failed: u64,
    pub completed: u64,
    pub canceled: u64,
    /// Queued or soft-failed tasks that can never run: a task they depend on (directly or
    /// not) failed or was canceled. Counted in their own status too; gathered only when a
    /// task failed (zero otherwise).
    pub waiting_on_failed: u64,
}

impl TaskCounts {
    pub fn add(&mut self, status: TaskStatus, n: u64) {
        self.total += n;
        let slot = match status {
            TaskStatus::Queued => &mut self.queued,
            TaskStatus::Active => &mut self.active,
            TaskStatus::Paused => &mut self.paused,
            TaskStatus::SoftFailed => &mut self.soft_failed,
            TaskStatus::Failed => &mut self.failed,
            TaskStatus::Completed => &mut self.completed,
            TaskStatus::Canceled => &mut self.canceled,
        };
        *slot += n;
    }

    /// Tasks that may still run: active, queued or waiting for a retry.
    pub fn runnable(&self) -> u64 {
        self.active + self.queued + self.soft_failed
    }

    /// Tasks that may still run and do not wait for a failed one.
    pub fn can_still_run(&self) -> u64 {
        self.runnable().saturating_sub(self.waiting_on_failed)
    }

    /// Failed tasks as a whole percentage of all tasks, rounded down.
    pub fn failed_percent(&self) -> u64 {
        (self.failed * 100).checked_div(self.total).unwrap_or(0)
    }
}

/// A job status change caused by one of its tasks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRipple {
    pub status: JobStatus,
    pub reason: String,
}

fn ripple(status: JobStatus, reason: impl Into<String>) -> Option<JobRipple> {
    Some(JobRipple {
        status,
        reason: reason.into(),
    })
}

/// The job status that follows when one of its tasks entered `task_status`.
/// `job_fail_percent`: the share of failed tasks (in %) at which the whole job fails.
pub fn job_after_task_change(
    job: JobStatus,
    task_status: TaskStatus,
    counts: &TaskCounts,
    job_fail_percent: u64,
) -> Option<JobRipple> {
    let pause_complete = job == JobStatus::PauseRequested && counts.active == 0;
    let result = match task_status {
        TaskStatus::Queued if job == JobStatus::Completed => ripple(
            JobStatus::Requeueing,
            "a task of the completed job was queued again",
        ),
        TaskStatus::Queued => None,
        TaskStatus::Canceled if counts.runnable() == 0 => {
            ripple(JobStatus::Canceled, "no task of the job is left to run")
        }
        TaskStatus::Paused | TaskStatus::Canceled if pause_complete => {
            ripple(JobStatus::Paused, "the last active task stopped")
        }
        TaskStatus::Paused | TaskStatus::Canceled => None,
        TaskStatus::Failed if counts.failed_percent() >= job_fail_percent => ripple(
            JobStatus::Failed,
            format!(
                "{} of {} tasks failed ({}%, the limit is {job_fail_percent}%)",
                counts.failed,
                counts.total,
                counts.failed_percent()
            ),
        ),
        // Under the limit, yet nothing is left that could ever run: without this the job
        // would sit active forever.
        TaskStatus::Failed | TaskStatus::Completed
            if counts.failed > 0
                && counts.can_still_run() == 0
                && counts.paused == 0
                && matches!(job, JobStatus::Active | JobStatus::Queued) =>
        {
            ripple(JobStatus::Failed, stuck_reason(counts))
        }
        TaskStatus::Active | TaskStatus::SoftFailed
            if !matches!(job, JobStatus::Active | JobStatus::CancelRequested) =>
        {
            ripple(JobStatus::Active, "a task started")
        }
        TaskStatus::Active | TaskStatus::SoftFailed => None,
        TaskStatus::Completed if counts.completed == counts.total => {
            ripple(JobStatus::Completed, "all tasks completed")
        }
        TaskStatus::Failed | TaskStatus::Completed if pause_complete => {
            ripple(JobStatus::Paused, "the last active task stopped")
        }
        TaskStatus::Failed | TaskStatus::Completed if job == JobStatus::Queued => {
            ripple(JobStatus::Active, "a task finished")
        }
        TaskStatus::Failed | TaskStatus::Completed => None,
    };
    result.filter(|r| r.status != job)
}

/// Why a job with failed tasks under the limit fails anyway.
fn stuck_reason(counts: &TaskCounts) -> String {
    let mut reason = format!(
        "{} of {} tasks failed and no task that could run is left",
        counts.failed, counts.total
    );
    if counts.waiting_on_failed > 0 {
        reason.push_str(&format!(
            " ({} wait on failed tasks)",
            counts.waiting_on_failed
        ));
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(TaskStatus, u64)]) -> TaskCounts {
        let mut c = TaskCounts::default();
        for (s, n) in pairs {
            c.add(*s, *n);
        }
        c
    }

    #[test]
    fn task_changes_ripple_into_the_job_as_the_table_says() {
        use JobStatus as J;
        use TaskStatus as T;
        type Case = (J, T, &'static [(T, u64)], Option<J>);
        let cases: &[Case] = &[
            (
                J::Queued,
                T::Active,
                &[(T::Active, 1), (T::Queued, 9)],
                Some(J::Active),
            ),
            (
                J::Active,
                T::Active,
                &[(T::Active, 2), (T::Queued, 8)],
                None,
            ),
            (J::CancelRequested, T::Active, &[(T::Active, 1)], None),
            (
                J::Active,
                T::Completed,
                &[(T::Completed, 10)],
                Some(J::Completed),
            ),
            (
                J::Active,
                T::Completed,
                &[(T::Completed, 9), (T::Active, 1)],
                None,
            ),
            (
                J::Queued,
                T::Completed,
                &[(T::Completed, 1), (T::Queued, 9)],
                Some(J::Active),
            ),
            // 1 of 10 failed is 10 %: the job fails.
            (
                J::Active,
                T::Failed,
                &[(T::Failed, 1), (T::Queued, 9)],
                Some(J::Failed),
            ),
            // 1 of 11 is 9 % (rounded down): it does not.
            (
                J::Active,
                T::Failed,
                &[(T::Failed, 1), (T::Queued, 10)],
                None,
            ),
            (
                J::PauseRequested,
                T::Completed,
                &[(T::Completed, 1), (T::Paused, 3)],
                Some(J::Paused),
            ),
            (
                J::PauseRequested,
                T::Completed,
                &[(T::Completed, 1), (T::Active, 1)],
                None,
            ),
            (
                J::CancelRequested,
                T::Canceled,
                &[(T::Canceled, 4), (T::Completed, 1)],
                Some(J::Canceled),
            ),
            (
                J::PauseRequested,
                T::Canceled,
                &[(T::Canceled, 1), (T::Queued, 1)],
                Some(J::Paused),
            ),
            (
                J::Completed,
                T::Queued,
                &[(T::Queued, 1), (T::Completed, 3)],
                Some(J::Requeueing),
            ),
            (
                J::Active,
                T::Queued,
                &[(T::Queued, 1), (T::Completed, 3)],
                None,
            ),
        ];
        for (job, task, pairs, want) in cases {
            let got = job_after_task_change(*job, *task, &counts(pairs), 10).map(|r| r.status);
            assert_eq!(got, *want, "job {job}, task -> {task}, counts {pairs:?}");
        }
    }

    #[test]
    fn a_job_under_the_fail_limit_fails_once_nothing_can_run_any_more() {
        use JobStatus as J;
        use TaskStatus as T;
        // 1 of 20 failed (5 %), the rest completed: nothing is left to run.
        let done = counts(&[(T::Failed, 1), (T::Completed, 19)]);
        let ripple = job_after_task_change(J::Active, T::Completed, &done, 10).unwrap();
        assert_eq!(ripple.status, J::Failed);
        assert_eq!(
            ripple.reason,
            "1 of 20 tasks failed and no task that could run is left"
        );
        assert_eq!(
            job_after_task_change(J::Active, T::Failed, &done, 10).map(|r| r.status),
            Some(J::Failed)
        );
        // The other 19 wait for the failed one (a chain): the job fails at once.
        let mut blocked = counts(&[(T::Failed, 1), (T::Queued, 19)]);
        blocked.waiting_on_failed = 19;
        let ripple = job_after_task_change(J::Active, T::Failed, &blocked, 10).unwrap();
        assert_eq!(ripple.status, J::Failed);
        assert!(
            ripple.reason.contains("(19 wait on failed tasks)"),
            "{ripple:?}"
        );
        // Something can still run, or the job is paused or being canceled: no change.
        blocked.waiting_on_failed = 18;
        assert_eq!(
            job_after_task_change(J::Active, T::Failed, &blocked, 10),
            None
        );
        let running = counts(&[(T::Failed, 1), (T::Active, 1), (T::Completed, 18)]);
        assert_eq!(
            job_after_task_change(J::Active, T::Completed, &running, 10),
            None
        );
        let paused = counts(&[(T::Failed, 1), (T::Paused, 1), (T::Completed, 18)]);
        assert_eq!(
            job_after_task_change(J::Active, T::Completed, &paused, 10),
            None
        );
        assert_eq!(
            job_after_task_change(J::CancelRequested, T::Completed, &done, 10),
            None
        );
        // Nothing failed: all completed is the usual completion.
        let all = counts(&[(T::Completed, 20)]);
        assert_eq!(
            job_after_task_change(J::Active, T::Completed, &all, 10).map(|r| r.status),
            Some(J::Completed)
        );
    }
}
