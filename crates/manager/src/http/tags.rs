//! Worker tags under `/api/v3/worker-mgt/tags` and `/api/v3/worker-mgt/tag/{id}`.
//! The Blender add-on lists them at every connect.
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::error::{ApiError, parse_uuid};
use super::worker_shapes::{WorkerTag, WorkerTagList, worker_tag};
use crate::AppState;
use crate::store::TagRow;

#[derive(Deserialize)]
struct TagBody {
    #[serde(default)]
    id: Option<String>,
    name: String,
    #[serde(default)]
    description: Option<String>,
}

fn parse_tag(body: &[u8]) -> Result<TagBody, ApiError> {
    let tag: TagBody = super::body::parse_object(body, "worker tag")?;
    crate::names::check_name("worker tag name", &tag.name).map_err(ApiError::bad_request)?;
    Ok(tag)
}

/// `GET /worker-mgt/tags`
pub async fn list_tags(State(state): State<AppState>) -> Result<Json<WorkerTagList>, ApiError> {
    let tags = state
        .store
        .list_tags()
        .await?
        .iter()
        .map(worker_tag)
        .collect();
    Ok(Json(WorkerTagList { tags }))
}

/// `POST /worker-mgt/tags` — creates a tag (with a new id unless one is given).
pub async fn create_tag(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<WorkerTag>, ApiError> {
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
    Ok(Json(worker_tag(&tag)))
}

/// `GET /worker-mgt/tag/{id}`
pub async fn get_tag(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<WorkerTag>, ApiError> {
    let id = parse_uuid("tag id", &id)?;
    let tag = state
        .store
        .get_tag(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no worker tag with id {id}")))?;
    Ok(Json(worker_tag(&tag)))
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

#[derive(Deserialize)]
struct JobTagChange {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

/// `POST /api/v3/jobs/{id}/settag` `{id}` or `{name}` limits the job to that tag's
/// workers; neither opens it to all workers. An unknown tag is 406 (as Flamenco answers).
pub async fn set_job_tag(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let job_id = super::jobs::existing_job_id(&state, &id).await?;
    let change: JobTagChange = super::body::parse_object(&body, "tag change")?;
    let id = change.id.filter(|i| !i.is_empty());
    let name = change.name.filter(|n| !n.is_empty());
    let tag = match (id, name) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "give the tag's id or its name, not both",
            ));
        }
        (Some(id), None) => {
            let id = parse_uuid("tag id", &id)?;
            Some(state.store.get_tag(&id).await?.ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_ACCEPTABLE,
                    format!("no worker tag with id {id}"),
                )
            })?)
        }
        (None, Some(name)) => Some(state.store.tag_by_name(&name).await?.ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_ACCEPTABLE,
                format!("no worker tag named \"{name}\""),
            )
        })?),
        (None, None) => None,
    };
    let tag_id = tag.as_ref().map(|t| t.id.as_str());
    let effects = crate::ops::job_actions::set_job_tag(&state.store, &job_id, tag_id).await?;
    crate::ops::apply(effects, &state).await;
    Ok(StatusCode::NO_CONTENT)
}
