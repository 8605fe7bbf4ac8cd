//! Castanet's additions to the Job schema, described here so the schema of a job and the
//! paths that change these parts can both use them.
use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

/// Extension: what a job limits about its own scheduling. Unknown fields are refused.
#[derive(Serialize, ToSchema)]
pub struct JobLimits {
    /// Units of each resource pool (the manager's `[resources]`) every running task of the job
    /// holds; the manager never runs more at once than a pool holds. Unknown pools: 400.
    pub resources: Option<BTreeMap<String, u32>>,
    /// Only tasks of these types hold the resources (absent: every task of the job).
    pub resource_task_types: Option<Vec<String>>,
    /// The most workers that run tasks of the job at the same time (at least 1).
    pub max_workers: Option<u32>,
}

/// Extension: where a gated job's review stands (absent for jobs without an approval gate).
#[derive(Serialize, ToSchema)]
pub struct JobApproval {
    /// `pending` (until reviewed), `approved` or `rejected`.
    pub state: String,
    /// The reviewer's comment (a rejection always has one).
    pub comment: Option<String>,
    /// Who reviewed: the name of the API token used; without one the request's `reviewer`, or
    /// `anonymous`.
    pub by: Option<String>,
    #[schema(format = DateTime)]
    pub at: Option<String>,
}
