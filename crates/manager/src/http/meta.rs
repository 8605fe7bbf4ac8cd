//! Version and other facts about this manager.
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;
use super::status_schemas::FarmStatusDoc;
use crate::store::StatusCounts;
use crate::{AppState, VERSION};

#[derive(Serialize, ToSchema)]
pub struct FlamencoVersion {
    pub version: String,
    /// The Flamenco version the add-on compares with its own (configurable).
    pub shortversion: String,
    pub name: String,
    pub git: String,
    /// Extension: this manager's own version.
    pub castanet_version: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct FarmStatusReport {
    #[schema(value_type = FarmStatusDoc)]
    pub status: String,
}

/// Extension: which manager this is, for managers sharing one PostgreSQL database.
#[derive(Serialize, ToSchema)]
pub struct ManagerRole {
    /// `active` (it schedules and writes) or `standby` (another manager sharing its
    /// PostgreSQL database is active: this one answers reads and refuses writes).
    pub role: String,
    /// The database engine: `sqlite` or `postgres`.
    pub database: String,
    /// The active manager's address, as it recorded it (PostgreSQL; null on SQLite).
    pub active_manager: Option<String>,
}

/// `GET /api/v3/manager` → whether this manager is the active one, and which is.
pub async fn manager_role(State(state): State<AppState>) -> Result<Json<ManagerRole>, ApiError> {
    let store = &state.store;
    Ok(Json(ManagerRole {
        role: if store.is_active() {
            "active"
        } else {
            "standby"
        }
        .into(),
        database: store.engine().name().into(),
        active_manager: store.active_manager().await?,
    }))
}

/// `GET /api/v3/version`. `shortversion` is the Flamenco version the add-on expects
/// (configurable); `version` says what this really is.
pub async fn version(State(state): State<AppState>) -> Json<FlamencoVersion> {
    Json(FlamencoVersion {
        version: format!(
            "{} (Castanet {VERSION})",
            state.config.flamenco_compat_version
        ),
        shortversion: state.config.flamenco_compat_version.clone(),
        name: state.config.farm_name.clone(),
        git: format!("castanet-{VERSION}"),
        castanet_version: Some(VERSION.to_string()),
    })
}

/// `GET /api/v3/status` → `{status}`: the farm's one-word status (see `state::farm_status`).
pub async fn farm_status(
    State(state): State<AppState>,
) -> Result<Json<FarmStatusReport>, ApiError> {
    fn parsed<S: std::str::FromStr>(counts: StatusCounts) -> Vec<(S, i64)> {
        counts
            .into_iter()
            .filter_map(|(status, n)| Some((status.parse().ok()?, n)))
            .collect()
    }
    let jobs = parsed(state.store.job_status_counts().await?);
    let workers = parsed(state.store.worker_status_counts().await?);
    Ok(Json(FarmStatusReport {
        status: crate::state::farm_status(&jobs, &workers)
            .as_str()
            .to_string(),
    }))
}
