//! A stored job as a later job-type script call sees it (`compileChunk` when adaptive chunking
//! regroups frames, `compileApproved` when a review approves the preview pass): the facts the
//! submission's `compileJob` had, read back from the job's row.
use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::compiler::CompileInput;

/// The columns of [`ScriptedJob`], for the queries that read one.
pub const SCRIPTED_JOB_COLUMNS: &str = "id, name, job_type, priority, settings, metadata, \
     worker_tag_id, storage_checkout_id, created_at, target_task_seconds";

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ScriptedJob {
    pub id: String,
    pub name: String,
    pub job_type: String,
    pub priority: i64,
    /// JSON object, as the job's compile left them.
    pub settings: String,
    /// JSON object of strings.
    pub metadata: String,
    pub worker_tag_id: Option<String>,
    pub storage_checkout_id: String,
    pub created_at: String,
    pub target_task_seconds: Option<f64>,
}

/// A stored field that does not read back as what the submission stored.
#[derive(Debug, thiserror::Error)]
#[error("the job's stored {0} are unreadable")]
pub struct UnreadableJob(pub &'static str);

impl ScriptedJob {
    /// The script's view of the job, and its settings (which the script call also takes).
    pub fn compile_input(&self) -> Result<(CompileInput, Map<String, Value>), UnreadableJob> {
        let settings: Map<String, Value> =
            serde_json::from_str(&self.settings).map_err(|_| UnreadableJob("settings"))?;
        let metadata: BTreeMap<String, String> =
            serde_json::from_str(&self.metadata).map_err(|_| UnreadableJob("metadata"))?;
        let created = chrono::DateTime::parse_from_rfc3339(&self.created_at)
            .map_err(|_| UnreadableJob("creation time"))?
            .with_timezone(&chrono::Utc);
        let input = CompileInput {
            job_id: self.id.clone(),
            name: self.name.clone(),
            job_type: self.job_type.clone(),
            priority: i32::try_from(self.priority).unwrap_or(50),
            settings: settings.clone(),
            metadata,
            worker_tag: self.worker_tag_id.clone(),
            shaman_checkout_id: Some(self.storage_checkout_id.clone()).filter(|id| !id.is_empty()),
            created,
            type_etag: None,
            target_task_seconds: self.target_task_seconds,
        };
        Ok((input, settings))
    }
}
