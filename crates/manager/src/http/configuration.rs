//! What the manager tells clients about its setup: `/api/v3/configuration` and the
//! shared-storage location per audience and platform (the add-on asks at every connect).
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::error::ApiError;
use crate::AppState;

/// Flamenco's `ManagerVariableAudience`: who asks, users or workers.
fn check_audience(audience: &str) -> Result<(), ApiError> {
    if audience == "users" || audience == "workers" {
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "audience must be \"users\" or \"workers\", not \"{audience}\""
    )))
}

/// `GET /api/v3/configuration`
pub async fn configuration(State(state): State<AppState>) -> Json<Value> {
    let config = &state.config;
    Json(json!({
        "storageLocation": config.shaman.location_for(std::env::consts::OS, &config.base_dir),
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
    let config = &state.config;
    Ok(Json(json!({
        "location": config.shaman.location_for(&platform, &config.base_dir),
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
    let variables = crate::variables::Variables::from_config(&state.config);
    let mut answer = serde_json::Map::new();
    for resolved in variables.resolve_for(&platform) {
        answer.insert(
            resolved.name.clone(),
            json!({ "name": resolved.name, "value": resolved.value, "is_twoway": resolved.is_twoway }),
        );
    }
    Ok(Json(Value::Object(answer)))
}
