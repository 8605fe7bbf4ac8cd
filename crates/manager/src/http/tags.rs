//! Worker tags under `/api/v3/worker-mgt/tags` and `/api/v3/worker-mgt/tag/{id}`.
//! The Blender add-on lists them at every connect.
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, parse_uuid};
use crate::AppState;
use crate::store::TagRow;

fn tag_json(tag: &TagRow) -> Value {
    let mut value = json!({ "id": tag.id, "name": tag.name });
    if !tag.description.is_empty() {
        value["description"] = json!(tag.description);
    }
    value
}

#[derive(Deserialize)]
struct TagBody {
    #[serde(default)]
    id: Option<String>,
    name: String,
    #[serde(default)]
    description: Option<String>,
}

fn parse_tag(body: &[u8]) -> Result<TagBody, ApiError> {
    let tag: TagBody = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid worker tag: {e}")))?;
    if tag.name.trim().is_empty() {
        return Err(ApiError::bad_request("worker tag name must not be empty"));
    }
    Ok(tag)
}

/// `GET /worker-mgt/tags`
pub async fn list_tags(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let tags: Vec<Value> = state
        .store
        .list_tags()
        .await?
        .iter()
        .map(tag_json)
        .collect();
    Ok(Json(json!({ "tags": tags })))
}

/// `POST /worker-mgt/tags` — creates a tag (with a new id unless one is given).
pub async fn create_tag(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body = parse_tag(&body)?;
    let id = match body.id.filter(|id| !id.is_empty()) {
        Some(id) => parse_uuid("tag id", &id)?,
        None => uuid::Uuid::new_v4().to_string(),
    };
    let tag = TagRow {
        id,
        name: body.name.trim().to_string(),
        description: body.description.unwrap_or_default(),
    };
    state.store.insert_tag(&tag).await?;
    Ok(Json(tag_json(&tag)))
}

/// `GET /worker-mgt/tag/{id}`
pub async fn get_tag(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_uuid("tag id", &id)?;
    let tag = state
        .store
        .get_tag(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no worker tag with id {id}")))?;
    Ok(Json(tag_json(&tag)))
}

/// `PUT /worker-mgt/tag/{id}`
pub async fn update_tag(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let id = parse_uuid("tag id", &id)?;
    let body = parse_tag(&body)?;
    let tag = TagRow {
        id: id.clone(),
        name: body.name.trim().to_string(),
        description: body.description.unwrap_or_default(),
    };
    if !state.store.update_tag(&tag).await? {
        return Err(ApiError::not_found(format!("no worker tag with id {id}")));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /worker-mgt/tag/{id}`
pub async fn delete_tag(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_uuid("tag id", &id)?;
    if !state.store.delete_tag(&id).await? {
        return Err(ApiError::not_found(format!("no worker tag with id {id}")));
    }
    Ok(StatusCode::NO_CONTENT)
}
