//! Version and other facts about this manager.
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

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
