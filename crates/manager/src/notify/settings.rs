//! The `[notify]` config table (delivery settings and the SMTP server) and the checks of
//! the `[[notifications]]` rules written in the config file.
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::rules::{Rule, RuleError, RuleInput, RuleSource};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySettings {
    /// The dashboard's address as people reach it, for links in messages
    /// (empty: `http://<listen address>`).
    #[serde(default)]
    pub dashboard_url: String,
    /// The HMAC key of webhooks a job's metadata asks for (`notify.webhook`).
    #[serde(default)]
    pub webhook_secret: String,
    /// Whether jobs may ask for notifications in their metadata (`notify.webhook`,
    /// `notify.email`). Anyone who may submit can then make the manager call a URL.
    #[serde(default = "default_true")]
    pub metadata_rules: bool,
    /// The wait before the first retry; it doubles with every failed attempt.
    #[serde(default = "default_first_retry_seconds")]
    pub first_retry_seconds: f64,
    /// The longest wait between attempts.
    #[serde(default = "default_max_retry_seconds")]
    pub max_retry_seconds: u64,
    /// After this many failed attempts a delivery is given up (status `failed`).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Each HTTP request or SMTP exchange is cut off after this long.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    /// How many deliveries go out at the same time.
    #[serde(default = "default_parallel")]
    pub parallel: usize,
    /// Finished deliveries stay in the delivery log this long.
    #[serde(default = "default_keep_days")]
    pub keep_days: u64,
    #[serde(default)]
    pub smtp: Option<SmtpSettings>,
}

/// How the SMTP connection is secured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS; refused if the server cannot.
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption (only for a relay on the same host).
    None,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    #[serde(default)]
    pub security: SmtpSecurity,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    /// The sender, e.g. `Castanet <farm@example.com>`.
    pub from: String,
    /// A PEM file of extra CA certificates to trust (a private mail server).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_true() -> bool {
    true
}
fn default_first_retry_seconds() -> f64 {
    5.0
}
fn default_max_retry_seconds() -> u64 {
    3600
}
fn default_max_attempts() -> u32 {
    10
}
fn default_timeout_seconds() -> u64 {
    10
}
fn default_parallel() -> usize {
    4
}
fn default_keep_days() -> u64 {
    30
}
fn default_smtp_port() -> u16 {
    587
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            dashboard_url: String::new(),
            webhook_secret: String::new(),
            metadata_rules: true,
            first_retry_seconds: default_first_retry_seconds(),
            max_retry_seconds: default_max_retry_seconds(),
            max_attempts: default_max_attempts(),
            timeout_seconds: default_timeout_seconds(),
            parallel: default_parallel(),
            keep_days: default_keep_days(),
            smtp: None,
        }
    }
}

impl NotifySettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds.max(1))
    }

    /// The wait after `attempts` failed attempts: doubling from the first retry, capped.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(30);
        let seconds = self.first_retry_seconds * f64::from(1u32 << doublings);
        Duration::from_secs_f64(seconds.min(self.max_retry_seconds as f64).max(0.0))
    }

    pub fn check(&self) -> Result<(), String> {
        if !self.first_retry_seconds.is_finite() || self.first_retry_seconds < 0.0 {
            return Err("first_retry_seconds must be a number ≥ 0".into());
        }
        if self.max_attempts == 0 {
            return Err("max_attempts must be at least 1".into());
        }
        if self.parallel == 0 {
            return Err("parallel must be at least 1".into());
        }
        if !self.dashboard_url.is_empty() {
            super::rules::check_url(&self.dashboard_url)
                .map_err(|e| format!("dashboard_url: {e}"))?;
        }
        if let Some(smtp) = &self.smtp {
            if smtp.host.trim().is_empty() {
                return Err("[notify.smtp] host must not be empty".into());
            }
            smtp.from
                .parse::<lettre::message::Mailbox>()
                .map_err(|e| format!("[notify.smtp] from {:?}: {e}", smtp.from))?;
        }
        Ok(())
    }

    /// The table as commented TOML, for the config file the manager writes.
    pub fn commented_toml(&self) -> String {
        format!(
            "\n# Notifications (see docs/operations.md#notifications). Rules go in\n\
             # [[notifications]] tables or are made in the dashboard; deliveries are retried with\n\
             # a doubling wait and survive restarts.\n\
             [notify]\n\
             # The dashboard's address for links in messages (empty: http://<listen>).\n\
             dashboard_url = {url}\n\
             # HMAC key of webhooks a job's metadata asks for (notify.webhook).\n\
             webhook_secret = {secret}\n\
             # Whether jobs may ask for notifications in their metadata (notify.webhook,\n\
             # notify.email, notify.events).\n\
             metadata_rules = {metadata}\n\
             first_retry_seconds = {first}\n\
             max_retry_seconds = {max}\n\
             max_attempts = {attempts}\n\
             # Each HTTP request or SMTP exchange is cut off after this long.\n\
             timeout_seconds = {timeout}\n\
             # Deliveries sent at the same time.\n\
             parallel = {parallel}\n\
             # Finished deliveries stay in the delivery log this many days.\n\
             keep_days = {keep}\n\
             # E-mail goes through this server:\n\
             # [notify.smtp]\n\
             # host = \"smtp.example.com\"\n\
             # port = 587\n\
             # security = \"starttls\"   # or \"tls\" (port 465) or \"none\"\n\
             # username = \"farm\"\n\
             # password = \"…\"\n\
             # from = \"Castanet <farm@example.com>\"\n\
             # ca_file = \"mail-ca.pem\"  # extra CA certificates to trust (optional)\n\
             #\n\
             # A rule (as many as you like). kind: webhook, slack, discord, mattermost,\n\
             # matrix or email; events: job-completed, job-failed, job-awaiting-approval,\n\
             # worker-error; submitter (optional): only jobs whose user.name or user.email is this.\n\
             # [[notifications]]\n\
             # name = \"render channel\"\n\
             # kind = \"webhook\"\n\
             # events = [\"job-completed\", \"job-failed\"]\n\
             # url = \"https://hooks.example.com/castanet\"\n\
             # secret = \"shared HMAC key\"\n\
             # (e-mail: kind = \"email\" and email_to = [\"lead@example.com\"])\n",
            url = toml::Value::String(self.dashboard_url.clone()),
            secret = toml::Value::String(self.webhook_secret.clone()),
            metadata = self.metadata_rules,
            first = toml::Value::Float(self.first_retry_seconds),
            max = self.max_retry_seconds,
            attempts = self.max_attempts,
            timeout = self.timeout_seconds,
            parallel = self.parallel,
            keep = self.keep_days,
        )
    }
}

/// The config file's rules, checked; ids are `config-1`, `config-2`, … in file order.
pub fn config_rules(
    inputs: &[RuleInput],
    settings: &NotifySettings,
) -> Result<Vec<Rule>, RuleError> {
    inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            input.validate(
                format!("config-{}", i + 1),
                RuleSource::Config,
                settings.smtp.is_some(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let settings = NotifySettings {
            first_retry_seconds: 2.0,
            max_retry_seconds: 10,
            ..Default::default()
        };
        assert_eq!(settings.backoff(1), Duration::from_secs(2));
        assert_eq!(settings.backoff(2), Duration::from_secs(4));
        assert_eq!(settings.backoff(3), Duration::from_secs(8));
        assert_eq!(settings.backoff(4), Duration::from_secs(10));
        assert_eq!(settings.backoff(40), Duration::from_secs(10));
    }

    #[test]
    fn config_rules_get_ids_in_file_order_and_bad_ones_name_the_field() {
        let rule = |kind: &str, url: &str| RuleInput {
            name: "r".into(),
            kind: kind.into(),
            events: vec!["job-failed".into()],
            url: Some(url.into()),
            enabled: true,
            ..Default::default()
        };
        let settings = NotifySettings::default();
        let rules = config_rules(
            &[rule("webhook", "http://a/1"), rule("slack", "https://b/2")],
            &settings,
        )
        .unwrap();
        let ids: Vec<_> = rules.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["config-1", "config-2"]);
        assert!(rules.iter().all(|r| r.source == RuleSource::Config));
        let error = config_rules(&[rule("webhook", "gopher://x")], &settings).unwrap_err();
        assert_eq!(error.field, "url");
    }

    #[test]
    fn the_written_table_reads_back() {
        let text = NotifySettings::default().commented_toml();
        #[derive(Deserialize)]
        struct File {
            notify: NotifySettings,
        }
        let file: File = toml::from_str(&text).expect("valid TOML");
        assert_eq!(file.notify.max_attempts, default_max_attempts());
    }
}
