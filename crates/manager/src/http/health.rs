//! Operations endpoints (extensions): `/healthz` (the process answers), `/readyz` (the
//! database takes writes and is migrated, the storage directory takes files) and `/metrics` (Prometheus text format).
use std::fmt::Write;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;
use crate::AppState;
use crate::store::StatusCounts;

/// Extension: database readiness.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    pub database: String,
    pub migrations: i64,
    /// `ok`: the storage directory (task logs) takes files.
    pub storage: String,
}

/// `GET /healthz`
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz` — 200 when the database is writable and migrated and the storage directory
/// takes files, else 503 saying why.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let not_ready =
        |why: String| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, why).into_response();
    let migrations = match state.store.check_ready().await {
        Ok(migrations) => migrations,
        Err(e) => return not_ready(format!("not ready: {e}")),
    };
    if let Err(e) = state.logs.check_writable().await {
        return not_ready(format!(
            "not ready: storage directory {} is not writable: {e}",
            state.logs.jobs_root().display()
        ));
    }
    axum::Json(Readiness {
        database: "ok".to_string(),
        migrations,
        storage: "ok".to_string(),
    })
    .into_response()
}

fn gauge_by_status(out: &mut String, name: &str, help: &str, counts: &StatusCounts) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (status, count) in counts {
        let status = if status.is_empty() {
            "registered"
        } else {
            status
        };
        let _ = writeln!(out, "{name}{{status=\"{status}\"}} {count}");
    }
}

fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}

/// `GET /metrics`
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let mut out = String::new();
    gauge_by_status(
        &mut out,
        "castanet_tasks",
        "Tasks by status.",
        &state.store.task_status_counts().await?,
    );
    gauge_by_status(
        &mut out,
        "castanet_jobs",
        "Jobs by status.",
        &state.store.job_status_counts().await?,
    );
    gauge_by_status(
        &mut out,
        "castanet_workers",
        "Workers by status (not deleted).",
        &state.store.worker_status_counts().await?,
    );
    gauge(
        &mut out,
        "castanet_sse_clients",
        "Open live-event (SSE) connections.",
        state.events.subscriber_count() as u64,
    );
    let bytes = state.store.database_bytes().await?;
    gauge(
        &mut out,
        "castanet_database_bytes",
        "Size of the database: the SQLite file and its WAL, or the PostgreSQL database.",
        bytes,
    );
    state.store.metrics().render(&mut out);
    state.transfers.farm_totals().render(&mut out);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}
