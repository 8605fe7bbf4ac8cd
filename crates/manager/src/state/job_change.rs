//! A job entering a status: which of its tasks move along (§2.3), which status follows
//! on its own (`cancel-requested` → `canceled`, `requeueing` → `queued` → maybe
//! `completed`, `pause-requested` → `paused` once nothing runs), and which statuses a user
//! may request from which (invalid requests are refused with a reason).
use super::{JobStatus, TaskCounts, TaskStatus};

/// Tasks in `from` move to `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskSweep {
    pub from: &'static [TaskStatus],
    pub to: TaskStatus,
}

const RUNNABLE: &[TaskStatus] = &[
    TaskStatus::Active,
    TaskStatus::Queued,
    TaskStatus::SoftFailed,
];
const WAITING: &[TaskStatus] = &[TaskStatus::Queued, TaskStatus::SoftFailed];
const UNFINISHED: &[TaskStatus] = &[
    TaskStatus::Canceled,
    TaskStatus::Failed,
    TaskStatus::Paused,
    TaskStatus::SoftFailed,
];
const EVERY: &[TaskStatus] = TaskStatus::ALL;
const PAUSED: &[TaskStatus] = &[TaskStatus::Paused];

/// The task side-effect of a job entering `new` from `previous`.
pub fn task_sweep(new: JobStatus, previous: JobStatus) -> Option<TaskSweep> {
    let sweep = |from, to| Some(TaskSweep { from, to });
    match new {
        JobStatus::CancelRequested | JobStatus::Failed => sweep(RUNNABLE, TaskStatus::Canceled),
        JobStatus::PauseRequested => sweep(WAITING, TaskStatus::Paused),
        JobStatus::Requeueing => match previous {
            JobStatus::UnderConstruction => None,
            JobStatus::Completed => sweep(EVERY, TaskStatus::Queued),
            _ => sweep(UNFINISHED, TaskStatus::Queued),
        },
        // Resuming a paused job: its paused tasks may run again (upstream leaves them paused).
        JobStatus::Queued if matches!(previous, JobStatus::Paused | JobStatus::PauseRequested) => {
            sweep(PAUSED, TaskStatus::Queued)
        }
        _ => None,
    }
}

/// The status a job moves on to by itself after entering `current` and sweeping its
/// tasks, given the task counts after the sweep.
pub fn follow_up(current: JobStatus, counts: &TaskCounts) -> Option<(JobStatus, &'static str)> {
    match current {
        JobStatus::CancelRequested => Some((JobStatus::Canceled, "its tasks were canceled")),
        JobStatus::PauseRequested if counts.active == 0 => {
            Some((JobStatus::Paused, "no task is running any more"))
        }
        JobStatus::Requeueing => Some((JobStatus::Queued, "its tasks were queued again")),
        JobStatus::Queued if counts.total > 0 && counts.completed == counts.total => {
            Some((JobStatus::Completed, "all tasks were already completed"))
        }
        _ => None,
    }
}

/// Checks a status a user asks a job to enter. Returns why not when it is refused.
pub fn check_job_request(current: JobStatus, requested: JobStatus) -> Result<(), String> {
    use JobStatus::*;
    let allowed_from: &[JobStatus] = match requested {
        CancelRequested => &[
            WaitingForDependencies,
            AwaitingApproval,
            Queued,
            Active,
            PauseRequested,
            Paused,
            Requeueing,
        ],
        PauseRequested => &[WaitingForDependencies, Queued, Active],
        Queued => &[Paused, PauseRequested],
        Requeueing => &[Completed, Canceled, Failed, Paused, Active, Queued],
        AwaitingApproval | Rejected => {
            return Err(format!(
                "\"{requested}\" is reached through the approval gate: POST \
                 /api/v3/jobs/{{id}}/approve or /api/v3/jobs/{{id}}/reject"
            ));
        }
        _ => {
            return Err(format!(
                "\"{requested}\" is set by the manager, not requested; request one of \
                 cancel-requested, pause-requested, queued (resume) or requeueing"
            ));
        }
    };
    if allowed_from.contains(&current) {
        Ok(())
    } else {
        let from: Vec<&str> = allowed_from.iter().map(|s| s.as_str()).collect();
        Err(format!(
            "a job in status \"{current}\" cannot go to \"{requested}\"; that is possible from: {}",
            from.join(", ")
        ))
    }
}

/// Checks a status a user asks a task to enter (requeue or cancel).
pub fn check_task_request(current: TaskStatus, requested: TaskStatus) -> Result<(), String> {
    use TaskStatus::*;
    let allowed_from: &[TaskStatus] = match requested {
        Queued => &[Failed, Canceled, Completed, Paused, SoftFailed],
        Canceled => &[Queued, Active, SoftFailed, Paused],
        _ => {
            return Err(format!(
                "\"{requested}\" is set by the manager or the worker, not requested; request \
                 queued (requeue) or canceled"
            ));
        }
    };
    if allowed_from.contains(&current) {
        Ok(())
    } else {
        let from: Vec<&str> = allowed_from.iter().map(|s| s.as_str()).collect();
        Err(format!(
            "a task in status \"{current}\" cannot go to \"{requested}\"; that is possible from: {}",
            from.join(", ")
        ))
    }
}

/// The status a task handed back to the queue gets — by a user's requeue, a worker that
/// left or was blocklisted: `paused` while its job is pausing or paused (it must not run
/// until the job is resumed), else `queued`.
pub fn requeued_task_status(job: JobStatus) -> TaskStatus {
    if matches!(job, JobStatus::PauseRequested | JobStatus::Paused) {
        TaskStatus::Paused
    } else {
        TaskStatus::Queued
    }
}

/// The job status that makes a task requeued by a user runnable again, if the job is
/// finished (fixes §15.11: upstream only reactivates a completed job).
pub fn job_after_task_requeue(job: JobStatus) -> Option<JobStatus> {
    match job {
        // Upstream: requeueing one task of a completed job requeues the whole job.
        JobStatus::Completed => Some(JobStatus::Requeueing),
        // A preview task rendered again before the review: the job runs it, then waits again.
        JobStatus::Failed | JobStatus::Canceled | JobStatus::AwaitingApproval => {
            Some(JobStatus::Queued)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobStatus as J;
    use TaskStatus as T;

    fn counts(pairs: &[(T, u64)]) -> TaskCounts {
        let mut c = TaskCounts::default();
        for (s, n) in pairs {
            c.add(*s, *n);
        }
        c
    }

    #[test]
    fn a_requeued_task_waits_paused_while_its_job_pauses() {
        for job in [J::PauseRequested, J::Paused] {
            assert_eq!(requeued_task_status(job), T::Paused, "{job}");
        }
        for job in [
            J::Queued,
            J::Active,
            J::Completed,
            J::Failed,
            J::AwaitingApproval,
        ] {
            assert_eq!(requeued_task_status(job), T::Queued, "{job}");
        }
    }

    #[test]
    fn entering_a_job_status_sweeps_the_tasks_of_section_2_3() {
        // (new, previous, tasks that move, their new status)
        type SweepCase = (J, J, Option<(&'static [T], T)>);
        let cases: &[SweepCase] = &[
            (J::CancelRequested, J::Active, Some((RUNNABLE, T::Canceled))),
            (J::Failed, J::Active, Some((RUNNABLE, T::Canceled))),
            (J::PauseRequested, J::Active, Some((WAITING, T::Paused))),
            (J::Requeueing, J::Completed, Some((EVERY, T::Queued))),
            (J::Requeueing, J::Failed, Some((UNFINISHED, T::Queued))),
            (J::Requeueing, J::UnderConstruction, None),
            (J::Queued, J::Paused, Some((PAUSED, T::Queued))),
            (J::Queued, J::Requeueing, None),
            (J::Completed, J::Active, None),
            (J::Canceled, J::CancelRequested, None),
            (J::Paused, J::PauseRequested, None),
            (J::Active, J::Queued, None),
        ];
        for (new, previous, want) in cases {
            let got = task_sweep(*new, *previous).map(|s| (s.from, s.to));
            assert_eq!(got, *want, "{previous} -> {new}");
        }
    }

    #[test]
    fn follow_up_statuses_chain_until_none() {
        type FollowCase = (J, &'static [(T, u64)], Option<J>);
        let cases: &[FollowCase] = &[
            (J::CancelRequested, &[(T::Canceled, 3)], Some(J::Canceled)),
            (J::PauseRequested, &[(T::Paused, 3)], Some(J::Paused)),
            (J::PauseRequested, &[(T::Active, 1), (T::Paused, 2)], None),
            (J::Requeueing, &[(T::Queued, 3)], Some(J::Queued)),
            (J::Queued, &[(T::Completed, 3)], Some(J::Completed)),
            (J::Queued, &[(T::Completed, 2), (T::Queued, 1)], None),
            (J::Queued, &[], None),
            (J::Canceled, &[(T::Canceled, 3)], None),
            (J::Failed, &[(T::Canceled, 3)], None),
        ];
        for (status, pairs, want) in cases {
            let got = follow_up(*status, &counts(pairs)).map(|(s, _)| s);
            assert_eq!(got, *want, "{status} with {pairs:?}");
        }
    }

    #[test]
    fn users_may_only_request_sensible_job_transitions() {
        let ok: &[(J, J)] = &[
            (J::Active, J::CancelRequested),
            (J::PauseRequested, J::CancelRequested),
            (J::Active, J::PauseRequested),
            (J::Paused, J::Queued),
            (J::Failed, J::Requeueing),
            (J::Completed, J::Requeueing),
            (J::Canceled, J::Requeueing),
        ];
        for (from, to) in ok {
            assert!(check_job_request(*from, *to).is_ok(), "{from} -> {to}");
        }
        let refused: &[(J, J)] = &[
            (J::Completed, J::CancelRequested),
            (J::Canceled, J::PauseRequested),
            (J::Active, J::Queued),
            (J::Queued, J::Completed),
            (J::Active, J::Failed),
            (J::Active, J::Active),
        ];
        for (from, to) in refused {
            let why = check_job_request(*from, *to).unwrap_err();
            assert!(why.contains(to.as_str()), "{from} -> {to}: {why}");
        }
    }

    #[test]
    fn users_may_requeue_or_cancel_tasks_where_that_makes_sense() {
        assert!(check_task_request(T::Failed, T::Queued).is_ok());
        assert!(check_task_request(T::Completed, T::Queued).is_ok());
        assert!(check_task_request(T::Active, T::Canceled).is_ok());
        assert!(check_task_request(T::Active, T::Queued).is_err());
        assert!(check_task_request(T::Completed, T::Canceled).is_err());
        assert!(check_task_request(T::Queued, T::Completed).is_err());
    }

    #[test]
    fn requeueing_a_task_revives_its_finished_job() {
        assert_eq!(job_after_task_requeue(J::Completed), Some(J::Requeueing));
        assert_eq!(job_after_task_requeue(J::Failed), Some(J::Queued));
        assert_eq!(job_after_task_requeue(J::Canceled), Some(J::Queued));
        assert_eq!(job_after_task_requeue(J::AwaitingApproval), Some(J::Queued));
        assert_eq!(job_after_task_requeue(J::Active), None);
    }
}
