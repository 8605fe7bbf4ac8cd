//! Notifications: when a job completes, fails or awaits approval, or a worker goes into
//! error, each matching rule gets a delivery — a signed webhook, a chat message or an
//! e-mail. Transitions are written to an outbox in the database (`watcher.rs`, driven by
//! the event bus) and sent from there with retries (`deliverer.rs`), both in their own
//! tasks: a slow or failing receiver never holds up dispatch, and a restart loses nothing.
mod deliverer;
pub mod payload;
pub mod rules;
pub mod send;
pub mod settings;
mod watcher;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use tokio_util::sync::CancellationToken;

pub use rules::{EventKind, Rule, RuleError, RuleInput, RuleKind, RuleSource};
pub use settings::{NotifySettings, SmtpSecurity, SmtpSettings};

use crate::AppState;
use crate::store::{NewDelivery, NotificationRuleRow, Store, StoreResult};
use payload::Origin;

/// Shared by the watcher, the deliverer and the API handlers. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

struct Inner {
    settings: NotifySettings,
    config_rules: Vec<Rule>,
    farm_name: String,
    /// Set once the listener is bound (links need the real port).
    dashboard_url: OnceLock<String>,
    /// Pokes the deliverer when something was enqueued.
    wake: tokio::sync::Notify,
    http: reqwest::Client,
}

impl Notifier {
    /// Checks the config's rules; `base_dir` resolves a relative SMTP `ca_file`.
    pub fn new(
        settings: &NotifySettings,
        rules: &[RuleInput],
        farm_name: &str,
        base_dir: &std::path::Path,
    ) -> Result<Self, String> {
        settings.check().map_err(|e| format!("[notify]: {e}"))?;
        let config_rules = settings::config_rules(rules, settings)
            .map_err(|e| format!("[[notifications]]: {e}"))?;
        let mut settings = settings.clone();
        if let Some(smtp) = settings.smtp.as_mut()
            && let Some(ca) = smtp.ca_file.as_mut()
            && ca.is_relative()
        {
            *ca = base_dir.join(&*ca);
        }
        let http = reqwest::Client::builder()
            .timeout(settings.timeout())
            .connect_timeout(settings.timeout())
            .user_agent(format!("castanet/{}", crate::VERSION))
            .build()
            .map_err(|e| format!("cannot make the HTTP client for notifications: {e}"))?;
        let dashboard_url = OnceLock::new();
        if !settings.dashboard_url.is_empty() {
            let _ = dashboard_url.set(settings.dashboard_url.trim_end_matches('/').to_string());
        }
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                config_rules,
                farm_name: farm_name.to_string(),
                dashboard_url,
                wake: tokio::sync::Notify::new(),
                http,
            }),
        })
    }

    /// Links point here unless `dashboard_url` is configured.
    pub fn set_bound_address(&self, addr: SocketAddr, scheme: &str) {
        let host = if addr.ip().is_unspecified() {
            // Listening on every address: the host's name is what people can reach.
            crate::discovery::hostname()
        } else {
            addr.ip().to_string()
        };
        let _ = self
            .inner
            .dashboard_url
            .set(format!("{scheme}://{host}:{}", addr.port()));
    }

    pub fn settings(&self) -> &NotifySettings {
        &self.inner.settings
    }

    pub fn config_rules(&self) -> &[Rule] {
        &self.inner.config_rules
    }

    pub fn email_possible(&self) -> bool {
        self.inner.settings.smtp.is_some()
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    pub(crate) fn origin(&self) -> Origin {
        Origin {
            farm_name: self.inner.farm_name.clone(),
            dashboard_url: self.inner.dashboard_url.get().cloned().unwrap_or_default(),
        }
    }

    /// Tells the deliverer to look at the outbox now.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    pub(crate) async fn woken(&self) {
        self.inner.wake.notified().await;
    }

    /// The config's rules, then the stored ones.
    pub async fn rules(&self, store: &Store) -> StoreResult<Vec<Rule>> {
        let mut rules = self.inner.config_rules.clone();
        rules.extend(
            store
                .notification_rules()
                .await?
                .iter()
                .filter_map(rule_of_row),
        );
        Ok(rules)
    }

    /// The rule with `id` (config or stored).
    pub async fn rule(&self, store: &Store, id: &str) -> StoreResult<Option<Rule>> {
        if let Some(rule) = self.inner.config_rules.iter().find(|r| r.id == id) {
            return Ok(Some(rule.clone()));
        }
        Ok(store
            .notification_rule(id)
            .await?
            .as_ref()
            .and_then(rule_of_row))
    }

    /// The HMAC key of deliveries of `rule_id`; None when the rule is gone.
    pub(crate) async fn secret_for(
        &self,
        store: &Store,
        rule_id: &str,
    ) -> StoreResult<Option<String>> {
        if rule_id.starts_with("job-") {
            return Ok(Some(self.inner.settings.webhook_secret.clone()));
        }
        Ok(self.rule(store, rule_id).await?.map(|rule| rule.secret))
    }

    /// Enqueues a test notification through `rule`; returns the delivery's id.
    pub async fn send_test(&self, store: &Store, rule: &Rule) -> StoreResult<String> {
        let id = uuid::Uuid::new_v4().to_string();
        let body = payload::test_payload(&self.origin(), &id, &rule.name, &crate::store::now());
        let delivery = NewDelivery {
            id: id.clone(),
            dedupe_base: format!("test:{id}"),
            rule_id: rule.id.clone(),
            rule_name: rule.name.clone(),
            kind: rule.kind.as_str().into(),
            target: rule.target(),
            event: EventKind::Test.as_str().into(),
            job_id: None,
            worker_id: None,
            payload: body.to_string(),
        };
        store.enqueue_delivery(&delivery).await?;
        self.wake();
        Ok(id)
    }
}

/// A stored rule as a `Rule`; a row this version cannot read is skipped with a warning.
pub fn rule_of_row(row: &NotificationRuleRow) -> Option<Rule> {
    let Some(kind) = RuleKind::parse(&row.kind) else {
        tracing::warn!(rule = %row.id, "skipping a notification rule of unknown kind {:?}", row.kind);
        return None;
    };
    let names: Vec<String> = serde_json::from_str(&row.events).unwrap_or_default();
    Some(Rule {
        id: row.id.clone(),
        name: row.name.clone(),
        kind,
        events: names.iter().filter_map(|n| EventKind::parse(n)).collect(),
        submitter: row.submitter.clone(),
        url: row.url.clone(),
        secret: row.secret.clone(),
        email_to: row
            .email_to
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(String::from)
            .collect(),
        enabled: row.enabled,
        source: RuleSource::Api,
    })
}

/// Starts the watcher and the deliverer; both stop with `shutdown`.
pub fn spawn(state: &AppState, shutdown: &CancellationToken) {
    state
        .background
        .spawn(watcher::run(state.clone(), shutdown.clone()));
    state
        .background
        .spawn(deliverer::run(state.clone(), shutdown.clone()));
}
