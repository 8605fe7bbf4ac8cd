//! What a notification says: the webhook's JSON payload (made once, when the event is
//! enqueued, and stored with the delivery) and the chat and e-mail texts made from it.
use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::rules::{EventKind, RuleKind};
use crate::store::{JobRow, WorkerRow};

/// Who the manager is, for links and the payload's `manager` object.
#[derive(Clone, Debug)]
pub struct Origin {
    pub farm_name: String,
    /// The dashboard's base URL, without a trailing slash.
    pub dashboard_url: String,
}

impl Origin {
    fn manager(&self) -> Value {
        json!({ "farm": self.farm_name, "url": self.dashboard_url })
    }
}

pub fn job_metadata(job: &JobRow) -> BTreeMap<String, String> {
    serde_json::from_str(&job.metadata).unwrap_or_default()
}

/// The webhook body of a job event.
pub fn job_payload(
    origin: &Origin,
    delivery_id: &str,
    event: EventKind,
    job: &JobRow,
    time: &str,
) -> Value {
    let metadata = job_metadata(job);
    json!({
        "event": event.as_str(),
        "delivery": delivery_id,
        "time": time,
        "manager": origin.manager(),
        "job": {
            "id": job.id,
            "name": job.name,
            "type": job.job_type,
            "status": job.status,
            "activity": job.activity,
            "priority": job.priority,
            "submitter": {
                "name": metadata.get("user.name"),
                "email": metadata.get("user.email"),
            },
            "metadata": metadata,
            "created": job.created_at,
            "updated": job.updated_at,
            "url": format!("{}/jobs/{}", origin.dashboard_url, job.id),
        },
    })
}

/// The webhook body of a worker event.
pub fn worker_payload(
    origin: &Origin,
    delivery_id: &str,
    event: EventKind,
    worker: &WorkerRow,
    time: &str,
) -> Value {
    json!({
        "event": event.as_str(),
        "delivery": delivery_id,
        "time": time,
        "manager": origin.manager(),
        "worker": {
            "id": worker.id,
            "name": worker.name,
            "status": worker.status,
            "address": worker.address,
            "platform": worker.platform,
            "url": format!("{}/workers/{}", origin.dashboard_url, worker.id),
        },
    })
}

/// The body of a test notification for a rule.
pub fn test_payload(origin: &Origin, delivery_id: &str, rule_name: &str, time: &str) -> Value {
    json!({
        "event": EventKind::Test.as_str(),
        "delivery": delivery_id,
        "time": time,
        "manager": origin.manager(),
        "test": { "rule": rule_name, "message": "This is a test notification from Castanet." },
    })
}

/// A one-line summary and the link it points to.
pub struct Summary {
    pub line: String,
    pub link: String,
}

/// The summary of a stored payload.
pub fn summary(payload: &Value) -> Summary {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let farm = text(&payload["manager"]["farm"]);
    let event = payload["event"].as_str().and_then(EventKind::parse);
    let job = &payload["job"];
    let worker = &payload["worker"];
    let (line, link) = match event {
        Some(EventKind::JobCompleted) => (
            format!("✅ Job “{}” completed", text(&job["name"])),
            text(&job["url"]),
        ),
        Some(EventKind::JobFailed) => (
            format!("❌ Job “{}” failed", text(&job["name"])),
            text(&job["url"]),
        ),
        Some(EventKind::JobAwaitingApproval) => (
            format!("⏸ Job “{}” is awaiting approval", text(&job["name"])),
            text(&job["url"]),
        ),
        Some(EventKind::WorkerError) => (
            format!("⚠ Worker “{}” is in error", text(&worker["name"])),
            text(&worker["url"]),
        ),
        Some(EventKind::Test) | None => (
            format!(
                "🔔 Test notification for rule “{}”",
                text(&payload["test"]["rule"])
            ),
            text(&payload["manager"]["url"]),
        ),
    };
    Summary {
        line: format!("[{farm}] {line}"),
        link,
    }
}

/// The JSON body posted to a chat service's incoming webhook.
pub fn chat_body(kind: RuleKind, payload: &Value) -> Value {
    let Summary { line, link } = summary(payload);
    let text = format!("{line}: {link}");
    match kind {
        RuleKind::Discord => json!({ "content": text }),
        RuleKind::Matrix => json!({
            "text": text,
            "html": format!("{} — <a href=\"{}\">open in Castanet</a>", escape_html(&line), escape_html(&link)),
        }),
        // Slack and Mattermost read the same shape; both turn URLs into links.
        _ => json!({ "text": text }),
    }
}

/// The subject and plain-text body of an e-mail.
pub fn email_text(payload: &Value) -> (String, String) {
    let Summary { line, link } = summary(payload);
    let mut body = format!("{line}\n\n{link}\n");
    if let Some(job) = payload["job"].as_object() {
        for key in ["id", "type", "status", "activity", "updated"] {
            if let Some(value) = job.get(key) {
                let value = value
                    .as_str()
                    .map(String::from)
                    .unwrap_or(value.to_string());
                body.push_str(&format!("\n{key}: {value}"));
            }
        }
        body.push('\n');
    }
    (line, body)
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> Value {
        json!({
            "event": "job-failed",
            "manager": { "farm": "farm", "url": "http://m" },
            "job": { "name": "shot <1>", "url": "http://m/jobs/j", "status": "failed" },
        })
    }

    #[test]
    fn chat_shapes() {
        let slack = chat_body(RuleKind::Slack, &payload());
        assert_eq!(
            slack["text"],
            "[farm] ❌ Job “shot <1>” failed: http://m/jobs/j"
        );
        assert_eq!(chat_body(RuleKind::Mattermost, &payload()), slack);
        let discord = chat_body(RuleKind::Discord, &payload());
        assert_eq!(discord["content"], slack["text"]);
        let matrix = chat_body(RuleKind::Matrix, &payload());
        assert_eq!(matrix["text"], slack["text"]);
        assert!(matrix["html"].as_str().unwrap().contains("shot &lt;1&gt;"));
    }

    #[test]
    fn email_has_subject_and_link() {
        let (subject, body) = email_text(&payload());
        assert_eq!(subject, "[farm] ❌ Job “shot <1>” failed");
        assert!(body.contains("http://m/jobs/j"));
        assert!(body.contains("status: failed"));
    }
}
