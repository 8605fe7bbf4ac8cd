//! The fields event streams carry about a changed job, task or worker (`events/details.rs`):
//! one read per kind for a whole burst.
use serde_json::{Value, json};

use super::{Store, StoreResult};
use crate::events::{DetailSource, Fields, Reading, Snapshot, Wanted};

type JobFields = (
    String,
    String,
    String,
    String,
    i64,
    String,
    i64,
    i64,
    String,
    Option<String>,
);
type TaskFields = (
    String,
    String,
    i64,
    String,
    String,
    i64,
    i64,
    Option<f64>,
    String,
    String,
    Option<String>,
    Option<String>,
);
type WorkerFields = (
    String,
    String,
    String,
    String,
    super::Flag,
    String,
    Option<String>,
    String,
);

fn object(value: Value) -> Fields {
    match value {
        Value::Object(fields) => fields,
        _ => Fields::new(),
    }
}

impl Store {
    /// The current fields of the named jobs, tasks and workers (ids that are gone are left out).
    pub async fn event_fields(&self, wanted: &Wanted) -> StoreResult<Snapshot> {
        let mut snapshot = Snapshot::default();
        let ids = |list: &[String]| serde_json::to_string(list).unwrap_or_else(|_| "[]".into());
        if !wanted.jobs.is_empty() {
            let rows: Vec<JobFields> = sqlx::query_as(
                "SELECT id, name, job_type, status, priority, activity, steps_completed,
                        steps_total, updated_at, delete_requested_at
                 FROM jobs WHERE id IN (SELECT value FROM json_each($1))",
            )
            .bind(ids(&wanted.jobs))
            .fetch_all(&self.read)
            .await?;
            for (id, name, job_type, status, priority, activity, done, total, updated, delete) in
                rows
            {
                let mut fields = object(json!({
                    "name": name, "job_type": job_type, "status": status, "priority": priority,
                    "activity": activity, "steps_completed": done, "steps_total": total,
                    "updated": updated,
                }));
                if let Some(at) = delete {
                    fields.insert("delete_requested_at".into(), json!(at));
                }
                snapshot.jobs.insert(id, fields);
            }
        }
        if !wanted.tasks.is_empty() {
            let rows: Vec<TaskFields> = sqlx::query_as(
                "SELECT t.id, t.name, t.index_in_job, t.status, t.activity, t.steps_completed,
                        t.steps_total, t.progress, t.fault_class, t.updated_at, t.worker_id, w.name
                 FROM tasks t LEFT JOIN workers w ON w.id = t.worker_id
                 WHERE t.id IN (SELECT value FROM json_each($1))",
            )
            .bind(ids(&wanted.tasks))
            .fetch_all(&self.read)
            .await?;
            for (
                id,
                name,
                index,
                status,
                activity,
                done,
                total,
                progress,
                fault,
                updated,
                worker,
                worker_name,
            ) in rows
            {
                let mut fields = object(json!({
                    "name": name, "index_in_job": index, "status": status, "activity": activity,
                    "steps_completed": done, "steps_total": total, "updated": updated,
                }));
                // As the Task answer has it: a completed task is done entirely.
                let progress = if status == "completed" {
                    Some(100.0)
                } else {
                    progress
                };
                if let Some(progress) = progress {
                    fields.insert("progress".into(), json!(progress));
                }
                if !fault.is_empty() {
                    fields.insert("fault_class".into(), json!(fault));
                }
                if let Some(worker) = worker {
                    let name = worker_name.unwrap_or_default();
                    fields.insert("worker".into(), json!({ "id": worker, "name": name }));
                }
                snapshot.tasks.insert(id, fields);
            }
        }
        if !wanted.workers.is_empty() {
            let rows: Vec<WorkerFields> = sqlx::query_as(
                "SELECT id, name, status, status_requested, lazy_status_request != 0,
                        software_version, last_seen_at, updated_at
                 FROM workers WHERE id IN (SELECT value FROM json_each($1))",
            )
            .bind(ids(&wanted.workers))
            .fetch_all(&self.read)
            .await?;
            for (id, name, status, requested, lazy, version, last_seen, updated) in rows {
                let mut fields = object(json!({
                    "name": name, "status": status, "version": version, "updated": updated,
                }));
                if !requested.is_empty() {
                    fields.insert(
                        "status_change".into(),
                        json!({ "status": requested, "is_lazy": lazy.0 }),
                    );
                }
                if let Some(at) = last_seen {
                    fields.insert("last_seen".into(), json!(at));
                }
                snapshot.workers.insert(id, fields);
            }
        }
        Ok(snapshot)
    }
}

impl DetailSource for Store {
    fn read(&self, wanted: Wanted) -> Reading<'_> {
        Box::pin(async move {
            self.event_fields(&wanted).await.unwrap_or_else(|e| {
                tracing::warn!("events go out with ids only: cannot read what changed: {e}");
                Snapshot::default()
            })
        })
    }
}
