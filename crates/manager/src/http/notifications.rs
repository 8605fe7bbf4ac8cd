//! Notification rules (list, create, update, delete, send a test) and the delivery log.
//! Rules from the config file are listed read-only; secrets are write-only (`secret_set`).
use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::body::parse_object;
use super::error::{ApiError, parse_uuid};
use crate::AppState;
use crate::notify::{Rule, RuleInput, RuleSource};
use crate::store::{DeliveryRow, NotificationRuleRow, now};

const DEFAULT_DELIVERIES: i64 = 100;
const MAX_DELIVERIES: i64 = 1000;

/// Extension: a notification rule.
#[derive(Serialize, ToSchema)]
pub struct NotificationRule {
    /// A UUID, or `config-N` for the N-th `[[notifications]]` table of the config file.
    pub id: String,
    pub name: String,
    pub kind: String,
    pub events: Vec<String>,
    pub submitter: Option<String>,
    /// Empty for e-mail.
    pub url: String,
    pub email_to: Vec<String>,
    pub enabled: bool,
    /// Whether a webhook secret is set (the secret itself is never returned).
    pub secret_set: bool,
    /// `config` (read-only) or `api`.
    #[schema(value_type = String)]
    pub source: RuleSource,
    pub read_only: bool,
}

/// Extension: every notification rule, the config file's first.
#[derive(Serialize, ToSchema)]
pub struct NotificationRules {
    pub rules: Vec<NotificationRule>,
}

/// Extension: a test delivery was enqueued.
#[derive(Serialize, ToSchema)]
pub struct NotificationTest {
    /// Find it in the delivery log.
    pub delivery_id: String,
}

/// Extension: one delivery of a notification (the outbox and its log).
#[derive(Serialize, ToSchema)]
pub struct NotificationDelivery {
    /// Also sent as `X-Castanet-Delivery`, so a receiver can drop repeats.
    pub id: String,
    pub rule_id: String,
    pub rule_name: String,
    pub kind: String,
    /// The URL or the e-mail addresses.
    pub target: String,
    /// `job-completed`, `job-failed`, `job-awaiting-approval`, `worker-error` or `test`.
    pub event: String,
    pub job_id: Option<String>,
    pub worker_id: Option<String>,
    /// `pending` (waiting for its next attempt), `delivered` or `failed` (given up).
    pub status: String,
    pub attempts: i64,
    #[schema(format = DateTime)]
    pub next_attempt_at: String,
    /// What went wrong at the last failed attempt.
    pub last_error: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// The webhook body (chat and e-mail texts are made from it).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

/// Extension: the delivery log, newest first.
#[derive(Serialize, ToSchema)]
pub struct NotificationDeliveries {
    pub deliveries: Vec<NotificationDelivery>,
}

pub fn rule_json(rule: &Rule) -> NotificationRule {
    NotificationRule {
        id: rule.id.clone(),
        name: rule.name.clone(),
        kind: rule.kind.as_str().to_string(),
        events: rule.events.iter().map(|e| e.as_str().to_string()).collect(),
        submitter: rule.submitter.clone(),
        url: rule.url.clone(),
        email_to: rule.email_to.clone(),
        enabled: rule.enabled,
        secret_set: !rule.secret.is_empty(),
        source: rule.source,
        read_only: rule.source != RuleSource::Api,
    }
}

fn delivery_json(row: &DeliveryRow) -> NotificationDelivery {
    NotificationDelivery {
        id: row.id.clone(),
        rule_id: row.rule_id.clone(),
        rule_name: row.rule_name.clone(),
        kind: row.kind.clone(),
        target: row.target.clone(),
        event: row.event.clone(),
        job_id: row.job_id.clone(),
        worker_id: row.worker_id.clone(),
        status: row.status.clone(),
        attempts: row.attempts,
        next_attempt_at: row.next_attempt_at.clone(),
        last_error: row.last_error.clone(),
        created_at: row.created_at.clone(),
        updated_at: row.updated_at.clone(),
        payload: serde_json::from_str::<Value>(&row.payload).unwrap_or(Value::Null),
    }
}

/// `GET /api/v3/notifications/rules`
pub async fn list_rules(
    State(state): State<AppState>,
) -> Result<Json<NotificationRules>, ApiError> {
    let rules = state.notifier.rules(&state.store).await?;
    Ok(Json(NotificationRules {
        rules: rules.iter().map(rule_json).collect(),
    }))
}

/// `GET /api/v3/notifications/rules/{id}`
pub async fn get_rule(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<NotificationRule>, ApiError> {
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
) -> Result<(StatusCode, Json<NotificationRule>), ApiError> {
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
) -> Result<Json<NotificationRule>, ApiError> {
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
) -> Result<(StatusCode, Json<NotificationTest>), ApiError> {
    let rule = find_rule(&state, &id).await?;
    let delivery = state.notifier.send_test(&state.store, &rule).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(NotificationTest {
            delivery_id: delivery,
        }),
    ))
}

/// `GET /api/v3/notifications/deliveries?status=&limit=`: the delivery log, newest first.
pub async fn list_deliveries(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<NotificationDeliveries>, ApiError> {
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
    Ok(Json(NotificationDeliveries {
        deliveries: rows.iter().map(delivery_json).collect(),
    }))
}
