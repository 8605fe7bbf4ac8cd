//! The scheduling extensions in the OpenAPI document: job limits (resource pools, worker
//! limit), dependencies between jobs, and the farm's resource pools.
use utoipa::openapi::path::HttpMethod::{Get, Put};

use super::errors::{BAD, REFUSED, UNKNOWN};
use super::schemas::Job;
use super::{Api, EXTENSIONS};
pub use crate::http::eta::CompletionEstimates;
pub use crate::http::scheduling::{
    DependenciesChange as JobDependenciesChange, JobDependencies, ResourcePools,
};

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
