//! The REST API under `/api/v3` (Flamenco's paths and shapes), the event stream, and
//! the job files. Handlers validate input, call the store/compiler, and shape JSON.
mod access;
mod actions;
mod approval;
mod audit;
mod blocklist;
mod body;
mod byte_ranges;
mod configuration;
mod dashboard;
mod enrolment;
mod error;
mod eta;
mod events;
mod files;
mod health;
mod job_delete;
mod jobs;
mod last_rendered;
mod last_rendered_images;
mod meta;
mod notifications;
mod openapi;
mod openjd;
mod plain_errors;
mod rendered_frames;
mod scheduling;
mod shaman;
mod shapes;
mod status_schemas;
mod submit;
mod tags;
mod task_pages;
mod tasks;
pub mod why;
mod worker_shapes;
mod worker_status;
mod workers;

pub use access::{AccessConfig, AccessMode};
pub use error::ApiError;

use axum::Router;
use axum::routing::{delete, get, post};

use crate::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v3/version", get(meta::version))
        .route("/api/v3/status", get(meta::farm_status))
        .route("/api/v3/manager", get(meta::manager_role))
        .route("/api/v3/openapi.json", get(openapi::openapi_json))
        .route("/api/v3/jobs/types", get(jobs::job_types))
        .route("/api/v3/jobs/type/{name}", get(jobs::job_type))
        .route(
            "/api/v3/jobs",
            post(submit::submit_job).get(jobs::list_jobs),
        )
        .route("/api/v3/jobs/check", post(submit::check_job))
        .route("/api/v3/jobs/openjd", post(openjd::submit_openjd))
        .route(
            "/api/v3/jobs/{id}",
            get(jobs::get_job).delete(job_delete::delete_job),
        )
        .route("/api/v3/jobs/{id}/setstatus", post(actions::set_job_status))
        .route("/api/v3/jobs/{id}/approve", post(approval::approve_job))
        .route("/api/v3/jobs/{id}/reject", post(approval::reject_job))
        .route(
            "/api/v3/jobs/{id}/dependencies",
            get(scheduling::job_dependencies).put(scheduling::set_job_dependencies),
        )
        .route("/api/v3/resources", get(scheduling::resource_pools))
        .route("/api/v3/eta", get(eta::eta))
        .route(
            "/api/v3/jobs/{id}/setpriority",
            post(actions::set_job_priority),
        )
        .route(
            "/api/v3/jobs/{id}/blocklist",
            get(blocklist::job_blocklist).delete(blocklist::remove_blocklist_entries),
        )
        .route(
            "/api/v3/jobs/{id}/what-would-delete-do",
            get(job_delete::what_would_delete_do),
        )
        .route("/api/v3/jobs/mass-delete", delete(job_delete::mass_delete))
        .route(
            "/api/v3/tasks/{id}/setstatus",
            post(actions::set_task_status),
        )
        .route("/api/v3/tasks/{id}/why", get(why::why_not_running))
        .route("/api/v3/jobs/{id}/tasks", get(jobs::job_tasks))
        .route(
            "/api/v3/jobs/{id}/tasks/page",
            get(task_pages::job_tasks_page),
        )
        .route("/api/v3/farm/summary", get(task_pages::farm_summary))
        .route(
            "/api/v3/jobs/task-counts",
            get(task_pages::task_counts_of_jobs),
        )
        .route(
            "/api/v3/jobs/{id}/last-rendered",
            get(last_rendered::job_last_rendered),
        )
        .route(
            "/api/v3/jobs/last-rendered",
            get(last_rendered::farm_last_rendered),
        )
        .route(
            "/api/v3/jobs/{id}/rendered-frames",
            get(rendered_frames::rendered_frames),
        )
        .route(
            "/api/v3/jobs/{id}/preview-video",
            get(rendered_frames::preview_video),
        )
        .route(
            "/api/v3/jobs/last-rendered-images",
            get(last_rendered_images::last_rendered_images),
        )
        .route("/api/v3/tasks/{id}", get(tasks::get_task))
        .route("/api/v3/tasks/{id}/log", get(tasks::task_log_info))
        .route("/api/v3/tasks/{id}/logtail", get(tasks::task_log_tail))
        .route("/api/v3/events", get(events::event_stream))
        .route("/api/v3/jobs/query", post(jobs::query_jobs))
        .route("/api/v3/jobs/{id}/settag", post(tags::set_job_tag))
        .route("/api/v3/worker-mgt/workers", get(workers::list_workers))
        .route(
            "/api/v3/worker-mgt/workers/{id}",
            get(workers::get_worker).delete(workers::delete_worker),
        )
        .route(
            "/api/v3/worker-mgt/workers/{id}/settags",
            post(workers::set_worker_tags),
        )
        .route(
            "/api/v3/worker-mgt/workers/{id}/setstatus",
            post(worker_status::set_worker_status).delete(worker_status::clear_worker_status),
        )
        .route(
            "/api/v3/worker-mgt/workers/{id}/sleep-schedule",
            get(worker_status::get_sleep_schedule).post(worker_status::set_sleep_schedule),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/api/v3/configuration", get(configuration::configuration))
        .route(
            "/api/v3/configuration/variables/{audience}/{platform}",
            get(configuration::variables),
        )
        .route(
            "/api/v3/configuration/shared-storage/{audience}/{platform}",
            get(configuration::shared_storage),
        )
        .route(
            "/api/v3/worker-mgt/tags",
            get(tags::list_tags).post(tags::create_tag),
        )
        .route(
            "/api/v3/worker-mgt/tag/{id}",
            get(tags::get_tag)
                .put(tags::update_tag)
                .delete(tags::delete_tag),
        )
        .route(
            "/api/v3/shaman/checkout/requirements",
            post(shaman::requirements),
        )
        .route(
            "/api/v3/shaman/checkout/create",
            post(shaman::create_checkout),
        )
        .route(
            "/api/v3/shaman/files/{checksum}/{filesize}",
            get(shaman::file_status).post(shaman::upload_file),
        )
        .route("/job-files/{*path}", get(files::job_file))
        .route(
            "/api/v3/notifications/rules",
            get(notifications::list_rules).post(notifications::create_rule),
        )
        .route(
            "/api/v3/notifications/rules/{rule_id}",
            get(notifications::get_rule)
                .put(notifications::update_rule)
                .delete(notifications::delete_rule),
        )
        .route(
            "/api/v3/notifications/rules/{rule_id}/test",
            post(notifications::test_rule),
        )
        .route(
            "/api/v3/notifications/deliveries",
            get(notifications::list_deliveries),
        )
        .route("/api/v3/audit", get(audit::audit_log))
        .route("/api/v3/registration-secret", get(enrolment::show_secret))
        .route(
            "/api/v3/registration-secret/rotate",
            post(enrolment::rotate_secret),
        )
        .layer(axum::middleware::from_fn(plain_errors::as_json))
        // Keep this layer last: it guards (and audits) only the routes added above it.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::guard,
        ))
        .with_state(state)
}

/// Unknown paths get the dashboard (its own routes) or, under the API, a JSON 404 (set
/// after merging the gRPC routes, which bring their own).
pub fn with_fallback(router: Router) -> Router {
    router.fallback(dashboard::serve_or_not_found)
}
