//! Version and other facts about this manager.
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::error::ApiError;
use crate::store::StatusCounts;
use crate::{AppState, VERSION};

/// `GET /api/v3/version`. `shortversion` is the Flamenco version the add-on expects
/// (configurable); `version` says what this really is.
pub async fn version(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "version": format!("{} (Castanet {VERSION})", state.config.flamenco_compat_version),
        "shortversion": state.config.flamenco_compat_version,
        "name": state.config.farm_name,
        "git": format!("castanet-{VERSION}"),
        "castanet_version": VERSION,
    }))
}

/// `GET /api/v3/status` → `{status}`: the farm's one-word status (see `state::farm_status`).
pub async fn farm_status(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    fn parsed<S: std::str::FromStr>(counts: StatusCounts) -> Vec<(S, i64)> {
        counts
            .into_iter()
            .filter_map(|(status, n)| Some((status.parse().ok()?, n)))
            .collect()
    }
    let jobs = parsed(state.store.job_status_counts().await?);
    let workers = parsed(state.store.worker_status_counts().await?);
    Ok(Json(
        json!({ "status": crate::state::farm_status(&jobs, &workers).as_str() }),
    ))
}
