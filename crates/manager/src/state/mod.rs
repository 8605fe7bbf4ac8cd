//! Job, task and worker statuses and the rules that connect them, as pure functions:
//! old state + event → new state. No I/O here; the store applies the results in one
//! transaction. Flamenco's status names are kept so API users see familiar values.
mod chunking;
mod eligibility;
mod eta;
mod failure;
mod farm_status;
mod job_change;
mod limits;
mod requirements;
mod ripple;
mod sleep;
mod why;

pub use chunking::{
    FrameSample, frame_seconds, frames_notation, plan_chunks, should_rechunk, start_up_seconds,
};
pub use eligibility::{Exclusion, TaskFacts, WorkerFacts, could_run, exclusion};
pub use eta::{DurationSample, Estimate, JobEstimate, JobLoad, estimate};
pub use failure::{
    FailureFacts, FailurePolicy, FailureVerdict, FaultKind, JOB_FAULT_CLASSES, JobFaultEvidence,
    SELF_CHECK_FAULT_CLASS, blocklist_reason, failure_verdict,
};
pub use farm_status::{FarmStatus, farm_status};
pub use job_change::{
    TaskSweep, check_job_request, check_task_request, follow_up, job_after_task_requeue,
    requeued_task_status, task_sweep,
};
pub use limits::{JobLimits, free_resources, retry_delay};
pub use requirements::{JobRequirements, WorkerCapabilities, unmet_requirements};
pub use ripple::{JobRipple, TaskCounts, job_after_task_change};
pub use sleep::{SleepSchedule, parse_days};
pub use why::{Blocker, SchedulingView, TaskView, WorkerView, blockers};

use serde::{Deserialize, Serialize};

macro_rules! status_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownStatus;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownStatus {
                        kind: stringify!($name),
                        given: s.to_string(),
                        valid: vec![$($text),+],
                    }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// A status string that is not one of the known values.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown {kind} \"{given}\"; valid values: {}", valid.join(", "))]
pub struct UnknownStatus {
    pub kind: &'static str,
    pub given: String,
    pub valid: Vec<&'static str>,
}

// After the macro: the approval gate's state is declared with it.
mod approval;
pub use approval::{
    ApprovalState, check_approval_request, check_task_request_in_job, gated_status,
};

status_enum!(
    /// Status of a job (Flamenco's values, and Castanet's `waiting-for-dependencies`: held
    /// back until every job it depends on has completed; `awaiting-approval`: its preview
    /// pass is done and waits for a person; `rejected`: final, the preview was turned down).
    JobStatus {
        UnderConstruction = "under-construction",
        WaitingForDependencies = "waiting-for-dependencies",
        Queued = "queued",
        Active = "active",
        PauseRequested = "pause-requested",
        Paused = "paused",
        CancelRequested = "cancel-requested",
        Canceled = "canceled",
        Requeueing = "requeueing",
        Completed = "completed",
        Failed = "failed",
        AwaitingApproval = "awaiting-approval",
        Rejected = "rejected",
    }
);

status_enum!(
    /// Status of a task (Flamenco's values).
    TaskStatus {
        Queued = "queued",
        Active = "active",
        Paused = "paused",
        SoftFailed = "soft-failed",
        Failed = "failed",
        Completed = "completed",
        Canceled = "canceled",
    }
);

status_enum!(
    /// Status of a worker (Flamenco's values).
    WorkerStatus {
        Starting = "starting",
        Awake = "awake",
        Asleep = "asleep",
        Error = "error",
        Testing = "testing",
        Offline = "offline",
        Restart = "restart",
    }
);

impl TaskStatus {
    /// Statuses the scheduler may hand out.
    pub fn is_runnable(self) -> bool {
        matches!(self, TaskStatus::Queued | TaskStatus::SoftFailed)
    }
}

impl JobStatus {
    /// Job statuses whose tasks the scheduler may hand out.
    pub fn is_schedulable(self) -> bool {
        matches!(self, JobStatus::Queued | JobStatus::Active)
    }

    /// Statuses a job may be submitted with.
    pub fn is_valid_initial(self) -> bool {
        matches!(self, JobStatus::Queued | JobStatus::Paused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_names() {
        for s in JobStatus::ALL {
            assert_eq!(s.as_str().parse::<JobStatus>().unwrap(), *s);
        }
        for s in TaskStatus::ALL {
            assert_eq!(s.as_str().parse::<TaskStatus>().unwrap(), *s);
        }
        for s in WorkerStatus::ALL {
            assert_eq!(s.as_str().parse::<WorkerStatus>().unwrap(), *s);
        }
    }

    #[test]
    fn unknown_status_names_the_valid_values() {
        let err = "runing".parse::<TaskStatus>().unwrap_err().to_string();
        assert!(
            err.contains("\"runing\"") && err.contains("soft-failed"),
            "{err}"
        );
    }
}
