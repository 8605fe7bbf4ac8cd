//! Open Job Description templates in the OpenAPI document: `POST /api/v3/jobs/openjd`.
// Never constructed: only the schema generator reads these types.
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::path::HttpMethod::Post;

use super::errors::BAD;
use super::schemas::{Job, JobRequirements};
use super::{Api, EXTENSIONS};

/// Extension: an Open Job Description job template (specification `jobtemplate-2023-09`) to
/// run as a job of type `openjd`. Each task of the template becomes a task of type `openjd`
/// running the worker command `openjd-run`; a step's tasks wait for every task of the steps
/// it depends on. A field not listed here is refused with 400 naming it.
#[derive(Serialize, ToSchema)]
pub struct OpenJdSubmission {
    /// The template as YAML or JSON text. Environments, host requirements, extensions,
    /// embedded files other than TEXT and NOTIFY_THEN_TERMINATE cancelation are refused
    /// (400 naming the feature and where it is).
    pub template: String,
    /// Values of the template's job parameters, by name: strings, or numbers for INT and
    /// FLOAT (their text is accepted too). Parameters left out take their default; one
    /// without a default, an unknown name or a value breaking its definition is a 400
    /// naming the parameter and the rule.
    pub parameters: Option<BTreeMap<String, serde_json::Value>>,
    /// Replaces the template's job name (resolved from its `name`).
    pub name: Option<String>,
    /// Default 50.
    pub priority: Option<i32>,
    /// Worker tag id: only workers with this tag run the job.
    pub worker_tag: Option<String>,
    /// The submitter's platform (`linux`, `windows`, `darwin`); default: the manager's.
    pub submitter_platform: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
    /// `queued` (default) or `paused`.
    pub initial_status: Option<String>,
    pub requirements: Option<JobRequirements>,
    pub limits: Option<super::job_extensions::JobLimits>,
    /// Ids of jobs that must complete before this one runs.
    pub depends_on: Option<Vec<String>>,
    /// Hand out every Nth task first, then the gaps (at least 2).
    pub preview_first_every: Option<u32>,
    /// A command line run after every task of the job, as `on_complete` of a submitted job.
    pub on_complete: Option<String>,
}

pub(super) fn describe(api: &mut Api) {
    let (body, job) = (api.schema::<OpenJdSubmission>(), api.schema::<Job>());
    api.op(
        Post,
        "/api/v3/jobs/openjd",
        EXTENSIONS,
        "Submit an Open Job Description job template",
    )
    .body(body)
    .answer(
        200,
        "The stored job (type `openjd`; its settings hold `openjd_parameters`, every \
         parameter's value, and `openjd_steps`, each step's name, task count and dependencies).",
        job,
    )
    .errors(&[
        BAD,
        (
            503,
            "The manager's storage directory is not writable: nothing was stored.",
        ),
        (
            507,
            "The database's disk or the storage directory (task logs) is full: nothing was stored.",
        ),
    ])
    .done();
}
