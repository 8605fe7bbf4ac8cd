//! Scheduling from the command line: `castanet submit`'s flags for job dependencies,
//! resource pools, the worker limit, preview-first order and adaptive chunking; `castanet job depend`;
//! `castanet resources`; and the completion estimates `castanet jobs` shows.
use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use serde_json::{Map, Value, json};

use crate::api_client::{Answer, ApiClient};
use crate::output::{Align, emit, table};

#[derive(Args, Default)]
pub struct SchedulingArgs {
    /// Run only once this job has completed (a job id). Repeatable.
    #[arg(long = "depends-on", value_name = "JOB")]
    depends_on: Vec<String>,
    /// Each running task holds units of this resource pool: POOL or POOL=N (default 1).
    /// Repeatable. `castanet resources` lists the pools.
    #[arg(long = "resource", value_name = "POOL[=N]")]
    resources: Vec<String>,
    /// Only tasks of this type hold the --resource units. Repeatable (default: every task).
    #[arg(long = "resource-task-type", value_name = "TYPE")]
    resource_task_types: Vec<String>,
    /// The most workers that run the job's tasks at the same time.
    #[arg(long, value_name = "N")]
    max_workers: Option<u32>,
    /// Hand out every Nth task first, then the gaps, for an early look at the whole range.
    #[arg(long, value_name = "N")]
    preview_first_every: Option<u32>,
    /// Adaptive chunking: aim for tasks of about this many minutes instead of a fixed chunk
    /// size; the job starts from single frames and its queued frames are regrouped as they
    /// render (job types with compileChunk, e.g. simple-blender-render).
    #[arg(long, value_name = "MINUTES")]
    target_task_minutes: Option<f64>,
    /// A command line a worker runs once the job's last render task finished (after the final
    /// pass for a job with an approval gate), e.g. "rsync -a /render/shot review:/incoming/".
    /// No shell: split into words like a shell would; the job's id, name and render output
    /// folder are in CASTANET_JOB_ID, CASTANET_JOB_NAME and CASTANET_RENDER_OUTPUT.
    #[arg(long, value_name = "COMMAND")]
    on_complete: Option<String>,
}

impl SchedulingArgs {
    /// Adds the flags' submission fields (`depends_on`, `limits`, `preview_first_every`).
    pub fn add_to(&self, body: &mut Value) -> anyhow::Result<()> {
        if !self.depends_on.is_empty() {
            body["depends_on"] = json!(self.depends_on);
        }
        let mut limits = Map::new();
        if !self.resources.is_empty() {
            limits.insert(
                "resources".into(),
                Value::Object(parse_resources(&self.resources)?),
            );
        }
        if !self.resource_task_types.is_empty() {
            if self.resources.is_empty() {
                bail!("--resource-task-type needs a --resource to apply to");
            }
            limits.insert(
                "resource_task_types".into(),
                json!(self.resource_task_types),
            );
        }
        if let Some(workers) = self.max_workers {
            limits.insert("max_workers".into(), json!(workers));
        }
        if !limits.is_empty() {
            body["limits"] = Value::Object(limits);
        }
        if let Some(every) = self.preview_first_every {
            body["preview_first_every"] = json!(every);
        }
        if let Some(minutes) = self.target_task_minutes {
            body["target_task_minutes"] = json!(minutes);
        }
        if let Some(command) = &self.on_complete {
            body["on_complete"] = json!(command);
        }
        Ok(())
    }
}

/// `POOL` or `POOL=N` → {POOL: N}; a pool named twice adds up.
fn parse_resources(flags: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut units: HashMap<String, u64> = HashMap::new();
    for flag in flags {
        let (pool, count) = match flag.split_once('=') {
            Some((pool, count)) => {
                let count: u64 = count.trim().parse().with_context(|| {
                    format!("--resource {flag}: the units must be a whole number, as in {pool}=2")
                })?;
                (pool.trim(), count)
            }
            None => (flag.trim(), 1),
        };
        if pool.is_empty() {
            bail!("--resource {flag}: name the pool, as in redshift-licence=1");
        }
        *units.entry(pool.to_string()).or_default() += count;
    }
    Ok(units.into_iter().map(|(k, v)| (k, json!(v))).collect())
}

/// `castanet job depend JOB [--on JOB …]`: replaces the jobs JOB waits for (none: it no
/// longer waits).
pub async fn depend(manager: &str, job: &str, on: &[String]) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(manager);
    let answer = client
        .put_json(
            &format!("/api/v3/jobs/{job}/dependencies"),
            &json!({ "depends_on": on }),
        )
        .await
        .with_context(|| format!("cannot change the dependencies of job {job}"))?;
    let Answer::Json(job_now) = answer else {
        return Err(anyhow!("the manager gave no answer about job {job}"));
    };
    let status = job_now.get("status").and_then(Value::as_str).unwrap_or("?");
    let activity = job_now
        .get("activity")
        .and_then(Value::as_str)
        .unwrap_or("");
    if on.is_empty() {
        println!("job {job} depends on no job; status now {status}");
    } else {
        println!(
            "job {job} depends on {}; status now {status}",
            on.join(", ")
        );
    }
    if status == "waiting-for-dependencies" {
        println!("{activity}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `castanet resources`: the farm's resource pools and the units in use.
pub async fn resources(manager: &str) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(manager);
    let answer = client.get_json("/api/v3/resources").await?;
    let pools = answer
        .get("pools")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if pools.is_empty() {
        println!(
            "the farm has no resource pools (add them under [resources] in the manager's config)"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let number = |pool: &Value, key: &str| pool.get(key).and_then(Value::as_u64).unwrap_or(0);
    let rows: Vec<Vec<String>> = pools
        .iter()
        .map(|pool| {
            vec![
                pool.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                number(pool, "in_use").to_string(),
                number(pool, "size").to_string(),
            ]
        })
        .collect();
    let headers = [
        ("POOL", Align::Left),
        ("IN USE", Align::Right),
        ("SIZE", Align::Right),
    ];
    emit(&table(&headers, &rows))?;
    Ok(ExitCode::SUCCESS)
}

/// Completion estimates: job id → "14:32 (14:20–14:45)", and the farm's line. None when the
/// manager has no estimates to give (an older manager, say): the list is shown without them.
pub async fn estimates(client: &ApiClient) -> Option<(HashMap<String, String>, String)> {
    let answer = client.get_json("/api/v3/eta").await.ok()?;
    let jobs = answer
        .get("jobs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|job| {
            let id = job.get("job_id")?.as_str()?.to_string();
            Some((id, describe(job)?))
        })
        .collect();
    // Nothing said about an idle farm: the list speaks for itself.
    let farm = answer
        .get("farm")
        .filter(|farm| farm.get("remaining_tasks").and_then(Value::as_u64) != Some(0))
        .map_or_else(String::new, |farm| match describe(farm) {
            Some(when) => format!("farm done ≈ {when}"),
            None => format!(
                "farm: {}",
                farm.get("basis")
                    .and_then(Value::as_str)
                    .unwrap_or("no estimate")
            ),
        });
    Some((jobs, farm))
}

/// "14:32:05 (14:20:00–14:45:10)" in local time; None without an estimate.
fn describe(estimate: &Value) -> Option<String> {
    let time = |key: &str| -> Option<String> {
        let at = chrono::DateTime::parse_from_rfc3339(estimate.get(key)?.as_str()?).ok()?;
        let local = at.with_timezone(&chrono::Local);
        let today = chrono::Local::now().date_naive() == local.date_naive();
        Some(if today {
            local.format("%H:%M:%S").to_string()
        } else {
            local.format("%Y-%m-%d %H:%M").to_string()
        })
    };
    let finish = time("finish_at")?;
    match (time("earliest"), time("latest")) {
        (Some(earliest), Some(latest)) if earliest != latest => {
            Some(format!("{finish} ({earliest}–{latest})"))
        }
        _ => Some(finish),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_the_submission_fields_and_mistakes_are_named() {
        let args = SchedulingArgs {
            depends_on: vec!["a".into()],
            resources: vec!["licence".into(), "licence=2".into(), "gpu-slot=1".into()],
            resource_task_types: vec!["blender".into()],
            max_workers: Some(3),
            preview_first_every: Some(10),
            target_task_minutes: Some(2.5),
            on_complete: Some("touch done".into()),
        };
        let mut body = json!({});
        args.add_to(&mut body).unwrap();
        assert_eq!(body["depends_on"], json!(["a"]));
        assert_eq!(
            body["limits"],
            json!({ "resources": { "licence": 3, "gpu-slot": 1 },
                    "resource_task_types": ["blender"], "max_workers": 3 })
        );
        assert_eq!(body["preview_first_every"], json!(10));
        assert_eq!(body["target_task_minutes"], json!(2.5));
        assert_eq!(body["on_complete"], json!("touch done"));
        let mut untouched = json!({});
        SchedulingArgs::default().add_to(&mut untouched).unwrap();
        assert_eq!(untouched, json!({}));
        let err = parse_resources(&["licence=two".into()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("licence=two") && err.contains("whole number"),
            "{err}"
        );
        let only_types = SchedulingArgs {
            resource_task_types: vec!["blender".into()],
            ..Default::default()
        };
        let err = only_types.add_to(&mut json!({})).unwrap_err().to_string();
        assert!(err.contains("--resource"), "{err}");
    }

    #[test]
    fn estimates_show_the_finish_and_its_range() {
        let at = |s: i64| (chrono::Utc::now() + chrono::Duration::seconds(s)).to_rfc3339();
        let shown = describe(&json!({ "finish_at": at(60), "earliest": at(30), "latest": at(90) }))
            .expect("an estimate");
        assert!(shown.contains('(') && shown.contains('–'), "{shown}");
        assert!(describe(&json!({ "basis": "no task completed yet" })).is_none());
    }
}
