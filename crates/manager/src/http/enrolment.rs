//! The registration secret for the dashboard's admin panel (extensions, admin only):
//! `GET /api/v3/registration-secret` shows it, `POST /api/v3/registration-secret/rotate`
//! replaces it. Registered workers keep their tokens; new ones need the new secret.
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;
use crate::AppState;
use crate::store;

/// Extension: the secret new workers register with.
#[derive(Serialize, ToSchema)]
pub struct RegistrationSecret {
    pub secret: String,
    /// When it was last rotated; null if never.
    #[schema(format = DateTime)]
    pub rotated_at: Option<String>,
}

fn shape(secret: &store::RegistrationSecret) -> RegistrationSecret {
    RegistrationSecret {
        secret: secret.secret.clone(),
        rotated_at: secret.rotated_at.clone(),
    }
}

pub async fn show_secret(
    State(state): State<AppState>,
) -> Result<Json<RegistrationSecret>, ApiError> {
    let secret = state
        .store
        .registration_secret(&state.config.registration_secret)
        .await?;
    Ok(Json(shape(&secret)))
}

pub async fn rotate_secret(
    State(state): State<AppState>,
) -> Result<Json<RegistrationSecret>, ApiError> {
    let secret = state
        .store
        .rotate_registration_secret(
            &crate::config::generate_secret(),
            &state.config.registration_secret,
        )
        .await?;
    tracing::info!("the registration secret was rotated through the API");
    Ok(Json(shape(&secret)))
}
