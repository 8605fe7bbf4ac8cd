//! Notification rules (list, create, update, delete, send a test) and the delivery log.
//! Rules from the config file are listed read-only; secrets are write-only (`secret_set`).
use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::body::parse_object;
use super::error::{ApiError, parse_uuid};
use crate::AppState;
use crate::notify::{Rule, RuleInput, RuleSource};
use crate::store::{DeliveryRow, NotificationRuleRow, now};

const DEFAULT_DELIVERIES: i64 = 100;
const MAX_DELIVERIES: i64 = 1000;

pub fn rule_json(rule: &Rule) -> Value {
    json!({
        "id": rule.id,
        "name": rule.name,
        "kind": rule.kind.as_str(),
        "events": rule.events.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
        "submitter": rule.submitter,
        "url": rule.url,
        "email_to": rule.email_to,
        "enabled": rule.enabled,
        "secret_set": !rule.secret.is_empty(),
        "source": rule.source,
        "read_only": rule.source != RuleSource::Api,
    })
}

fn delivery_json(row: &DeliveryRow) -> Value {
    json!({
        "id": row.id,
        "rule_id": row.rule_id,
        "rule_name": row.rule_name,
        "kind": row.kind,
        "target": row.target,
        "event": row.event,
        "job_id": row.job_id,
        "worker_id": row.worker_id,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at,
        "last_error": row.last_error,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "payload": serde_json::from_str::<Value>(&row.payload).unwrap_or(Value::Null),
    })
}

/// `GET /api/v3/notifications/rules`
pub async fn list_rules(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let rules = state.notifier.rules(&state.store).await?;
    Ok(Json(
        json!({ "rules": rules.iter().map(rule_json).collect::<Vec<_>>() }),
    ))
}

/// `GET /api/v3/notifications/rules/{id}`
pub async fn get_rule(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(rule_json(&find_rule(&state, &id).await?)))
}

async fn find_rule(state: &AppState, id: &str) -> Result<Rule, ApiError> {
    state
        .notifier
        .rule(&state.store, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no notification rule with id {id}")))
}

fn parse_rule(
    state: &AppState,
    body: &[u8],
    id: String,
    stored_secret: Option<String>,
) -> Result<Rule, ApiError> {
    let mut input: RuleInput = parse_object(body, "notification rule")?;
    if input.secret.is_none() {
        input.secret = stored_secret;
    }
    input
        .validate(id, RuleSource::Api, state.notifier.email_possible())
        .map_err(|e| ApiError::bad_request(format!("invalid notification rule: {e}")))
}

fn row_of(rule: &Rule, created_at: String) -> NotificationRuleRow {
    let events: Vec<&str> = rule.events.iter().map(|e| e.as_str()).collect();
    NotificationRuleRow {
        id: rule.id.clone(),
        name: rule.name.clone(),
        kind: rule.kind.as_str().into(),
        events: serde_json::to_string(&events).unwrap_or_else(|_| "[]".into()),
        submitter: rule.submitter.clone(),
        url: rule.url.clone(),
        secret: rule.secret.clone(),
        email_to: rule.email_to.join(","),
        enabled: rule.enabled,
        updated_at: now(),
        created_at,
    }
}

/// `POST /api/v3/notifications/rules`
pub async fn create_rule(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = uuid::Uuid::new_v4().to_string();
    let rule = parse_rule(&state, &body, id, None)?;
    state
        .store
        .save_notification_rule(&row_of(&rule, now()))
        .await?;
    tracing::info!(rule = %rule.id, name = %rule.name, "notification rule created");
    Ok((StatusCode::CREATED, Json(rule_json(&rule))))
}

/// `PUT /api/v3/notifications/rules/{id}`: replaces the rule; a missing `secret` keeps
/// the stored one, `""` removes it.
pub async fn update_rule(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let stored = stored_rule(&state, &id).await?;
    let rule = parse_rule(
        &state,
        &body,
        stored.id.clone(),
        Some(stored.secret.clone()),
    )?;
    state
        .store
        .save_notification_rule(&row_of(&rule, stored.created_at))
        .await?;
    Ok(Json(rule_json(&rule)))
}

/// A stored rule; config rules get a 409 (they are edited in the file).
async fn stored_rule(state: &AppState, id: &str) -> Result<NotificationRuleRow, ApiError> {
    if state.notifier.config_rules().iter().any(|r| r.id == id) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("notification rule {id} comes from the config file: change it there"),
        ));
    }
    let id = parse_uuid("notification rule id", id)?;
    state
        .store
        .notification_rule(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no notification rule with id {id}")))
}

/// `DELETE /api/v3/notifications/rules/{id}`
pub async fn delete_rule(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let stored = stored_rule(&state, &id).await?;
    state.store.delete_notification_rule(&stored.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v3/notifications/rules/{id}/test`: enqueues a test delivery.
pub async fn test_rule(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let rule = find_rule(&state, &id).await?;
    let delivery = state.notifier.send_test(&state.store, &rule).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "delivery_id": delivery })),
    ))
}

/// `GET /api/v3/notifications/deliveries?status=&limit=`: the delivery log, newest first.
pub async fn list_deliveries(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    if let Some(unknown) = query
        .keys()
        .find(|k| !matches!(k.as_str(), "status" | "limit"))
    {
        return Err(ApiError::bad_request(format!(
            "unknown query parameter {unknown:?} (known: status, limit)"
        )));
    }
    let status = query
        .get("status")
        .map(String::as_str)
        .filter(|s| !s.is_empty());
    if let Some(status) = status
        && !matches!(status, "pending" | "delivered" | "failed")
    {
        return Err(ApiError::bad_request(format!(
            "status: unknown delivery status {status:?} (one of: pending, delivered, failed)"
        )));
    }
    let limit = match query.get("limit") {
        None => DEFAULT_DELIVERIES,
        Some(text) => match text.parse::<i64>() {
            Ok(n) if (1..=MAX_DELIVERIES).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "limit: expected a number from 1 to {MAX_DELIVERIES}, got {text:?}"
                )));
            }
        },
    };
    let rows = state.store.list_deliveries(status, limit).await?;
    Ok(Json(
        json!({ "deliveries": rows.iter().map(delivery_json).collect::<Vec<_>>() }),
    ))
}
