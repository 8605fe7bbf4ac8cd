//! The operations on workers, worker tags and Shaman, and Castanet's own endpoints
//! (tagged `extensions`); see `paths.rs` for the rest.
use utoipa::openapi::path::HttpMethod::{Delete, Get, Post, Put};

use super::errors::{BAD, UNKNOWN};
use super::schemas::*;
use super::{Api, Body, EXTENSIONS};

const NO_SHAMAN: (u16, &str) = (503, "Shaman is disabled in the manager's configuration.");

pub(super) fn describe(api: &mut Api) {
    workers(api);
    shaman(api);
    extensions(api);
}

fn workers(api: &mut Api) {
    let body = api.schema::<WorkerList>();
    api.op(
        Get,
        "/api/v3/worker-mgt/workers",
        "worker-mgt",
        "Every worker",
    )
    .answer(200, "The workers (deleted ones excluded).", body)
    .done();
    let body = api.schema::<Worker>();
    api.op(
        Get,
        "/api/v3/worker-mgt/workers/{id}",
        "worker-mgt",
        "One worker",
    )
    .answer(200, "The worker.", body)
    .errors(&[BAD, UNKNOWN])
    .done();
    api.op(
        Delete,
        "/api/v3/worker-mgt/workers/{id}",
        "worker-mgt",
        "Delete a worker",
    )
    .empty(
        204,
        "Its tasks are requeued and its credentials stop working.",
    )
    .errors(&[BAD, UNKNOWN])
    .done();
    let body = api.schema::<WorkerStatusChangeRequest>();
    let path = "/api/v3/worker-mgt/workers/{id}/setstatus";
    api.op(Post, path, "worker-mgt", "Ask a worker to change status")
        .body(body)
        .empty(204, "Requested.")
        .errors(&[BAD, UNKNOWN, (412, "The worker cannot restart.")])
        .done();
    api.op(
        Delete,
        path,
        EXTENSIONS,
        "Withdraw a pending status request",
    )
    .empty(204, "No request is pending now.")
    .errors(&[BAD, UNKNOWN])
    .done();
    let body = api.schema::<WorkerTagChangeRequest>();
    let path = "/api/v3/worker-mgt/workers/{id}/settags";
    api.op(Post, path, "worker-mgt", "Set a worker's tags")
        .body(body)
        .empty(204, "The worker's tags are these now.")
        .errors(&[BAD, UNKNOWN])
        .done();
    let path = "/api/v3/worker-mgt/workers/{id}/sleep-schedule";
    let body = api.schema::<WorkerSleepSchedule>();
    api.op(Get, path, "worker-mgt", "A worker's sleep schedule")
        .answer(200, "The schedule.", body)
        .empty(204, "The worker has none.")
        .errors(&[BAD, UNKNOWN])
        .done();
    let body = api.schema::<WorkerSleepSchedule>();
    api.op(Post, path, "worker-mgt", "Set a worker's sleep schedule")
        .body(body)
        .empty(204, "Stored and applied.")
        .errors(&[BAD, UNKNOWN])
        .done();
    let body = api.schema::<WorkerTagList>();
    api.op(
        Get,
        "/api/v3/worker-mgt/tags",
        "worker-mgt",
        "Every worker tag",
    )
    .answer(200, "The tags.", body)
    .done();
    let (tag, created) = (api.schema::<WorkerTag>(), api.schema::<WorkerTag>());
    api.op(
        Post,
        "/api/v3/worker-mgt/tags",
        "worker-mgt",
        "Create a worker tag",
    )
    .body(tag)
    .answer(200, "The created tag.", created)
    .errors(&[BAD, (409, "A tag with that name exists.")])
    .done();
    let body = api.schema::<WorkerTag>();
    api.op(
        Get,
        "/api/v3/worker-mgt/tag/{id}",
        "worker-mgt",
        "One worker tag",
    )
    .answer(200, "The tag.", body)
    .errors(&[BAD, UNKNOWN])
    .done();
    let body = api.schema::<WorkerTag>();
    api.op(
        Put,
        "/api/v3/worker-mgt/tag/{id}",
        "worker-mgt",
        "Change a worker tag",
    )
    .body(body)
    .empty(204, "Changed.")
    .errors(&[BAD, UNKNOWN, (409, "A tag with that name exists.")])
    .done();
    api.op(
        Delete,
        "/api/v3/worker-mgt/tag/{id}",
        "worker-mgt",
        "Delete a worker tag",
    )
    .empty(204, "Deleted; its jobs may now run on any worker.")
    .errors(&[BAD, UNKNOWN])
    .done();
}

fn shaman(api: &mut Api) {
    let (request, answer) = (
        api.schema::<ShamanRequirementsRequest>(),
        api.schema::<ShamanRequirementsResponse>(),
    );
    let path = "/api/v3/shaman/checkout/requirements";
    api.op(
        Post,
        path,
        "shaman",
        "Which files of a checkout still need uploading",
    )
    .body(request)
    .answer(
        200,
        "The files not stored yet, each with its status.",
        answer,
    )
    .errors(&[BAD, NO_SHAMAN])
    .done();
    let (request, answer) = (
        api.schema::<ShamanCheckout>(),
        api.schema::<ShamanCheckoutResult>(),
    );
    api.op(
        Post,
        "/api/v3/shaman/checkout/create",
        "shaman",
        "Create a checkout",
    )
    .body(request)
    .answer(200, "The checkout's (possibly uniquified) path.", answer)
    .errors(&[
        BAD,
        (424, "Files are missing: upload them first."),
        (409, "The checkout exists."),
        NO_SHAMAN,
    ])
    .done();
    let path = "/api/v3/shaman/files/{checksum}/{filesize}";
    let body = api.schema::<ShamanSingleFileStatus>();
    api.op(Get, path, "shaman", "Status of one file in the store")
        .answer(200, "unknown, uploading or stored.", body)
        .errors(&[BAD, NO_SHAMAN])
        .done();
    api.op(Post, path, "shaman", "Upload one file")
        .body(Body::Other("application/octet-stream"))
        .empty(204, "Stored.")
        .empty(208, "Already stored.")
        .errors(&[
            BAD,
            (417, "The content does not match the checksum or size."),
            (
                425,
                "Being uploaded by another client: upload later (deferred uploads).",
            ),
            NO_SHAMAN,
        ])
        .done();
}

fn extensions(api: &mut Api) {
    let body = api.schema::<WhyNotRunning>();
    api.op(
        Get,
        "/api/v3/tasks/{id}/why",
        EXTENSIONS,
        "Why a task is not running",
    )
    .answer(200, "Every rule that keeps the task from running.", body)
    .errors(&[BAD, UNKNOWN])
    .done();
    api.op(
        Get,
        "/api/v3/events",
        EXTENSIONS,
        "Live events (Server-Sent Events)",
    )
    .query("job", "Only events of this job (a UUID).")
    .query("task", "Only events of this task (a UUID).")
    .answer(
        200,
        "Events named job, task, worker, task-log, last-rendered, job-deleted and \
             resync (re-read what you show); each data names what changed and, for job, task \
             and worker events, carries its current fields (name, status, activity, steps, \
             updated; tasks also progress, fault_class, worker; jobs job_type, priority; \
             workers version, status_change, last_seen) as of the end of the burst; a \
             last-rendered event of a numbered frame also carries task_id and frame.",
        Body::Other("text/event-stream"),
    )
    .errors(&[BAD])
    .done();
    let body = api.schema::<TaskPage>();
    api.op(
        Get,
        "/api/v3/jobs/{id}/tasks/page",
        EXTENSIONS,
        "One page of a job's tasks",
    )
    .query("offset", "Tasks to skip.")
    .query("limit", "Tasks per page, at most 1000.")
    .query("status", "Comma-separated task statuses.")
    .answer(200, "The page and the job's task counts.", body)
    .errors(&[BAD, UNKNOWN])
    .done();
    let body = api.schema::<JobTaskCounts>();
    api.op(
        Get,
        "/api/v3/jobs/task-counts",
        EXTENSIONS,
        "Task counts of many jobs",
    )
    .query("ids", "Comma-separated job ids (at most 1000).")
    .answer(200, "Per job, its tasks counted per status.", body)
    .errors(&[BAD])
    .done();
    let body = api.schema::<JobPreviewImages>();
    api.op(
        Get,
        "/api/v3/jobs/last-rendered-images",
        EXTENSIONS,
        "The newest preview image of many jobs",
    )
    .query(
        "ids",
        "Comma-separated job ids (at most 1000); jobs without an image are left out.",
    )
    .query(
        "limit",
        "Without ids: the most recently updated images, 1 to 1000 (default 100).",
    )
    .answer(
        200,
        "Each job's image path and when it was updated, newest first.",
        body,
    )
    .errors(&[(
        400,
        "An id is not a UUID, more than 1000 ids, a limit out of range, or both ids and limit.",
    )])
    .done();
    let body = api.schema::<FarmSummary>();
    api.op(
        Get,
        "/api/v3/farm/summary",
        EXTENSIONS,
        "Workers and tasks counted per status",
    )
    .answer(200, "The counts.", body)
    .done();
    let body = api.schema::<AuditLog>();
    api.op(
        Get,
        "/api/v3/audit",
        EXTENSIONS,
        "The audit log of changing requests",
    )
    .query("limit", "Entries to return.")
    .query("before", "Only entries with a smaller id (paging).")
    .answer(200, "The newest entries first.", body)
    .errors(&[(400, "`limit` or `before` is not a whole number.")])
    .done();
    let body = api.schema::<RegistrationSecret>();
    api.op(
        Get,
        "/api/v3/registration-secret",
        EXTENSIONS,
        "The worker registration secret",
    )
    .answer(200, "The secret and when it was made.", body)
    .done();
    let body = api.schema::<RegistrationSecret>();
    let path = "/api/v3/registration-secret/rotate";
    api.op(
        Post,
        path,
        EXTENSIONS,
        "Make a new worker registration secret",
    )
    .answer(
        200,
        "The new secret; registered workers keep working.",
        body,
    )
    .done();
    api.op(Get, "/api/v3/openapi.json", EXTENSIONS, "This document")
        .answer(
            200,
            "The OpenAPI document.",
            Body::Other("application/json"),
        )
        .done();
    api.op(
        Get,
        "/job-files/{*path}",
        EXTENSIONS,
        "A job's files (task logs, previews, frame images, preview videos)",
    )
    .answer(200, "The file.", Body::Other("application/octet-stream"))
    .answer(
        206,
        "The byte range asked for (`Range: bytes=…`, one range), so videos can seek.",
        Body::Other("application/octet-stream"),
    )
    .errors(&[
        (
            400,
            "The path leaves the job files (`..`, an absolute path) or holds a NUL or a backslash.",
        ),
        UNKNOWN,
        (416, "The byte range lies beyond the file's end."),
    ])
    .done();
    api.op(Get, "/healthz", EXTENSIONS, "Liveness")
        .answer(200, "The manager runs.", Body::Other("text/plain"))
        .done();
    let body = api.schema::<Readiness>();
    api.op(
        Get,
        "/readyz",
        EXTENSIONS,
        "Readiness: the database takes writes, the storage directory takes files",
    )
    .answer(200, "Ready.", body)
    .errors(&[(
        503,
        "The database does not take writes (or its disk has under 16 MiB free), or the \
         storage directory takes no files.",
    )])
    .done();
    api.op(Get, "/metrics", EXTENSIONS, "Prometheus metrics")
        .answer(
            200,
            "Metrics in Prometheus' text format.",
            Body::Other("text/plain"),
        )
        .done();
}
