//! What happens when a worker reports a task as failed (Flamenco's order of §4.3, without
//! its two off-by-ones): blocklisting the worker, soft-failing for a retry elsewhere,
//! hard-failing after enough distinct workers, and failing the job when nobody is left.
//! Pure rules; the store gathers the counts and applies the verdict in one transaction.

/// The failure limits from the manager's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailurePolicy {
    /// Distinct workers that must fail a task before it is hard-failed.
    pub fail_after_workers: u64,
    /// Failed tasks of one (job, task type) after which a worker is blocklisted for them.
    pub blocklist_threshold: u64,
    /// Share of failed tasks (in %) at which the whole job fails.
    pub job_fail_percent: u64,
    /// A soft-failed task waits this long before its first retry, twice that before its
    /// second, and so on (`state::retry_delay`); zero retries at once.
    pub retry_backoff_base: std::time::Duration,
    /// The longest wait before a retry.
    pub retry_backoff_cap: std::time::Duration,
}

impl Default for FailurePolicy {
    /// Flamenco's limits, retrying at once (the store's tests rely on that; the manager's
    /// config turns the backoff on).
    fn default() -> Self {
        Self {
            fail_after_workers: 3,
            blocklist_threshold: 3,
            job_fail_percent: 10,
            retry_backoff_base: std::time::Duration::ZERO,
            retry_backoff_cap: std::time::Duration::ZERO,
        }
    }
}

/// Who is to blame for a failure, from the worker's fault class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// The job itself cannot work anywhere (`missing-input`, `invalid-command`): retrying
    /// on other workers only burns their time.
    Job,
    /// This worker cannot run such tasks (`missing-executable`, `disk-full`,
    /// `output-unwritable`: another worker may see the output location writable, so it
    /// fails over; the job fails once no capable worker is left).
    Worker,
    /// Anything else: maybe this run, maybe this worker; try elsewhere.
    Unknown,
}

/// The fault class of a task its worker declined after its own check (an output location it
/// cannot write): not a failure of the task. The worker is blocklisted for the job's tasks of
/// that type and the task goes back to the queue (`store::declines`).
pub const SELF_CHECK_FAULT_CLASS: &str = "self-check";

/// The fault classes that blame the job itself.
pub const JOB_FAULT_CLASSES: [&str; 2] = ["missing-input", "invalid-command"];

impl FaultKind {
    pub fn of(fault_class: &str) -> Self {
        match fault_class {
            class if JOB_FAULT_CLASSES.contains(&class) => FaultKind::Job,
            "missing-executable" | "disk-full" | "output-unwritable" => FaultKind::Worker,
            _ => FaultKind::Unknown,
        }
    }
}

/// Why a worker gets blocklisted for a (job, task type), if it does.
/// `worker_failures` counts this worker's failed tasks of that type in the job, the
/// current one included (upstream adds one more and blocklists a failure early).
pub fn blocklist_reason(
    fault: FaultKind,
    fault_class: &str,
    worker_failures: u64,
    policy: &FailurePolicy,
) -> Option<String> {
    match fault {
        FaultKind::Worker => Some(format!(
            "the worker reported a worker fault ({fault_class})"
        )),
        FaultKind::Job => None,
        FaultKind::Unknown if worker_failures >= policy.blocklist_threshold => Some(format!(
            "the worker failed {worker_failures} tasks of this type (threshold {})",
            policy.blocklist_threshold
        )),
        FaultKind::Unknown => None,
    }
}

/// The outcome for the failed task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailureVerdict {
    /// Retry on another worker; `failures_left` more distinct workers may fail it.
    SoftFail { failures_left: u64 },
    /// The task fails; the job follows the failed-percentage rule.
    HardFail { reason: String },
    /// No worker is left that could run tasks like this: task and job fail.
    FailJob { reason: String },
}

/// Facts about a failure after it was recorded (and after any new blocklisting).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureFacts<'a> {
    pub fault: FaultKind,
    pub fault_class: &'a str,
    pub task_type: &'a str,
    /// Distinct workers in the task's failure list, this one included.
    pub failed_by_workers: u64,
    /// Non-deleted workers that could still run it: they support the task type, match
    /// the job's tag, are not blocklisted for it and have not failed it yet. Unlike
    /// upstream, the failing worker is not in this number, so 0 (not 1) means nobody.
    pub workers_left: u64,
    /// For a job fault: what the job's other tasks say (all zero otherwise).
    pub job_faults: JobFaultEvidence,
}

/// How the whole job fares, gathered when a task fails with a job fault: one missing
/// file can be one frame's problem, but when tasks keep failing that way on every worker
/// that tries and none has completed, the job cannot work anywhere.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobFaultEvidence {
    /// Tasks of the job failed with a job fault, this one included.
    pub failed_tasks: u64,
    /// Distinct workers those failures came from, this one included.
    pub failed_on_workers: u64,
    /// Non-deleted workers that may run this task type for the job at all.
    pub capable_workers: u64,
    /// Completed tasks of the job.
    pub completed_tasks: u64,
}

impl JobFaultEvidence {
    /// Whether the evidence says the job cannot work: at least `fail_after_workers` tasks
    /// failed with a job fault, on that many distinct workers (or on every capable worker of
    /// a smaller farm), and no task completed.
    fn job_is_hopeless(&self, policy: &FailurePolicy) -> bool {
        let needed = policy.fail_after_workers.max(1);
        self.completed_tasks == 0
            && self.failed_tasks >= needed
            && self.failed_on_workers >= needed.min(self.capable_workers.max(1))
    }
}

pub fn failure_verdict(facts: &FailureFacts<'_>, policy: &FailurePolicy) -> FailureVerdict {
    if facts.fault == FaultKind::Job && facts.job_faults.job_is_hopeless(policy) {
        let evidence = &facts.job_faults;
        return FailureVerdict::FailJob {
            reason: format!(
                "{} tasks failed with a job fault ({}) on {} worker(s) and none completed: \
                 the job cannot work on any worker",
                evidence.failed_tasks, facts.fault_class, evidence.failed_on_workers
            ),
        };
    }
    if facts.fault == FaultKind::Job {
        return FailureVerdict::HardFail {
            reason: format!(
                "the job itself is at fault ({}); retrying on other workers cannot help",
                facts.fault_class
            ),
        };
    }
    if facts.failed_by_workers >= policy.fail_after_workers {
        return FailureVerdict::HardFail {
            reason: format!(
                "failed on {} workers (limit {})",
                facts.failed_by_workers, policy.fail_after_workers
            ),
        };
    }
    if facts.workers_left == 0 {
        let last = if facts.fault_class.is_empty() {
            String::new()
        } else {
            format!("; the last failure was {}", facts.fault_class)
        };
        return FailureVerdict::FailJob {
            reason: format!(
                "no worker is left that may run tasks of type \"{}\" (all are blocklisted, \
                 have failed the task, lack the task type or the job's tag, or miss the job's \
                 requirements){last}",
                facts.task_type
            ),
        };
    }
    FailureVerdict::SoftFail {
        failures_left: policy.fail_after_workers - facts.failed_by_workers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: FailurePolicy = FailurePolicy {
        fail_after_workers: 3,
        blocklist_threshold: 3,
        job_fail_percent: 10,
        retry_backoff_base: std::time::Duration::ZERO,
        retry_backoff_cap: std::time::Duration::ZERO,
    };

    #[test]
    fn fault_classes_are_sorted_by_who_is_to_blame() {
        let cases = [
            ("missing-input", FaultKind::Job),
            ("invalid-command", FaultKind::Job),
            ("missing-executable", FaultKind::Worker),
            ("disk-full", FaultKind::Worker),
            ("output-unwritable", FaultKind::Worker),
            ("nonzero-exit", FaultKind::Unknown),
            ("", FaultKind::Unknown),
        ];
        for (class, want) in cases {
            assert_eq!(FaultKind::of(class), want, "{class}");
        }
    }

    #[test]
    fn blocklisting_happens_at_the_threshold_not_one_before() {
        use FaultKind::*;
        // (fault, this worker's failures incl. the current one, blocklisted?)
        let cases = [
            (Unknown, 1, false),
            (Unknown, 2, false), // upstream's +1 would blocklist here (§15.1)
            (Unknown, 3, true),
            (Unknown, 4, true),
            (Worker, 1, true),
            (Job, 5, false),
        ];
        for (fault, failures, want) in cases {
            let got = blocklist_reason(fault, "x", failures, &POLICY);
            assert_eq!(got.is_some(), want, "{fault:?} with {failures} failures");
        }
    }

    #[test]
    fn verdicts_follow_the_failure_table() {
        use FaultKind::*;
        // (fault, failed by, workers left, expected verdict kind)
        let cases = [
            // 2-worker farm, first failure: the other worker is left → retry (§15.2 fixed).
            (Unknown, 1, 1, "soft"),
            (Unknown, 2, 3, "soft"),
            (Unknown, 3, 5, "hard"),
            (Unknown, 1, 0, "job"),
            (Unknown, 2, 0, "job"),
            (Worker, 1, 4, "soft"),
            (Worker, 1, 0, "job"),
            // A job fault never waits for other workers.
            (Job, 1, 9, "hard"),
        ];
        for (fault, failed_by, left, want) in cases {
            let facts = FailureFacts {
                fault,
                fault_class: "x",
                task_type: "misc",
                failed_by_workers: failed_by,
                workers_left: left,
                job_faults: JobFaultEvidence::default(),
            };
            let got = match failure_verdict(&facts, &POLICY) {
                FailureVerdict::SoftFail { .. } => "soft",
                FailureVerdict::HardFail { .. } => "hard",
                FailureVerdict::FailJob { .. } => "job",
            };
            assert_eq!(got, want, "{facts:?}");
        }
    }

    #[test]
    fn a_soft_failure_says_how_many_failures_remain() {
        let facts = FailureFacts {
            fault: FaultKind::Unknown,
            fault_class: "nonzero-exit",
            task_type: "misc",
            failed_by_workers: 1,
            workers_left: 2,
            job_faults: JobFaultEvidence::default(),
        };
        assert_eq!(
            failure_verdict(&facts, &POLICY),
            FailureVerdict::SoftFail { failures_left: 2 }
        );
    }

    #[test]
    fn a_job_fault_on_every_worker_that_tried_fails_the_job() {
        let verdict = |failed_tasks, failed_on_workers, capable_workers, completed_tasks| {
            let facts = FailureFacts {
                fault: FaultKind::Job,
                fault_class: "missing-input",
                task_type: "blender",
                failed_by_workers: 1,
                workers_left: 5,
                job_faults: JobFaultEvidence {
                    failed_tasks,
                    failed_on_workers,
                    capable_workers,
                    completed_tasks,
                },
            };
            match failure_verdict(&facts, &POLICY) {
                FailureVerdict::FailJob { reason } => {
                    assert!(reason.contains("missing-input"), "{reason}");
                    "job"
                }
                FailureVerdict::HardFail { .. } => "hard",
                FailureVerdict::SoftFail { .. } => "soft",
            }
        };
        // (failed tasks, on workers, capable workers, completed) → verdict
        assert_eq!(verdict(1, 1, 10, 0), "hard", "one failure proves little");
        assert_eq!(verdict(3, 2, 10, 0), "hard", "two of ten workers");
        assert_eq!(
            verdict(3, 3, 10, 0),
            "job",
            "three workers, nothing ever worked"
        );
        assert_eq!(
            verdict(3, 3, 10, 1),
            "hard",
            "a completed task: one frame's problem"
        );
        assert_eq!(
            verdict(3, 1, 1, 0),
            "job",
            "a one-worker farm: its only worker"
        );
        assert_eq!(
            verdict(2, 1, 1, 0),
            "hard",
            "but not on the first two failures"
        );
        assert_eq!(verdict(3, 2, 2, 0), "job");
    }
}
