//! The REST API under `/api/v3` (Flamenco's paths and shapes), the event stream, and
//! the job files. Handlers validate input, call the store/compiler, and shape JSON.
mod error;
mod events;
mod files;
mod jobs;
mod meta;
mod shapes;
mod submit;
mod tasks;

pub use error::ApiError;

use axum::Router;
use axum::routing::{get, post};

use crate::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v3/version", get(meta::version))
        .route("/api/v3/jobs/types", get(jobs::job_types))
        .route("/api/v3/jobs/type/{name}", get(jobs::job_type))
        .route(
            "/api/v3/jobs",
            post(submit::submit_job).get(jobs::list_jobs),
        )
        .route("/api/v3/jobs/check", post(submit::check_job))
        .route("/api/v3/jobs/{id}", get(jobs::get_job))
        .route("/api/v3/jobs/{id}/tasks", get(jobs::job_tasks))
        .route("/api/v3/tasks/{id}", get(tasks::get_task))
        .route("/api/v3/tasks/{id}/log", get(tasks::task_log_info))
        .route("/api/v3/tasks/{id}/logtail", get(tasks::task_log_tail))
        .route("/api/v3/events", get(events::event_stream))
        .route("/job-files/{*path}", get(files::job_file))
        .with_state(state)
}

/// Unknown paths get a JSON 404 (set after merging the gRPC routes, which bring their own).
pub fn with_fallback(router: Router) -> Router {
    router.fallback(error::not_found)
}
