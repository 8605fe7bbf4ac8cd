//! The operations on jobs and tasks and the manager's configuration, with their body
//! types (workers, Shaman and extensions: `farm_and_extension_paths.rs`). A route added
//! to the router without a line in one of the two fails `tests/openapi.rs`.
use utoipa::openapi::path::HttpMethod::{Delete, Get, Post};

use super::errors::{BAD, REFUSED, UNKNOWN};
use super::schemas::*;
use super::{Api, Body};
use crate::http::blocklist::JobBlocklistEntry;
use crate::http::job_delete::{JobDeletionInfo, JobMassDeletionSelection};

/// Any write may meet a full disk; nothing is stored then.
const FULL: (u16, &str) = (
    507,
    "The database's disk or the storage directory (task logs) is full: nothing was stored.",
);
/// Every job-type script slot stayed taken for a minute (see `compiler/gate.rs`).
const BUSY: (u16, &str) = (503, "The manager is busy compiling other jobs: try again.");

pub(super) fn describe(api: &mut Api) {
    meta(api);
    jobs(api);
    job_actions(api);
    tasks(api);
    super::farm_and_extension_paths::describe(api);
    super::scheduling::describe(api);
    super::openjd::describe(api);
    super::preview_video::describe(api);
    super::approval::describe(api);
    super::notifications::describe(api);
}

fn meta(api: &mut Api) {
    let body = api.schema::<FlamencoVersion>();
    api.op(Get, "/api/v3/version", "meta", "Version of the manager")
        .answer(
            200,
            "The version; `shortversion` is what the add-on compares.",
            body,
        )
        .done();
    let body = api.schema::<FarmStatusReport>();
    api.op(Get, "/api/v3/status", "meta", "Status of the farm")
        .answer(
            200,
            "active, idle, waiting, asleep or inoperative, computed on request.",
            body,
        )
        .done();
    let body = api.schema::<ManagerRole>();
    api.op(
        Get,
        "/api/v3/manager",
        "meta",
        "Whether this manager is the active one",
    )
    .answer(
        200,
        "Its role (`active`, or `standby` when another manager sharing its PostgreSQL database \
         is active), the database engine, and the active manager's address.",
        body,
    )
    .done();
    let body = api.schema::<ManagerConfiguration>();
    api.op(
        Get,
        "/api/v3/configuration",
        "meta",
        "Storage location and Shaman state",
    )
    .answer(200, "The configuration clients need.", body)
    .done();
    let body = api.schema::<ManagerVariables>();
    let path = "/api/v3/configuration/variables/{audience}/{platform}";
    api.op(
        Get,
        path,
        "meta",
        "Variables for an audience (users, workers) and platform",
    )
    .answer(200, "Each variable's value on that platform.", body)
    .errors(&[BAD])
    .done();
    let body = api.schema::<SharedStorageLocation>();
    let path = "/api/v3/configuration/shared-storage/{audience}/{platform}";
    api.op(
        Get,
        path,
        "meta",
        "Shared-storage location for an audience and platform",
    )
    .answer(
        200,
        "Where job files live on that platform (Flamenco's effective storage path): with \
         Shaman on, its checkout folder `<shared storage>/jobs`, what `{jobs}` expands to; \
         else the shared storage. The add-on submits a .blend inside it as it is.",
        body,
    )
    .errors(&[BAD])
    .done();
}

fn jobs(api: &mut Api) {
    let body = api.schema::<AvailableJobTypes>();
    api.op(Get, "/api/v3/jobs/types", "jobs", "Every job type, by name")
        .answer(200, "The job types with their settings and etags.", body)
        .done();
    let body = api.schema::<AvailableJobType>();
    api.op(Get, "/api/v3/jobs/type/{name}", "jobs", "One job type")
        .answer(200, "The job type.", body)
        .errors(&[UNKNOWN])
        .done();
    let (submitted, job) = (api.schema::<SubmittedJob>(), api.schema::<Job>());
    api.op(Post, "/api/v3/jobs", "jobs", "Submit a job")
        .body(submitted)
        .answer(200, "The stored job.", job)
        .errors(&[
            BAD,
            (412, "The job type's etag differs: reload the job types."),
            (
                503,
                "The manager is busy compiling other jobs (try again), or its storage \
                 directory is not writable: nothing was stored.",
            ),
            FULL,
        ])
        .done();
    let body = api.schema::<JobsQueryResult>();
    api.op(
        Get,
        "/api/v3/jobs",
        "jobs",
        "One page of jobs (Castanet adds paging and filters)",
    )
    .query(
        "limit",
        "Jobs per page, 1..=1000 (default 100; `total` says how many match).",
    )
    .query("offset", "Jobs to skip.")
    .query("status", "Comma-separated job statuses.")
    .query("q", "Text to find in the name, type or id.")
    .query(
        "order",
        "created (default), oldest, updated, priority or name.",
    )
    .answer(200, "The page, and how many jobs match in all.", body)
    .errors(&[BAD])
    .done();
    let body = api.schema::<SubmittedJob>();
    api.op(
        Post,
        "/api/v3/jobs/check",
        "jobs",
        "Check a job without storing it",
    )
    .body(body)
    .empty(204, "The job compiles.")
    .errors(&[
        BAD,
        (412, "The job type's etag differs: reload the job types."),
        BUSY,
    ])
    .done();
    let (query, result) = (api.schema::<JobsQuery>(), api.schema::<JobsQueryResult>());
    api.op(
        Post,
        "/api/v3/jobs/query",
        "jobs",
        "Query jobs (filters, order, paging)",
    )
    .body(query)
    .answer(200, "The matching page of jobs.", result)
    .errors(&[BAD])
    .done();
    let body = api.schema::<Job>();
    api.op(Get, "/api/v3/jobs/{id}", "jobs", "One job")
        .answer(200, "The job.", body)
        .errors(&[BAD, UNKNOWN])
        .done();
    let body = api.schema::<JobTasksSummary>();
    api.op(
        Get,
        "/api/v3/jobs/{id}/tasks",
        "jobs",
        "Every task of a job",
    )
    .answer(200, "The job's tasks.", body)
    .errors(&[UNKNOWN])
    .done();
    let body = api.schema::<JobLastRenderedImageInfo>();
    api.op(
        Get,
        "/api/v3/jobs/{id}/last-rendered",
        "jobs",
        "The job's last rendered image",
    )
    .answer(200, "Where the image is served.", body)
    .empty(204, "No image yet.")
    .errors(&[UNKNOWN])
    .done();
    let body = api.schema::<JobLastRenderedImageInfo>();
    api.op(
        Get,
        "/api/v3/jobs/last-rendered",
        "jobs",
        "The farm's last rendered image",
    )
    .answer(200, "Where the image is served.", body)
    .empty(204, "No image yet.")
    .done();
}

fn job_actions(api: &mut Api) {
    let body = api.schema::<JobStatusChange>();
    api.op(
        Post,
        "/api/v3/jobs/{id}/setstatus",
        "jobs",
        "Request a job status",
    )
    .body(body)
    .empty(204, "The status changed.")
    .errors(&[BAD, UNKNOWN, REFUSED])
    .done();
    let body = api.schema::<JobPriorityChange>();
    api.op(
        Post,
        "/api/v3/jobs/{id}/setpriority",
        "jobs",
        "Set a job's priority",
    )
    .body(body)
    .empty(204, "The priority changed.")
    .errors(&[BAD, UNKNOWN])
    .done();
    let body = api.schema::<JobTagChange>();
    api.op(
        Post,
        "/api/v3/jobs/{id}/settag",
        "jobs",
        "Limit a job to a worker tag, or not",
    )
    .body(body)
    .empty(204, "The tag changed.")
    .errors(&[BAD, UNKNOWN, (406, "No such worker tag.")])
    .done();
    let body = api.list_of::<JobBlocklistEntry>();
    api.op(
        Get,
        "/api/v3/jobs/{id}/blocklist",
        "jobs",
        "Workers blocked from task types of a job",
    )
    .answer(200, "The blocklist, by worker name.", body)
    .errors(&[UNKNOWN])
    .done();
    let body = api.list_of::<JobBlocklistEntry>();
    api.op(
        Delete,
        "/api/v3/jobs/{id}/blocklist",
        "jobs",
        "Remove blocklist entries",
    )
    .body(body)
    .empty(
        204,
        "The entries are gone (entries not on the list are ignored).",
    )
    .errors(&[BAD, UNKNOWN])
    .done();
    api.op(Delete, "/api/v3/jobs/{id}", "jobs", "Delete a job")
        .empty(
            204,
            "The job, its tasks, logs, previews and Shaman checkout (unless another job uses \
             it) are gone; running tasks were aborted.",
        )
        .errors(&[BAD, UNKNOWN])
        .done();
    let body = api.schema::<JobDeletionInfo>();
    api.op(
        Get,
        "/api/v3/jobs/{id}/what-would-delete-do",
        "jobs",
        "What deleting removes",
    )
    .answer(200, "Whether the Shaman checkout would go too.", body)
    .errors(&[BAD, UNKNOWN])
    .done();
    let body = api.schema::<JobMassDeletionSelection>();
    api.op(
        Delete,
        "/api/v3/jobs/mass-delete",
        "jobs",
        "Delete jobs by last update",
    )
    .body(body)
    .empty(204, "The jobs are marked and deleted in the background.")
    .errors(&[
        BAD,
        (416, "No job was last updated at or before the bound."),
    ])
    .done();
}

fn tasks(api: &mut Api) {
    let body = api.schema::<Task>();
    api.op(Get, "/api/v3/tasks/{id}", "jobs", "One task")
        .query(
            "platform",
            "Extension: linux, windows or darwin — the commands with their {variables} expanded \
             as a worker on that platform receives them (default: as stored, unexpanded).",
        )
        .answer(200, "The task.", body)
        .errors(&[BAD, UNKNOWN])
        .done();
    let body = api.schema::<TaskStatusChange>();
    api.op(
        Post,
        "/api/v3/tasks/{id}/setstatus",
        "jobs",
        "Requeue or cancel a task",
    )
    .body(body)
    .empty(204, "The status changed.")
    .errors(&[BAD, UNKNOWN, REFUSED])
    .done();
    let body = api.schema::<TaskLogInfo>();
    api.op(
        Get,
        "/api/v3/tasks/{id}/log",
        "jobs",
        "Where the task's whole log is",
    )
    .answer(200, "The log's URL and size.", body)
    .empty(204, "Nothing logged yet.")
    .errors(&[UNKNOWN])
    .done();
    api.op(
        Get,
        "/api/v3/tasks/{id}/logtail",
        "jobs",
        "The end of the task's log",
    )
    .answer(
        200,
        "At most the last 2 KiB, from a line start.",
        Body::Other("text/plain"),
    )
    .empty(204, "Nothing logged yet.")
    .errors(&[UNKNOWN])
    .done();
}
