//! API errors as Flamenco's `Error` shape: `{code, message}` with the HTTP status as code.
use axum::Json;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::compiler::CompileError;
use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        let message = message.into();
        tracing::error!("internal error: {message}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

/// Every error answer: the HTTP status again and what was wrong.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub code: u16,
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.status.as_u16(),
            message: self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ApiError::not_found(m),
            StoreError::Standby(m) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, m),
            StoreError::ShuttingDown => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                StoreError::ShuttingDown.to_string(),
            ),
            ref full if full.is_disk_full() => ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                format!("the manager's database disk is full; nothing was stored: {full}"),
            ),
            ref io if io.is_io_error() => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the manager cannot write its database; nothing was stored: {io}"),
            ),
            ref text if text.is_unstorable_text() => ApiError::bad_request(format!(
                "the request holds a NUL character, which the database cannot store: {text}"
            )),
            StoreError::LeaseLost(m) | StoreError::Refused(m) => {
                ApiError::new(StatusCode::CONFLICT, m)
            }
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<CompileError> for ApiError {
    fn from(e: CompileError) -> Self {
        let status = match &e {
            CompileError::EtagMismatch { .. } => StatusCode::PRECONDITION_FAILED,
            CompileError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            CompileError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.to_string())
    }
}

pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no such endpoint: {}", uri.path()))
}

/// Checks that a path parameter is a UUID, so typos get a clear 400 rather than a 404.
pub fn parse_uuid(what: &str, value: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(value)
        .map(|u| u.to_string())
        .map_err(|_| ApiError::bad_request(format!("{what} \"{value}\" is not a UUID")))
}
