//! What the manager tells clients about its setup: `/api/v3/configuration` and the
//! shared-storage location per audience and platform (the add-on asks at every connect).
use axum::Json;
use axum::extract::{Path, State};
use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;
use crate::variables::{
    JOBS, Variables, check_platform_name, manager_platform, normalize_platform,
};
use crate::{AppState, ManagerConfig};

#[derive(Serialize, ToSchema)]
pub struct ManagerConfiguration {
    /// The job storage on the manager: `<shared storage>/jobs` with Shaman on, else the
    /// shared storage (what `{jobs}` expands to).
    #[serde(rename = "storageLocation")]
    pub storage_location: String,
    #[serde(rename = "shamanEnabled")]
    pub shaman_enabled: bool,
    #[serde(rename = "isFirstRun")]
    pub is_first_run: bool,
}

#[derive(Serialize, ToSchema)]
pub struct SharedStorageLocation {
    /// The job storage on the asked platform: the Shaman checkout folder
    /// (`<shared storage>/jobs`) with Shaman on, else the shared storage.
    pub location: String,
    /// `users` or `workers`.
    pub audience: String,
    pub platform: String,
    #[serde(rename = "shamanEnabled")]
    pub shaman_enabled: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ManagerVariable {
    pub name: String,
    pub value: String,
    pub is_twoway: bool,
}

/// Variable name → its value on the asked platform.
#[derive(Serialize, ToSchema)]
pub struct ManagerVariables(pub BTreeMap<String, ManagerVariable>);

/// Flamenco's `ManagerVariableAudience`: who asks, users or workers.
fn check_audience(audience: &str) -> Result<(), ApiError> {
    if audience == "users" || audience == "workers" {
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "audience must be \"users\" or \"workers\", not \"{audience}\""
    )))
}

/// A platform the config could name; see [`check_platform_name`].
fn check_platform(platform: &str) -> Result<(), ApiError> {
    check_platform_name(platform).map_err(ApiError::bad_request)
}

/// Flamenco's "effective storage path" as a client on `platform` sees it: with Shaman on, the
/// checkout folder `<shared storage>/jobs`, else the shared storage — in both cases what
/// `{jobs}` expands to there. The add-on submits a .blend found inside it as it is instead of
/// uploading it, so with Shaman on the bare root would skip the upload of files saved
/// anywhere on the share. `[shaman.locations]` names the share per platform; without an
/// entry the manager's path goes through the two-way variables like any `{jobs}` path.
fn storage_location(config: &ManagerConfig, platform: &str) -> String {
    let platform = normalize_platform(platform);
    config
        .shaman
        .job_storage_location(&platform)
        .unwrap_or_else(|| Variables::from_config(config).expand(&platform, &format!("{{{JOBS}}}")))
}

/// `GET /api/v3/configuration`
pub async fn configuration(State(state): State<AppState>) -> Json<ManagerConfiguration> {
    let config = &state.config;
    Json(ManagerConfiguration {
        storage_location: storage_location(config, &manager_platform()),
        shaman_enabled: state.shaman.is_some(),
        is_first_run: false,
    })
}

/// `GET /api/v3/configuration/shared-storage/{audience}/{platform}`
pub async fn shared_storage(
    State(state): State<AppState>,
    Path((audience, platform)): Path<(String, String)>,
) -> Result<Json<SharedStorageLocation>, ApiError> {
    check_audience(&audience)?;
    check_platform(&platform)?;
    let config = &state.config;
    Ok(Json(SharedStorageLocation {
        location: storage_location(config, &platform),
        audience,
        platform,
        shaman_enabled: state.shaman.is_some(),
    }))
}

/// `GET /api/v3/configuration/variables/{audience}/{platform}` — every variable's value on
/// that platform (Flamenco's `ManagerVariables`, with `name` in each entry as its schema requires).
pub async fn variables(
    State(state): State<AppState>,
    Path((audience, platform)): Path<(String, String)>,
) -> Result<Json<ManagerVariables>, ApiError> {
    check_audience(&audience)?;
    check_platform(&platform)?;
    let variables = crate::variables::Variables::from_config(&state.config);
    let mut answer = BTreeMap::new();
    for resolved in variables.resolve_for(&platform) {
        // `{jobs}` holds the manager's own path; on another platform it is what a worker
        // there gets for it (`[shaman.locations]`, else the two-way variables).
        let value = if resolved.name == JOBS {
            storage_location(&state.config, &platform)
        } else {
            resolved.value
        };
        answer.insert(
            resolved.name.clone(),
            ManagerVariable {
                name: resolved.name,
                value,
                is_twoway: resolved.is_twoway,
            },
        );
    }
    Ok(Json(ManagerVariables(answer)))
}
