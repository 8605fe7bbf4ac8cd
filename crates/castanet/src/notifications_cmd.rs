//! `castanet notifications list|add|remove|deliveries|test`: the manager's notification
//! rules and its delivery log (admin operations: pass an admin token where needed).
use std::process::ExitCode;

use anyhow::anyhow;
use clap::Subcommand;
use serde_json::{Value, json};

use crate::api_client::{Answer, ApiClient};
use crate::output::{Align, emit, table};

#[derive(Subcommand)]
pub enum NotificationsCommand {
    /// List the rules (the config file's first; those are read-only here).
    List,
    /// Add a rule: `castanet notifications add --name ops --kind slack --url URL
    /// --event job-failed --event worker-error`.
    Add {
        #[arg(long)]
        name: String,
        /// webhook, slack, discord, mattermost, matrix or email.
        #[arg(long)]
        kind: String,
        /// job-completed, job-failed, job-awaiting-approval or worker-error. Repeatable.
        #[arg(long = "event", value_name = "EVENT", required = true)]
        events: Vec<String>,
        /// The webhook or chat URL.
        #[arg(long)]
        url: Option<String>,
        /// The webhook's HMAC-SHA256 key (X-Castanet-Signature).
        #[arg(long, env = "CASTANET_WEBHOOK_SECRET", hide_env_values = true)]
        secret: Option<String>,
        /// E-mail kind: a recipient. Repeatable.
        #[arg(long = "email-to", value_name = "ADDRESS")]
        email_to: Vec<String>,
        /// Only jobs whose metadata user.name or user.email is this.
        #[arg(long)]
        submitter: Option<String>,
        /// Store it switched off.
        #[arg(long)]
        disabled: bool,
    },
    /// Remove a rule made over the API or in the dashboard.
    Remove {
        /// Rule id.
        rule: String,
    },
    /// The delivery log, newest first.
    Deliveries {
        /// Only pending, delivered or failed deliveries.
        #[arg(long)]
        status: Option<String>,
        /// How many (1–1000).
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Send a test notification through a rule (see it with `deliveries`).
    Test {
        /// Rule id.
        rule: String,
    },
}

pub async fn run(manager: &str, command: NotificationsCommand) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(manager);
    match command {
        NotificationsCommand::List => list(&client).await?,
        NotificationsCommand::Add {
            name,
            kind,
            events,
            url,
            secret,
            email_to,
            submitter,
            disabled,
        } => {
            let mut body = json!({
                "name": name, "kind": kind, "events": events, "enabled": !disabled,
            });
            if let Some(url) = url {
                body["url"] = json!(url);
            }
            if let Some(secret) = secret {
                body["secret"] = json!(secret);
            }
            if !email_to.is_empty() {
                body["email_to"] = json!(email_to);
            }
            if let Some(submitter) = submitter {
                body["submitter"] = json!(submitter);
            }
            let rule = json_of(
                client
                    .post_json("/api/v3/notifications/rules", &body)
                    .await?,
            )?;
            println!("added rule {} ({})", text(&rule, "name"), text(&rule, "id"));
        }
        NotificationsCommand::Remove { rule } => {
            client
                .delete(&format!("/api/v3/notifications/rules/{rule}"))
                .await?;
            println!("removed rule {rule}");
        }
        NotificationsCommand::Deliveries { status, limit } => {
            let mut path = format!("/api/v3/notifications/deliveries?limit={limit}");
            if let Some(status) = status {
                path.push_str(&format!("&status={status}"));
            }
            deliveries(&client, &path).await?;
        }
        NotificationsCommand::Test { rule } => {
            let answer = json_of(
                client
                    .post_json(
                        &format!("/api/v3/notifications/rules/{rule}/test"),
                        &json!({}),
                    )
                    .await?,
            )?;
            println!(
                "test notification enqueued (delivery {})",
                text(&answer, "delivery_id")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn json_of(answer: Answer) -> anyhow::Result<Value> {
    match answer {
        Answer::Json(json) => Ok(json),
        Answer::Empty => Err(anyhow!("the manager answered without a body")),
    }
}

fn text(value: &Value, key: &str) -> String {
    match value.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

async fn list(client: &ApiClient) -> anyhow::Result<()> {
    let answer = client.get_json("/api/v3/notifications/rules").await?;
    let rules = answer
        .get("rules")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("the answer has no rules list: {answer}"))?;
    if rules.is_empty() {
        eprintln!("no notification rules");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = rules
        .iter()
        .map(|rule| {
            let events: Vec<String> = rule["events"]
                .as_array()
                .map(|e| {
                    e.iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            let target = match rule["kind"].as_str() {
                Some("email") => rule["email_to"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default(),
                _ => text(rule, "url"),
            };
            let mut flags = vec![text(rule, "source")];
            if rule["enabled"] == false {
                flags.push("disabled".into());
            }
            if rule["secret_set"] == true {
                flags.push("signed".into());
            }
            vec![
                text(rule, "id"),
                text(rule, "name"),
                text(rule, "kind"),
                events.join(","),
                match text(rule, "submitter") {
                    s if s.is_empty() => "farm".into(),
                    s => s,
                },
                target,
                flags.join(" "),
            ]
        })
        .collect();
    let headers = [
        ("ID", Align::Left),
        ("NAME", Align::Left),
        ("KIND", Align::Left),
        ("EVENTS", Align::Left),
        ("SCOPE", Align::Left),
        ("TARGET", Align::Left),
        ("", Align::Left),
    ];
    emit(&table(&headers, &rows))
}

async fn deliveries(client: &ApiClient, path: &str) -> anyhow::Result<()> {
    let answer = client.get_json(path).await?;
    let deliveries = answer
        .get("deliveries")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("the answer has no deliveries list: {answer}"))?;
    if deliveries.is_empty() {
        eprintln!("no deliveries");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = deliveries
        .iter()
        .map(|d| {
            let subject = match text(d, "job_id") {
                s if s.is_empty() => text(d, "worker_id"),
                s => s,
            };
            vec![
                text(d, "created_at"),
                text(d, "event"),
                subject,
                text(d, "rule_name"),
                text(d, "status"),
                text(d, "attempts"),
                text(d, "last_error"),
            ]
        })
        .collect();
    let headers = [
        ("CREATED", Align::Left),
        ("EVENT", Align::Left),
        ("JOB/WORKER", Align::Left),
        ("RULE", Align::Left),
        ("STATUS", Align::Left),
        ("ATTEMPTS", Align::Right),
        ("LAST ERROR", Align::Left),
    ];
    emit(&table(&headers, &rows))
}
