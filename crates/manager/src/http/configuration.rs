//! What the manager tells clients about its setup: `/api/v3/configuration` and the
//! shared-storage location per audience and platform (the add-on asks at every connect).
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::error::ApiError;
use crate::variables::{
    JOBS, Variables, check_platform_name, manager_platform, normalize_platform,
};
use crate::{AppState, ManagerConfig};

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
pub async fn configuration(State(state): State<AppState>) -> Json<Value> {
    let config = &state.config;
    Json(json!({
        "storageLocation": storage_location(config, &manager_platform()),
        "shamanEnabled": state.shaman.is_some(),
        "isFirstRun": false,
    }))
}

/// `GET /api/v3/configuration/shared-storage/{audience}/{platform}`
pub async fn shared_storage(
    State(state): State<AppState>,
    Path((audience, platform)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    check_audience(&audience)?;
    check_platform(&platform)?;
    let config = &state.config;
    Ok(Json(json!({
        "location": storage_location(config, &platform),
        "audience": audience,
        "platform": platform,
        "shamanEnabled": state.shaman.is_some(),
    })))
}

/// `GET /api/v3/configuration/variables/{audience}/{platform}` — every variable's value on
/// that platform (Flamenco's `ManagerVariables`, with `name` in each entry as its schema requires).
pub async fn variables(
    State(state): State<AppState>,
    Path((audience, platform)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    check_audience(&audience)?;
    check_platform(&platform)?;
    let variables = crate::variables::Variables::from_config(&state.config);
    let mut answer = serde_json::Map::new();
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
            json!({ "name": resolved.name, "value": value, "is_twoway": resolved.is_twoway }),
        );
    }
    Ok(Json(Value::Object(answer)))
}
