//! Shaman endpoints under `/api/v3/shaman` (the Blender add-on's upload protocol).
//! Answers 503 when Shaman is disabled in the config.
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;
use crate::AppState;
use crate::shaman::{
    CheckoutError, FileKey, FileSpec, FileStatus, Shaman, ShamanError, UploadOutcome,
};

#[derive(Serialize, ToSchema)]
pub struct ShamanFileSpecWithStatus {
    pub sha: String,
    #[schema(value_type = i64)]
    pub size: u64,
    pub path: String,
    /// `unknown`, `uploading` or `stored`.
    #[schema(value_type = String)]
    pub status: FileStatus,
}

#[derive(Serialize, ToSchema)]
pub struct ShamanRequirementsResponse {
    pub files: Vec<ShamanFileSpecWithStatus>,
}

#[derive(Serialize, ToSchema)]
pub struct ShamanCheckoutResult {
    /// The checkout's path, uniquified when the asked one existed.
    #[serde(rename = "checkoutPath")]
    pub checkout_path: String,
}

#[derive(Serialize, ToSchema)]
pub struct ShamanSingleFileStatus {
    /// `unknown`, `uploading` or `stored`.
    #[schema(value_type = String)]
    pub status: FileStatus,
}

fn shaman(state: &AppState) -> Result<&Shaman, ApiError> {
    state.shaman.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Shaman is disabled on this manager",
        )
    })
}

impl From<ShamanError> for ApiError {
    fn from(e: ShamanError) -> Self {
        match e {
            ShamanError::Path(e) => ApiError::bad_request(e.to_string()),
            ShamanError::Io(e) => ApiError::internal(format!("shared storage: {e}")),
        }
    }
}

impl From<CheckoutError> for ApiError {
    fn from(e: CheckoutError) -> Self {
        let status = match &e {
            CheckoutError::Path(_) | CheckoutError::Conflict(_) => StatusCode::BAD_REQUEST,
            CheckoutError::MissingFiles(_) => StatusCode::FAILED_DEPENDENCY,
            CheckoutError::Exists(_) => StatusCode::CONFLICT,
            CheckoutError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

fn parse_json<T: for<'de> Deserialize<'de>>(body: &[u8], what: &str) -> Result<T, ApiError> {
    super::body::parse_object(body, what)
}

#[derive(Deserialize)]
struct Requirements {
    files: Vec<FileSpec>,
}

/// `POST /shaman/checkout/requirements`: which files still need uploading.
pub async fn requirements(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Json<ShamanRequirementsResponse>, ApiError> {
    let request: Requirements = parse_json(&body, "requirements request")?;
    let needed = shaman(&state)?.requirements(&request.files).await?;
    let files: Vec<_> = needed
        .into_iter()
        .map(|(spec, status)| ShamanFileSpecWithStatus {
            sha: spec.sha,
            size: spec.size,
            path: spec.path,
            status,
        })
        .collect();
    Ok(Json(ShamanRequirementsResponse { files }))
}

#[derive(Deserialize)]
struct Checkout {
    files: Vec<FileSpec>,
    #[serde(rename = "checkoutPath")]
    checkout_path: String,
}

/// `POST /shaman/checkout/create`: symlink the files into a (uniquified) checkout.
pub async fn create_checkout(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Json<ShamanCheckoutResult>, ApiError> {
    let request: Checkout = parse_json(&body, "checkout request")?;
    let path = shaman(&state)?
        .create_checkout(&request.checkout_path, &request.files)
        .await?;
    tracing::info!(checkout = %path, files = request.files.len(), "shaman checkout created");
    Ok(Json(ShamanCheckoutResult {
        checkout_path: path,
    }))
}

fn file_key(checksum: &str, size: &str) -> Result<FileKey, ApiError> {
    let size: u64 = size.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "file size \"{size}\" is not a whole number of bytes"
        ))
    })?;
    FileKey::new(checksum, size).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// `GET /shaman/files/{checksum}/{filesize}`: stored, uploading or unknown.
pub async fn file_status(
    State(state): State<AppState>,
    Path((checksum, size)): Path<(String, String)>,
) -> Result<Json<ShamanSingleFileStatus>, ApiError> {
    let key = file_key(&checksum, &size)?;
    let status = shaman(&state)?.status(&key).await;
    Ok(Json(ShamanSingleFileStatus { status }))
}

/// The add-on sends `True`/`False` (Python) or `true`/`false`.
fn can_defer(headers: &HeaderMap) -> bool {
    headers
        .get("X-Shaman-Can-Defer-Upload")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// `POST /shaman/files/{checksum}/{filesize}`: 204 stored, 208 already known,
/// 425 deferred, 417 when the content does not match.
pub async fn upload_file(
    State(state): State<AppState>,
    Path((checksum, size)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let key = file_key(&checksum, &size)?;
    let name = headers
        .get("X-Shaman-Original-Filename")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let outcome = shaman(&state)?
        .upload(&key, can_defer(&headers), body.into_data_stream())
        .await?;
    Ok(match outcome {
        UploadOutcome::Stored => {
            tracing::debug!(sha = %key.sha, size = key.size, %name, "shaman stored a file");
            StatusCode::NO_CONTENT.into_response()
        }
        UploadOutcome::AlreadyStored => StatusCode::ALREADY_REPORTED.into_response(),
        UploadOutcome::Deferred => StatusCode::TOO_EARLY.into_response(),
        UploadOutcome::Mismatch(why) => {
            ApiError::new(StatusCode::EXPECTATION_FAILED, why).into_response()
        }
    })
}
