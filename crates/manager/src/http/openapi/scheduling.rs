//! The scheduling extensions in the OpenAPI document: job limits (resource pools, worker
//! limit), dependencies between jobs, and the farm's resource pools.
// Never constructed: only the schema generator reads these types.
#![allow(dead_code)]

use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::path::HttpMethod::{Get, Put};

use super::errors::{BAD, REFUSED, UNKNOWN};
use super::schemas::{Job, JobStatusDoc};
use super::{Api, EXTENSIONS};

/// Extension: the jobs a job waits for. An empty list removes every dependency.
#[derive(Serialize, ToSchema)]
pub struct JobDependenciesChange {
    pub depends_on: Vec<String>,
}

/// A job another job depends on, as it is now.
#[derive(Serialize, ToSchema)]
pub struct JobDependency {
    pub id: String,
    /// Empty when the job was deleted.
    pub name: String,
    /// The job's status, or `deleted`.
    pub status: String,
}

#[derive(Serialize, ToSchema)]
pub struct JobDependencies {
    pub job_id: String,
    pub status: JobStatusDoc,
    /// What it waits for, or why it is on hold.
    pub activity: String,
    pub dependencies: Vec<JobDependency>,
}

/// A counted resource pool of the farm.
#[derive(Serialize, ToSchema)]
pub struct ResourcePool {
    pub name: String,
    /// Units the pool holds (from the manager's config).
    pub size: u32,
    /// Units held by running tasks now.
    pub in_use: u64,
}

#[derive(Serialize, ToSchema)]
pub struct ResourcePools {
    pub pools: Vec<ResourcePool>,
}

/// When something is expected to be done. The times are absent when no estimate can be
/// made; `basis` says why, or what the estimate rests on.
#[derive(Serialize, ToSchema)]
pub struct Completion {
    /// Tasks still to run (queued, soft-failed, running).
    pub remaining_tasks: u64,
    #[schema(format = DateTime)]
    pub finish_at: Option<String>,
    /// The range the finish time falls in (95 %, from the spread of task durations).
    #[schema(format = DateTime)]
    pub earliest: Option<String>,
    #[schema(format = DateTime)]
    pub latest: Option<String>,
    pub remaining_seconds: Option<f64>,
    pub basis: String,
}

#[derive(Serialize, ToSchema)]
pub struct JobCompletion {
    pub job_id: String,
    #[serde(flatten)]
    pub completion: Completion,
}

/// Estimated completion of every unfinished job (in scheduling order) and of the farm.
#[derive(Serialize, ToSchema)]
pub struct CompletionEstimates {
    #[schema(format = DateTime)]
    pub computed_at: String,
    pub farm: Completion,
    pub jobs: Vec<JobCompletion>,
}

pub(super) fn describe(api: &mut Api) {
    let body = api.schema::<CompletionEstimates>();
    api.op(
        Get,
        "/api/v3/eta",
        EXTENSIONS,
        "When jobs and the farm will be done",
    )
    .answer(
        200,
        "Estimates from measured task durations, the connected workers that can run each \
         job and the work queued ahead of it.",
        body,
    )
    .done();
    let body = api.schema::<JobDependencies>();
    api.op(
        Get,
        "/api/v3/jobs/{id}/dependencies",
        EXTENSIONS,
        "The jobs a job depends on",
    )
    .answer(200, "Its dependencies and their statuses.", body)
    .errors(&[BAD, UNKNOWN])
    .done();
    let body = api.schema::<JobDependenciesChange>();
    let answer = api.schema::<Job>();
    api.op(
        Put,
        "/api/v3/jobs/{id}/dependencies",
        EXTENSIONS,
        "Change the jobs a job depends on",
    )
    .body(body)
    .answer(
        200,
        "The job, waiting-for-dependencies or queued as its new dependencies say.",
        answer,
    )
    .errors(&[BAD, UNKNOWN, REFUSED])
    .done();
    let body = api.schema::<ResourcePools>();
    api.op(
        Get,
        "/api/v3/resources",
        EXTENSIONS,
        "The farm's resource pools",
    )
    .answer(200, "Every configured pool and the units in use.", body)
    .done();
}
