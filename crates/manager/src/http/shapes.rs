//! Rows → Flamenco-shaped JSON (`Job`, `TaskSummary`, `Task`). Required fields are always
//! present; optional ones are omitted when empty. Fields marked "extension" are ours.
use serde_json::{Map, Value, json};

use crate::store::{JobRow, TaskRow};

fn parse_object(text: &str) -> Value {
    serde_json::from_str::<Value>(text)
        .ok()
        .filter(Value::is_object)
        .unwrap_or_else(|| Value::Object(Map::new()))
}

pub fn job(row: &JobRow) -> Value {
    let mut job = json!({
        "id": row.id,
        "name": row.name,
        "type": row.job_type,
        "priority": row.priority,
        "status": row.status,
        "activity": row.activity,
        "created": row.created_at,
        "updated": row.updated_at,
        "steps_completed": row.steps_completed,
        "steps_total": row.steps_total,
        "settings": parse_object(&row.settings),
        "metadata": parse_object(&row.metadata),
        "submitter_platform": row.submitter_platform,
    });
    let Some(fields) = job.as_object_mut() else {
        return job;
    };
    if !row.type_etag.is_empty() {
        fields.insert("type_etag".into(), json!(row.type_etag));
    }
    if let Some(tag) = &row.worker_tag_id {
        fields.insert("worker_tag".into(), json!(tag));
    }
    if !row.storage_checkout_id.is_empty() {
        fields.insert(
            "storage".into(),
            json!({ "shaman_checkout_id": row.storage_checkout_id }),
        );
    }
    if let Some(at) = &row.delete_requested_at {
        fields.insert("delete_requested_at".into(), json!(at));
    }
    // Extension: what the job asks of its workers, as submitted (normalised).
    let requirements = parse_object(&row.requirements);
    if requirements.as_object().is_some_and(|r| !r.is_empty()) {
        fields.insert("requirements".into(), requirements);
    }
    // Extension: resource pools and the worker limit, and the jobs it waits for.
    let limits = parse_object(&row.limits);
    if limits.as_object().is_some_and(|l| !l.is_empty()) {
        fields.insert("limits".into(), limits);
    }
    if let Some(every) = row.preview_first_every {
        fields.insert("preview_first_every".into(), json!(every));
    }
    if let Some(seconds) = row.target_task_seconds {
        fields.insert("target_task_minutes".into(), json!(seconds / 60.0));
    }
    if !row.depends_on.is_empty() {
        fields.insert("depends_on".into(), json!(row.depends_on));
    }
    // Extension: the approval gate and its review, and the on-complete command.
    if let Some(state) = &row.approval_state {
        let mut approval = json!({ "state": state });
        for (key, value) in [
            ("comment", &row.approval_comment),
            ("by", &row.approval_by),
            ("at", &row.approval_at),
        ] {
            if let Some(value) = value {
                approval[key] = json!(value);
            }
        }
        fields.insert("approval".into(), approval);
    }
    if let Some(command) = &row.on_complete {
        fields.insert("on_complete".into(), json!(command));
    }
    job
}

fn task_worker(row: &TaskRow) -> Option<Value> {
    let id = row.worker_id.as_ref()?;
    Some(json!({
        "id": id,
        "name": row.worker_name.clone().unwrap_or_default(),
        "address": row.worker_address.clone().unwrap_or_default(),
    }))
}

/// The task fields shared by `TaskSummary` and `Task`.
fn task_common(row: &TaskRow) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("id".into(), json!(row.id));
    fields.insert("name".into(), json!(row.name));
    fields.insert("status".into(), json!(row.status));
    fields.insert("index_in_job".into(), json!(row.index_in_job));
    fields.insert("priority".into(), json!(row.priority));
    fields.insert("task_type".into(), json!(row.task_type));
    fields.insert("updated".into(), json!(row.updated_at));
    fields.insert("steps_completed".into(), json!(row.steps_completed));
    fields.insert("steps_total".into(), json!(row.steps_total));
    if let Some(worker) = task_worker(row) {
        fields.insert("worker".into(), worker);
    }
    // Extensions: live progress of the running command and the class of a failure.
    // A completed task is done entirely, whatever its last progress report said.
    let progress = if row.status == "completed" {
        Some(100.0)
    } else {
        row.progress
    };
    if let Some(progress) = progress {
        fields.insert("progress".into(), json!(progress));
    }
    if !row.fault_class.is_empty() {
        fields.insert("fault_class".into(), json!(row.fault_class));
    }
    // Extension: the frames of a chunk task (regrouped while queued under adaptive chunking).
    if let Some(frames) = &row.frames {
        fields.insert("frames".into(), json!(frames));
    }
    fields
}

pub fn task_summary(row: &TaskRow) -> Value {
    let mut fields = task_common(row);
    fields.insert("activity".into(), json!(row.activity));
    Value::Object(fields)
}

/// A whole task: the summary plus commands, job, timestamps, dependencies, failures.
pub fn task(
    row: &TaskRow,
    dependencies: &[String],
    failed_by: &[(String, String, String)],
) -> Value {
    let mut fields = task_common(row);
    let commands = serde_json::from_str::<Value>(&row.commands).unwrap_or_else(|_| json!([]));
    fields.insert("job_id".into(), json!(row.job_id));
    fields.insert("created".into(), json!(row.created_at));
    fields.insert("activity".into(), json!(row.activity));
    fields.insert("commands".into(), commands);
    if let Some(touched) = &row.last_touched_at {
        fields.insert("last_touched".into(), json!(touched));
    }
    // Extension: a soft-failed task waiting out its retry backoff.
    if let Some(at) = row
        .retry_at
        .as_ref()
        .filter(|_| row.status == "soft-failed")
    {
        fields.insert("retry_at".into(), json!(at));
    }
    let failed: Vec<Value> = failed_by
        .iter()
        .map(|(id, name, address)| json!({ "id": id, "name": name, "address": address }))
        .collect();
    fields.insert("failed_by_workers".into(), json!(failed));
    fields.insert("dependencies".into(), json!(dependencies));
    Value::Object(fields)
}
