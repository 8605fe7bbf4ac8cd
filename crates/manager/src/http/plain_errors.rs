//! Errors axum makes itself come as text/plain: a body over the size limit (413), JSON it
//! cannot read (400, 415, 422), a malformed query string or path (400). Clients of the API
//! read `{code, message}` on every error, so those are rewritten into it.
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// Longer texts are not axum's rejections; they are passed on untouched.
const MAX_REJECTION_BYTES: usize = 16 * 1024;

pub async fn as_json(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/plain"));
    if !plain || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_REJECTION_BYTES).await {
        Ok(text) => String::from_utf8_lossy(&text).trim().to_owned(),
        Err(_) => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    let mut rewritten = ApiError::new(status, text).into_response();
    // Headers the error carried (e.g. `allow`) stay; type and length are the new body's.
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in &parts.headers {
        rewritten.headers_mut().append(name.clone(), value.clone());
    }
    rewritten
}
