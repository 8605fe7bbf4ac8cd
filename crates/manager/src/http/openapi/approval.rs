//! The approval gate in the OpenAPI document: `POST /api/v3/jobs/{id}/approve` and `/reject`.
// Never constructed: only the schema generator reads these types.
#![allow(dead_code)]

use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::path::HttpMethod::Post;

use super::errors::{BAD, UNKNOWN};
use super::schemas::Job;
use super::{Api, EXTENSIONS};

/// Extension: a review of a gated job's preview pass. A field not listed here is refused.
#[derive(Serialize, ToSchema)]
pub struct ReviewRequest {
    /// Kept with the job (`approval.comment`); at most 10,000 characters. Required to reject.
    pub comment: Option<String>,
    /// Who reviews, recorded as `approval.by` when the request carries no API token (open
    /// access); with a token, the token's name is recorded instead. 1–256 characters.
    pub reviewer: Option<String>,
}

const NOT_AWAITING: (u16, &str) = (
    409,
    "The job is not awaiting approval (its preview pass runs, it was reviewed already, or it \
     has no approval gate); the message says which.",
);

pub(super) fn describe(api: &mut Api) {
    for (verb, summary, answer) in [
        (
            "approve",
            "Approve a job's preview pass",
            "The job, queued again with its final pass (the tasks its job type's \
             `compileApproved(job)` authored, then the on-complete task if it has one).",
        ),
        (
            "reject",
            "Reject a job's preview pass",
            "The job, now `rejected` (final), with the comment kept in `approval.comment`.",
        ),
    ] {
        let (body, job) = (api.schema::<ReviewRequest>(), api.schema::<Job>());
        api.op(
            Post,
            &format!("/api/v3/jobs/{{id}}/{verb}"),
            EXTENSIONS,
            summary,
        )
        .body(body)
        .answer(200, answer, job)
        .errors(&[BAD, UNKNOWN, NOT_AWAITING])
        .done();
    }
}
