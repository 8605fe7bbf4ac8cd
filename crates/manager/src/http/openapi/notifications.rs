//! Notifications in the OpenAPI document: the rules (`/api/v3/notifications/rules…`) and
//! the delivery log (`/api/v3/notifications/deliveries`). Admin operations.
// Never constructed: only the schema generator reads these types.
#![allow(dead_code)]

use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::path::HttpMethod::{Delete, Get, Post, Put};

use super::super::notifications::{
    NotificationDeliveries, NotificationRule, NotificationRules, NotificationTest,
};
use super::errors::{BAD, UNKNOWN};
use super::{Api, EXTENSIONS};

/// Extension: a notification rule as sent. A field not listed here is refused.
#[derive(Serialize, ToSchema)]
pub struct NotificationRuleInput {
    /// 1–200 characters.
    pub name: String,
    /// `webhook`, `slack`, `discord`, `mattermost`, `matrix` or `email` (e-mail needs
    /// `[notify.smtp]` in the manager's config).
    pub kind: String,
    /// Any of `job-completed`, `job-failed`, `job-awaiting-approval`, `worker-error`.
    pub events: Vec<String>,
    /// Only jobs whose metadata `user.name` or `user.email` is this (case-insensitive);
    /// absent or empty: the whole farm.
    pub submitter: Option<String>,
    /// The http(s) URL of a webhook or chat kind.
    pub url: Option<String>,
    /// Webhooks: the HMAC-SHA256 key of `X-Castanet-Signature`. Write-only; left out on
    /// an update it keeps the stored one, `""` removes it.
    pub secret: Option<String>,
    /// E-mail kind: the recipients.
    pub email_to: Option<Vec<String>>,
    /// Default true.
    pub enabled: Option<bool>,
}

const CONFIG_RULE: (u16, &str) = (
    409,
    "The rule comes from the config file (`config-N`): change it there.",
);

pub(super) fn describe(api: &mut Api) {
    let rules = api.schema::<NotificationRules>();
    api.op(
        Get,
        "/api/v3/notifications/rules",
        EXTENSIONS,
        "List notification rules",
    )
    .answer(200, "The config file's rules, then the stored ones.", rules)
    .done();
    let (input, rule) = (
        api.schema::<NotificationRuleInput>(),
        api.schema::<NotificationRule>(),
    );
    api.op(
        Post,
        "/api/v3/notifications/rules",
        EXTENSIONS,
        "Create a notification rule",
    )
    .body(input)
    .answer(201, "The stored rule.", rule)
    .errors(&[BAD])
    .done();
    let rule = api.schema::<NotificationRule>();
    api.op(
        Get,
        "/api/v3/notifications/rules/{rule_id}",
        EXTENSIONS,
        "Get a notification rule",
    )
    .answer(200, "The rule.", rule)
    .errors(&[UNKNOWN])
    .done();
    let (input, rule) = (
        api.schema::<NotificationRuleInput>(),
        api.schema::<NotificationRule>(),
    );
    api.op(
        Put,
        "/api/v3/notifications/rules/{rule_id}",
        EXTENSIONS,
        "Replace a notification rule",
    )
    .body(input)
    .answer(200, "The stored rule.", rule)
    .errors(&[BAD, UNKNOWN, CONFIG_RULE])
    .done();
    api.op(
        Delete,
        "/api/v3/notifications/rules/{rule_id}",
        EXTENSIONS,
        "Delete a notification rule",
    )
    .empty(204, "Deleted; its pending deliveries fail.")
    .errors(&[BAD, UNKNOWN, CONFIG_RULE])
    .done();
    let test = api.schema::<NotificationTest>();
    api.op(
        Post,
        "/api/v3/notifications/rules/{rule_id}/test",
        EXTENSIONS,
        "Send a test notification through a rule",
    )
    .answer(202, "Enqueued; see the delivery log.", test)
    .errors(&[UNKNOWN])
    .done();
    let deliveries = api.schema::<NotificationDeliveries>();
    api.op(
        Get,
        "/api/v3/notifications/deliveries",
        EXTENSIONS,
        "The notification delivery log",
    )
    .query(
        "status",
        "Only `pending`, `delivered` or `failed` deliveries.",
    )
    .query("limit", "At most this many (1–1000, default 100).")
    .answer(200, "Deliveries, newest first.", deliveries)
    .errors(&[BAD])
    .done();
}
