//! The approval gate: a job whose type defines `compileApproved` renders a preview pass, then
//! waits in `awaiting-approval` instead of completing; approving it queues the final pass,
//! rejecting it ends the job as `rejected`.
use serde::{Deserialize, Serialize};

use super::{JobStatus, UnknownStatus};

status_enum!(
    /// Where a gated job's review stands (jobs without a gate have none).
    ApprovalState {
        Pending = "pending",
        Approved = "approved",
        Rejected = "rejected",
    }
);

/// The status a job really enters when `requested` is asked for: a job whose gate is still
/// pending waits for approval where it would have completed.
pub fn gated_status(requested: JobStatus, gate: Option<ApprovalState>) -> JobStatus {
    match (requested, gate) {
        (JobStatus::Completed, Some(ApprovalState::Pending)) => JobStatus::AwaitingApproval,
        _ => requested,
    }
}

/// Checks that a job in `status` with gate `gate` can be approved or rejected now; says why
/// not otherwise.
pub fn check_approval_request(
    status: JobStatus,
    gate: Option<ApprovalState>,
    verb: &str,
) -> Result<(), String> {
    match (status, gate) {
        (JobStatus::AwaitingApproval, Some(ApprovalState::Pending)) => Ok(()),
        (_, None) => Err(format!(
            "the job has no approval gate (its job type defines no compileApproved); there is \
             nothing to {verb}"
        )),
        (_, Some(ApprovalState::Approved)) => Err(format!(
            "the job was already approved; it cannot be {verb}d again"
        )),
        (_, Some(ApprovalState::Rejected)) => Err(format!(
            "the job was already rejected; it cannot be {verb}d again"
        )),
        (status, Some(ApprovalState::Pending)) => Err(format!(
            "the job is \"{status}\", not \"awaiting-approval\": its preview pass has not finished"
        )),
    }
}

/// A rejected job is final: none of its tasks may be requeued or canceled.
pub fn check_task_request_in_job(job: JobStatus) -> Result<(), String> {
    if job == JobStatus::Rejected {
        return Err(
            "the job was rejected; its tasks cannot change any more (submit it again)".to_owned(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ApprovalState as A;
    use JobStatus as J;

    #[test]
    fn only_a_pending_gate_turns_completion_into_waiting_for_approval() {
        let cases: &[(J, Option<A>, J)] = &[
            (J::Completed, Some(A::Pending), J::AwaitingApproval),
            (J::Completed, Some(A::Approved), J::Completed),
            (J::Completed, None, J::Completed),
            (J::Active, Some(A::Pending), J::Active),
            (J::Failed, Some(A::Pending), J::Failed),
            (J::Canceled, Some(A::Pending), J::Canceled),
            (J::Queued, Some(A::Approved), J::Queued),
        ];
        for (requested, gate, want) in cases {
            assert_eq!(
                gated_status(*requested, *gate),
                *want,
                "{requested} with gate {gate:?}"
            );
        }
    }

    #[test]
    fn approval_is_possible_only_while_awaiting_it() {
        assert!(check_approval_request(J::AwaitingApproval, Some(A::Pending), "approve").is_ok());
        let refused: &[(J, Option<A>, &str)] = &[
            (J::Active, Some(A::Pending), "has not finished"),
            (J::Queued, Some(A::Pending), "has not finished"),
            (J::Completed, Some(A::Approved), "already approved"),
            (J::Rejected, Some(A::Rejected), "already rejected"),
            (J::Completed, None, "no approval gate"),
        ];
        for (status, gate, says) in refused {
            let why = check_approval_request(*status, *gate, "approve").unwrap_err();
            assert!(why.contains(says), "{status} {gate:?}: {why}");
        }
    }

    #[test]
    fn tasks_of_a_rejected_job_stay_as_they_are() {
        assert!(check_task_request_in_job(J::Rejected).is_err());
        assert!(check_task_request_in_job(J::AwaitingApproval).is_ok());
        assert!(check_task_request_in_job(J::Completed).is_ok());
    }

    #[test]
    fn approval_states_round_trip_through_their_names() {
        for s in A::ALL {
            assert_eq!(s.as_str().parse::<A>().unwrap(), *s);
        }
    }
}
