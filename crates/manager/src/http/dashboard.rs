//! The web dashboard at `/`: the files of `web/dist`, compiled into the binary. Paths that
//! name no file (and have no extension) get `index.html`, so the dashboard's own routes
//! (`/jobs/…`, `/workers`) work on reload and as bookmarks; API paths keep their JSON 404.
use axum::http::{HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};

use super::error;

#[derive(rust_embed::Embed)]
#[folder = "$CASTANET_DASHBOARD_DIR"]
struct Dashboard;

/// Path prefixes that never fall back to the dashboard.
const NOT_DASHBOARD: &[&str] = &["/api/", "/job-files/", "/castanet."];

/// Fallback handler: a dashboard file, the dashboard's `index.html`, or the API's 404.
pub async fn serve_or_not_found(method: Method, uri: Uri) -> Response {
    let path = uri.path();
    let reads = method == Method::GET || method == Method::HEAD;
    if !reads || NOT_DASHBOARD.iter().any(|prefix| path.starts_with(prefix)) {
        return error::not_found(uri).await.into_response();
    }
    let name = path.trim_start_matches('/');
    if let Some(file) = Dashboard::get(name).filter(|_| !name.is_empty()) {
        // Vite puts a content hash in every name under assets/: those never change.
        let cache = if name.starts_with("assets/") {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        return file_response(file, cache);
    }
    // A name with an extension is a file, and this one does not exist (no database files
    // or other guesses answered with the page).
    let last_segment = name.rsplit('/').next().unwrap_or_default();
    if last_segment.contains('.') {
        return error::not_found(uri).await.into_response();
    }
    match Dashboard::get("index.html") {
        Some(index) => file_response(index, "no-cache"),
        None => error::not_found(uri).await.into_response(),
    }
}

fn file_response(file: rust_embed::EmbeddedFile, cache: &'static str) -> Response {
    let mime = file.metadata.mimetype().to_string();
    let content_type = HeaderValue::from_str(&mime)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        file.data.into_owned(),
    )
        .into_response()
}
