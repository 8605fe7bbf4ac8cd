//! Notification rules: what happens (events), to whose jobs (scope), and where it goes
//! (kind and target). Rules come from the config file (read-only), from the API (stored),
//! and from a job's own metadata (`notify.webhook`, `notify.email`).
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Something worth telling people about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    JobCompleted,
    JobFailed,
    JobAwaitingApproval,
    WorkerError,
    /// Sent on request to check a rule's receiver; never chosen in a rule.
    Test,
}

impl EventKind {
    /// The events a rule may name.
    pub const SELECTABLE: [EventKind; 4] = [
        EventKind::JobCompleted,
        EventKind::JobFailed,
        EventKind::JobAwaitingApproval,
        EventKind::WorkerError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::JobCompleted => "job-completed",
            EventKind::JobFailed => "job-failed",
            EventKind::JobAwaitingApproval => "job-awaiting-approval",
            EventKind::WorkerError => "worker-error",
            EventKind::Test => "test",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::SELECTABLE
            .into_iter()
            .chain([EventKind::Test])
            .find(|kind| kind.as_str() == name)
    }

    /// The event of a job entering `status` (store status names), if it is one.
    pub fn of_job_status(status: &str) -> Option<Self> {
        match status {
            "completed" => Some(EventKind::JobCompleted),
            "failed" => Some(EventKind::JobFailed),
            "awaiting-approval" => Some(EventKind::JobAwaitingApproval),
            _ => None,
        }
    }

    /// The event of a worker entering `status`, if it is one.
    pub fn of_worker_status(status: &str) -> Option<Self> {
        (status == "error").then_some(EventKind::WorkerError)
    }
}

/// Where a rule's notifications go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleKind {
    /// POST of the JSON payload, signed with HMAC-SHA256.
    Webhook,
    Slack,
    Discord,
    Mattermost,
    /// A Matrix incoming-webhook bridge (hookshot's `{text, html}`).
    Matrix,
    /// E-mail through the `[notify.smtp]` server.
    Email,
}

impl RuleKind {
    pub const ALL: [RuleKind; 6] = [
        RuleKind::Webhook,
        RuleKind::Slack,
        RuleKind::Discord,
        RuleKind::Mattermost,
        RuleKind::Matrix,
        RuleKind::Email,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Webhook => "webhook",
            RuleKind::Slack => "slack",
            RuleKind::Discord => "discord",
            RuleKind::Mattermost => "mattermost",
            RuleKind::Matrix => "matrix",
            RuleKind::Email => "email",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// Where a rule was defined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleSource {
    /// `[[notifications]]` in the config file: read-only over the API.
    Config,
    /// Created over the API (or the dashboard), stored in the database.
    Api,
    /// A job's metadata asked for it (`notify.webhook` / `notify.email`).
    JobMetadata,
}

/// A valid rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub id: String,
    pub name: String,
    pub kind: RuleKind,
    pub events: Vec<EventKind>,
    /// Only jobs of this submitter (metadata `user.name` or `user.email`); None: the farm.
    pub submitter: Option<String>,
    /// The webhook or chat URL (empty for e-mail).
    pub url: String,
    /// The webhook's HMAC key (empty: unsigned).
    pub secret: String,
    pub email_to: Vec<String>,
    pub enabled: bool,
    pub source: RuleSource,
}

/// A rule as written in the config file or sent to the API.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleInput {
    pub name: String,
    pub kind: String,
    pub events: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Write-only: None on an update keeps the stored secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub email_to: Vec<String>,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// Why a rule was refused, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RuleError {
    pub field: &'static str,
    pub message: String,
}

fn refuse(field: &'static str, message: impl Into<String>) -> RuleError {
    RuleError {
        field,
        message: message.into(),
    }
}

impl RuleInput {
    /// Checks every field; `email_possible` says whether an SMTP server is configured.
    pub fn validate(
        &self,
        id: String,
        source: RuleSource,
        email_possible: bool,
    ) -> Result<Rule, RuleError> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(refuse(
                "name",
                "must be 1-200 characters without control characters",
            ));
        }
        let kind = RuleKind::parse(&self.kind).ok_or_else(|| {
            let known: Vec<_> = RuleKind::ALL.iter().map(|k| k.as_str()).collect();
            refuse(
                "kind",
                format!(
                    "unknown kind {:?} (one of: {})",
                    self.kind,
                    known.join(", ")
                ),
            )
        })?;
        let events = parse_events(&self.events)?;
        let submitter = match self.submitter.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) if s.chars().count() > 256 || s.chars().any(char::is_control) => {
                return Err(refuse(
                    "submitter",
                    "must be at most 256 characters without control characters",
                ));
            }
            Some(s) => Some(s.to_string()),
        };
        let (url, email_to) = if kind == RuleKind::Email {
            if !email_possible {
                return Err(refuse(
                    "kind",
                    "e-mail rules need an SMTP server: add [notify.smtp] to the manager's config",
                ));
            }
            (String::new(), check_addresses(&self.email_to)?)
        } else {
            let url = self.url.as_deref().unwrap_or("").trim();
            check_url(url).map_err(|message| refuse("url", message))?;
            (url.to_string(), Vec::new())
        };
        let secret = self.secret.clone().unwrap_or_default();
        if secret.len() > 1024 {
            return Err(refuse("secret", "must be at most 1024 bytes"));
        }
        Ok(Rule {
            id,
            name: name.to_string(),
            kind,
            events,
            submitter,
            url,
            secret,
            email_to,
            enabled: self.enabled,
            source,
        })
    }
}

fn parse_events(names: &[String]) -> Result<Vec<EventKind>, RuleError> {
    if names.is_empty() {
        return Err(refuse("events", "name at least one event"));
    }
    let mut events = Vec::new();
    for name in names {
        let event = EventKind::parse(name)
            .filter(|e| *e != EventKind::Test)
            .ok_or_else(|| {
                let known: Vec<_> = EventKind::SELECTABLE.iter().map(|e| e.as_str()).collect();
                refuse(
                    "events",
                    format!("unknown event {name:?} (one of: {})", known.join(", ")),
                )
            })?;
        if !events.contains(&event) {
            events.push(event);
        }
    }
    Ok(events)
}

/// An http(s) URL with a host.
pub fn check_url(url: &str) -> Result<(), String> {
    if url.is_empty() {
        return Err("a URL is required for this kind".into());
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!("{url:?} is not an http(s) URL with a host"));
    }
    Ok(())
}

fn check_addresses(addresses: &[String]) -> Result<Vec<String>, RuleError> {
    let addresses: Vec<String> = addresses
        .iter()
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect();
    if addresses.is_empty() {
        return Err(refuse("email_to", "name at least one address"));
    }
    for address in &addresses {
        address
            .parse::<lettre::Address>()
            .map_err(|e| refuse("email_to", format!("{address:?} is not an address: {e}")))?;
    }
    Ok(addresses)
}

impl Rule {
    /// Whether this rule wants `event` of a job with `metadata`.
    pub fn wants_job(&self, event: EventKind, metadata: &BTreeMap<String, String>) -> bool {
        if !self.enabled || !self.events.contains(&event) {
            return false;
        }
        match &self.submitter {
            None => true,
            Some(who) => ["user.name", "user.email"].iter().any(|key| {
                metadata
                    .get(*key)
                    .is_some_and(|value| value.trim().eq_ignore_ascii_case(who))
            }),
        }
    }

    /// Whether this rule wants `event` of a worker (farm-wide rules only).
    pub fn wants_worker(&self, event: EventKind) -> bool {
        self.enabled && self.submitter.is_none() && self.events.contains(&event)
    }

    /// Where deliveries go, as shown in the delivery log.
    pub fn target(&self) -> String {
        match self.kind {
            RuleKind::Email => self.email_to.join(", "),
            _ => self.url.clone(),
        }
    }
}

/// The events a job's metadata rules listen to: `notify.events` (comma-separated), or
/// completed, failed and awaiting approval.
fn metadata_events(metadata: &BTreeMap<String, String>) -> Vec<String> {
    match metadata.get("notify.events") {
        Some(list) => list
            .split(',')
            .map(|e| e.trim().to_string())
            .filter(|e| !e.is_empty())
            .collect(),
        None => ["job-completed", "job-failed", "job-awaiting-approval"]
            .map(String::from)
            .to_vec(),
    }
}

/// The rules a job's metadata asks for (`notify.webhook`, `notify.email`); invalid ones
/// are skipped with a warning (the job was accepted already).
pub fn rules_from_metadata(
    job_id: &str,
    metadata: &BTreeMap<String, String>,
    webhook_secret: &str,
    email_possible: bool,
) -> Vec<Rule> {
    let mut rules = Vec::new();
    let events = metadata_events(metadata);
    if let Some(url) = metadata.get("notify.webhook") {
        let input = RuleInput {
            name: "job metadata webhook".into(),
            kind: "webhook".into(),
            events: events.clone(),
            url: Some(url.clone()),
            secret: Some(webhook_secret.to_string()),
            enabled: true,
            ..Default::default()
        };
        match input.validate(
            "job-webhook".into(),
            RuleSource::JobMetadata,
            email_possible,
        ) {
            Ok(rule) => rules.push(rule),
            Err(e) => tracing::warn!(job_id, "ignoring the job's notify.webhook: {e}"),
        }
    }
    if let Some(to) = metadata.get("notify.email") {
        let input = RuleInput {
            name: "job metadata e-mail".into(),
            kind: "email".into(),
            events,
            email_to: to.split(',').map(String::from).collect(),
            enabled: true,
            ..Default::default()
        };
        match input.validate("job-email".into(), RuleSource::JobMetadata, email_possible) {
            Ok(rule) => rules.push(rule),
            Err(e) => tracing::warn!(job_id, "ignoring the job's notify.email: {e}"),
        }
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(kind: &str, url: &str, events: &[&str]) -> RuleInput {
        RuleInput {
            name: "r".into(),
            kind: kind.into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            url: Some(url.into()),
            enabled: true,
            ..Default::default()
        }
    }

    #[test]
    fn bad_fields_are_named() {
        let check = |i: RuleInput| i.validate("x".into(), RuleSource::Api, false).unwrap_err();
        assert_eq!(
            check(input("pager", "http://a", &["job-failed"])).field,
            "kind"
        );
        assert_eq!(
            check(input("webhook", "ftp://a", &["job-failed"])).field,
            "url"
        );
        assert_eq!(
            check(input("webhook", "not a url", &["job-failed"])).field,
            "url"
        );
        assert_eq!(
            check(input("slack", "https://a", &["job-done"])).field,
            "events"
        );
        assert_eq!(
            check(input("slack", "https://a", &["test"])).field,
            "events"
        );
        assert_eq!(check(input("email", "", &["job-failed"])).field, "kind");
    }

    #[test]
    fn submitter_rules_match_name_or_email() {
        let mut i = input("webhook", "http://h/x", &["job-completed"]);
        i.submitter = Some("Alice@Example.com".into());
        let rule = i.validate("x".into(), RuleSource::Api, false).unwrap();
        let meta = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        assert!(rule.wants_job(
            EventKind::JobCompleted,
            &meta("user.email", "alice@example.com")
        ));
        assert!(!rule.wants_job(
            EventKind::JobFailed,
            &meta("user.email", "alice@example.com")
        ));
        assert!(!rule.wants_job(EventKind::JobCompleted, &meta("user.name", "bob")));
        assert!(!rule.wants_worker(EventKind::WorkerError));
    }

    #[test]
    fn metadata_rules() {
        let meta = BTreeMap::from([
            ("notify.webhook".to_string(), "http://h/hook".to_string()),
            ("notify.events".to_string(), "job-failed".to_string()),
        ]);
        let rules = rules_from_metadata("j", &meta, "s", false);
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].events, vec![EventKind::JobFailed]);
        assert_eq!(rules[0].secret, "s");
        let bad = BTreeMap::from([("notify.webhook".to_string(), "nope".to_string())]);
        assert!(rules_from_metadata("j", &bad, "", false).is_empty());
    }
}
