//! The farm's one-word status (`GET /api/v3/status`), from job and worker counts.
//!
//! Same outcomes as Flamenco's farm status, computed on request instead of polled. One
//! difference on purpose: queued work with an awake worker is `active` (it is about to be
//! handed out), where Flamenco says `waiting` until a task has started; `waiting` here
//! means there is work and no awake worker to take it.
use serde::Serialize;

use super::{JobStatus, WorkerStatus};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FarmStatus {
    /// Working on jobs.
    Active,
    /// Could work but has nothing to do.
    Idle,
    /// Has work but no awake worker.
    Waiting,
    /// Nothing to do and every worker asleep.
    Asleep,
    /// Cannot work: no workers, or all offline or in error.
    Inoperative,
}

impl FarmStatus {
    pub const ALL: &'static [FarmStatus] = &[
        FarmStatus::Active,
        FarmStatus::Idle,
        FarmStatus::Waiting,
        FarmStatus::Asleep,
        FarmStatus::Inoperative,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FarmStatus::Active => "active",
            FarmStatus::Idle => "idle",
            FarmStatus::Waiting => "waiting",
            FarmStatus::Asleep => "asleep",
            FarmStatus::Inoperative => "inoperative",
        }
    }
}

/// `jobs` and `workers` are counts per status; deleted workers must not be counted.
pub fn farm_status(jobs: &[(JobStatus, i64)], workers: &[(WorkerStatus, i64)]) -> FarmStatus {
    let count_workers = |wanted: &[WorkerStatus]| -> i64 {
        workers
            .iter()
            .filter(|(status, _)| wanted.contains(status))
            .map(|(_, n)| n)
            .sum()
    };
    let total_workers: i64 = workers.iter().map(|(_, n)| n).sum();
    let unusable = count_workers(&[WorkerStatus::Offline, WorkerStatus::Error]);
    if total_workers == 0 || unusable == total_workers {
        return FarmStatus::Inoperative;
    }
    let has_work = jobs.iter().any(|(status, n)| {
        *n > 0
            && matches!(
                status,
                JobStatus::Active | JobStatus::Queued | JobStatus::Requeueing
            )
    });
    let awake = count_workers(&[WorkerStatus::Awake]);
    let asleep = count_workers(&[WorkerStatus::Asleep]);
    match (has_work, awake > 0) {
        (true, true) => FarmStatus::Active,
        (true, false) => FarmStatus::Waiting,
        (false, _) if asleep + unusable == total_workers => FarmStatus::Asleep,
        (false, _) => FarmStatus::Idle,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobStatus as J;
    use WorkerStatus as W;

    /// (what the case shows, job counts, worker counts, expected status)
    type Case<'a> = (&'a str, &'a [(J, i64)], &'a [(W, i64)], FarmStatus);

    #[test]
    fn each_outcome_follows_from_the_counts() {
        let cases: &[Case] = &[
            (
                "no workers",
                &[(J::Active, 1)],
                &[],
                FarmStatus::Inoperative,
            ),
            (
                "all offline or in error",
                &[(J::Queued, 1)],
                &[(W::Offline, 2), (W::Error, 1)],
                FarmStatus::Inoperative,
            ),
            (
                "active job, awake worker",
                &[(J::Active, 1)],
                &[(W::Awake, 1), (W::Offline, 3)],
                FarmStatus::Active,
            ),
            (
                "queued job, awake worker: about to start",
                &[(J::Queued, 1)],
                &[(W::Awake, 1)],
                FarmStatus::Active,
            ),
            (
                "queued job, every worker asleep",
                &[(J::Queued, 1)],
                &[(W::Asleep, 2)],
                FarmStatus::Waiting,
            ),
            (
                "no work, all asleep (offline ones aside)",
                &[(J::Completed, 5)],
                &[(W::Asleep, 2), (W::Offline, 1)],
                FarmStatus::Asleep,
            ),
            (
                "no work, a worker awake",
                &[(J::Completed, 5), (J::Paused, 1)],
                &[(W::Awake, 1), (W::Asleep, 1)],
                FarmStatus::Idle,
            ),
            (
                "a job awaiting approval waits for a person, not for workers",
                &[(J::AwaitingApproval, 1), (J::Rejected, 1)],
                &[(W::Awake, 1)],
                FarmStatus::Idle,
            ),
            (
                "zero counts do not count as work",
                &[(J::Active, 0)],
                &[(W::Awake, 1)],
                FarmStatus::Idle,
            ),
        ];
        for (name, jobs, workers, expected) in cases {
            assert_eq!(farm_status(jobs, workers), *expected, "{name}");
        }
    }
}
