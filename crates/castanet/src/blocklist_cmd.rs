//! `castanet job blocklist JOB` (which workers may not run which task types of a job, and
//! why) and `castanet job unblock JOB --worker W` (let it try again, e.g. once its share is
//! mounted writable).
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::api_client::ApiClient;
use crate::output::{Align, emit, table};

async fn entries(client: &ApiClient, job: &str) -> anyhow::Result<Vec<Value>> {
    let answer = client
        .get_json(&format!("/api/v3/jobs/{job}/blocklist"))
        .await
        .with_context(|| format!("cannot read the blocklist of job {job}"))?;
    Ok(answer.as_array().cloned().unwrap_or_default())
}

fn text(entry: &Value, key: &str) -> String {
    entry
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

pub async fn list(manager: &str, job: &str) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(manager);
    let entries = entries(&client, job).await?;
    if entries.is_empty() {
        emit(&format!("job {job}: no worker is blocklisted\n"))?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                text(e, "worker_name"),
                text(e, "worker_id"),
                text(e, "task_type"),
                text(e, "reason"),
            ]
        })
        .collect();
    let headers = [
        ("WORKER", Align::Left),
        ("ID", Align::Left),
        ("TASK TYPE", Align::Left),
        ("REASON", Align::Left),
    ];
    emit(&table(&headers, &rows))?;
    Ok(ExitCode::SUCCESS)
}

/// Removes `worker`'s entries (by name or id), of `task_type` only when given.
pub async fn unblock(
    manager: &str,
    job: &str,
    worker: &str,
    task_type: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(manager);
    let chosen: Vec<Value> = entries(&client, job)
        .await?
        .into_iter()
        .filter(|e| text(e, "worker_id") == worker || text(e, "worker_name") == worker)
        .filter(|e| task_type.is_none_or(|wanted| text(e, "task_type") == wanted))
        .map(|e| json!({"worker_id": text(&e, "worker_id"), "task_type": text(&e, "task_type")}))
        .collect();
    if chosen.is_empty() {
        let of_type = task_type
            .map(|t| format!(" for task type {t}"))
            .unwrap_or_default();
        bail!("worker {worker} is not on the blocklist of job {job}{of_type}");
    }
    client
        .delete_json(
            &format!("/api/v3/jobs/{job}/blocklist"),
            &Value::Array(chosen.clone()),
        )
        .await
        .with_context(|| format!("cannot change the blocklist of job {job}"))?;
    let types: Vec<String> = chosen.iter().map(|e| text(e, "task_type")).collect();
    emit(&format!(
        "job {job}: worker {worker} may run its {} tasks again\n",
        types.join(", ")
    ))?;
    Ok(ExitCode::SUCCESS)
}
