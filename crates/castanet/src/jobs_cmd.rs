//! CLI verbs about jobs: submit (optionally waiting with a progress bar), list jobs,
//! list a job's tasks, print a task's log.
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value, json};

use crate::api_client::{Answer, ApiClient};
use crate::output::{Align, emit, table};

/// How often `--wait` re-reads the job.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Args)]
pub struct SubmitArgs {
    /// Job type, e.g. echo-sleep-test (not with --openjd).
    #[arg(required_unless_present = "openjd", conflicts_with = "openjd")]
    job_type: Option<String>,
    /// Submit an Open Job Description job template (YAML or JSON file) instead of a job type.
    #[arg(long, value_name = "TEMPLATE", conflicts_with = "settings")]
    openjd: Option<std::path::PathBuf>,
    /// A job parameter of the --openjd template, as NAME=VALUE. Repeatable.
    #[arg(long = "param", value_name = "NAME=VALUE", requires = "openjd")]
    params: Vec<String>,
    /// Job name (default: the job type).
    #[arg(long)]
    name: Option<String>,
    /// Higher runs sooner.
    #[arg(long, default_value_t = 50)]
    priority: i64,
    /// A setting, as key=value; typed by the job type's definition. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    settings: Vec<String>,
    /// Submit paused instead of queued.
    #[arg(long)]
    paused: bool,
    /// Show progress until the job ends; exit 0 only if it completed.
    #[arg(long)]
    wait: bool,
    #[command(flatten)]
    placement: crate::submit_placement::PlacementArgs,
    #[command(flatten)]
    scheduling: crate::scheduling_cmd::SchedulingArgs,
}

/// Turns `key=value` strings into JSON typed by the job type's setting definitions.
fn typed_settings(job_type: &Value, pairs: &[String]) -> anyhow::Result<Map<String, Value>> {
    let definitions = job_type
        .get("settings")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let known: Vec<&str> = definitions
        .iter()
        .filter_map(|d| d.get("key").and_then(Value::as_str))
        .collect();
    let mut settings = Map::new();
    for pair in pairs {
        let (key, raw) = pair
            .split_once('=')
            .ok_or_else(|| anyhow!("--set {pair}: expected KEY=VALUE"))?;
        let definition = definitions
            .iter()
            .find(|d| d.get("key").and_then(Value::as_str) == Some(key))
            .ok_or_else(|| {
                anyhow!(
                    "the job type has no setting \"{key}\"; its settings: {}",
                    known.join(", ")
                )
            })?;
        let kind = definition
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("string");
        let value =
            match kind {
                "int32" => json!(raw.trim().parse::<i32>().with_context(|| format!(
                    "setting {key} must be a whole number, got \"{raw}\""
                ))?),
                "float" => {
                    json!(raw.trim().parse::<f64>().with_context(|| format!(
                        "setting {key} must be a number, got \"{raw}\""
                    ))?)
                }
                "bool" => match raw.trim().to_ascii_lowercase().as_str() {
                    "true" | "yes" | "1" | "on" => json!(true),
                    "false" | "no" | "0" | "off" => json!(false),
                    _ => bail!("setting {key} must be true or false, got \"{raw}\""),
                },
                _ => json!(raw),
            };
        settings.insert(key.to_string(), value);
    }
    Ok(settings)
}

pub async fn submit(manager: &str, args: SubmitArgs) -> anyhow::Result<ExitCode> {
    if let Some(template) = &args.openjd {
        let submission = crate::openjd_cmd::Submission {
            template,
            params: &args.params,
            name: args.name.clone(),
            priority: args.priority,
            paused: args.paused,
            wait: args.wait,
            placement: &args.placement,
            scheduling: &args.scheduling,
        };
        return crate::openjd_cmd::submit(manager, submission).await;
    }
    let job_type_name = args
        .job_type
        .clone()
        .ok_or_else(|| anyhow!("name a job type, or give --openjd TEMPLATE"))?;
    let client = ApiClient::new(manager);
    let job_type = client
        .get_json(&format!("/api/v3/jobs/type/{job_type_name}"))
        .await?;
    let mut settings = typed_settings(&job_type, &args.settings)?;
    let name = args.name.unwrap_or_else(|| job_type_name.clone());
    let computed = crate::addon_settings::fill_computed(&job_type, &name, &mut settings);
    if !computed.is_empty() {
        eprintln!(
            "computed as the Blender add-on would (--set one to change it): {}",
            computed.join(", ")
        );
    }
    let requirements = args.placement.requirements()?;
    let worker_tag = args.placement.worker_tag(&client).await?;
    let mut body = json!({
        "name": name,
        "type": job_type_name,
        "type_etag": job_type.get("etag").cloned().unwrap_or(Value::Null),
        "priority": args.priority,
        "settings": settings,
        "metadata": { "submitted.by": "castanet-cli" },
        "submitter_platform": std::env::consts::OS,
        "initial_status": if args.paused { "paused" } else { "queued" },
    });
    if let Some(requirements) = requirements {
        body["requirements"] = requirements;
    }
    if let Some(tag) = worker_tag {
        body["worker_tag"] = json!(tag);
    }
    args.scheduling.add_to(&mut body)?;
    let Answer::Json(job) = client.post_json("/api/v3/jobs", &body).await? else {
        bail!("the manager accepted the job but returned no job");
    };
    let id = job
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    println!("submitted job {id}");
    if !args.wait {
        return Ok(ExitCode::SUCCESS);
    }
    let status = follow_job(&client, &id).await?;
    println!("job {id} {status}");
    Ok(if status == "completed" {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Shows a progress bar for a job until it completes, fails or is canceled; returns
/// the final status.
pub async fn follow_job(client: &ApiClient, job_id: &str) -> anyhow::Result<String> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} steps  {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    loop {
        let job = client.get_json(&format!("/api/v3/jobs/{job_id}")).await?;
        let status = job
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string();
        let done = job
            .get("steps_completed")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let total = job.get("steps_total").and_then(Value::as_u64).unwrap_or(0);
        bar.set_length(total);
        bar.set_position(done);
        bar.set_message(status.clone());
        if matches!(status.as_str(), "completed" | "failed" | "canceled") {
            end_bar(&bar, &status);
            return Ok(status);
        }
        tokio::time::sleep(FOLLOW_INTERVAL).await;
    }
}

/// Leaves the bar drawn as the job ended: full only when it completed, else where it stopped.
fn end_bar(bar: &ProgressBar, status: &str) {
    if status == "completed" {
        bar.finish();
    } else {
        bar.abandon();
    }
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Jobs asked for per request: the manager's largest page.
const JOBS_PAGE: usize = 1000;

pub async fn list_jobs(manager: &str) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(manager);
    // The manager answers in pages (100 jobs unless asked for more): read them all.
    let mut jobs: Vec<Value> = Vec::new();
    loop {
        let path = format!("/api/v3/jobs?limit={JOBS_PAGE}&offset={}", jobs.len());
        let answer = client.get_json(&path).await?;
        let page = answer
            .get("jobs")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let total = answer.get("total").and_then(Value::as_u64).unwrap_or(0);
        let last_page = page.len() < JOBS_PAGE;
        jobs.extend(page);
        if last_page || jobs.len() as u64 >= total {
            break;
        }
    }
    let (etas, farm_eta) = crate::scheduling_cmd::estimates(&client)
        .await
        .unwrap_or_default();
    let number = |job: &Value, key: &str| job.get(key).and_then(Value::as_i64).unwrap_or(0);
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|job| {
            vec![
                text(job, "id").to_string(),
                text(job, "name").to_string(),
                text(job, "type").to_string(),
                text(job, "status").to_string(),
                number(job, "priority").to_string(),
                format!(
                    "{}/{}",
                    number(job, "steps_completed"),
                    number(job, "steps_total")
                ),
                text(job, "created").to_string(),
                etas.get(text(job, "id"))
                    .cloned()
                    .unwrap_or_else(|| "—".into()),
            ]
        })
        .collect();
    let headers = [
        ("ID", Align::Left),
        ("NAME", Align::Left),
        ("TYPE", Align::Left),
        ("STATUS", Align::Left),
        ("PRIO", Align::Right),
        ("STEPS", Align::Right),
        ("CREATED", Align::Left),
        ("DONE ≈", Align::Left),
    ];
    let mut text = table(&headers, &rows);
    if !farm_eta.is_empty() {
        text.push_str(&farm_eta);
        text.push('\n');
    }
    emit(&text)?;
    Ok(ExitCode::SUCCESS)
}

pub async fn list_tasks(manager: &str, job_id: &str) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(manager);
    let answer = client
        .get_json(&format!("/api/v3/jobs/{job_id}/tasks"))
        .await?;
    let tasks = answer
        .get("tasks")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|task| {
            let worker = task.get("worker").map(|w| text(w, "name")).unwrap_or("");
            let mut status = text(task, "status").to_string();
            if let Some(class) = task.get("fault_class").and_then(Value::as_str) {
                status = format!("{status} ({class})");
            }
            vec![
                task.get("index_in_job")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
                    .to_string(),
                text(task, "id").to_string(),
                text(task, "name").to_string(),
                text(task, "task_type").to_string(),
                status,
                worker.to_string(),
                text(task, "activity").to_string(),
            ]
        })
        .collect();
    let headers = [
        ("#", Align::Right),
        ("ID", Align::Left),
        ("NAME", Align::Left),
        ("TYPE", Align::Left),
        ("STATUS", Align::Left),
        ("WORKER", Align::Left),
        ("ACTIVITY", Align::Left),
    ];
    emit(&table(&headers, &rows))?;
    Ok(ExitCode::SUCCESS)
}

pub async fn print_log(manager: &str, task_id: &str) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(manager);
    match client.get(&format!("/api/v3/tasks/{task_id}/log")).await? {
        Answer::Empty => eprintln!("task {task_id} has no log yet"),
        Answer::Json(info) => {
            let url = text(&info, "url");
            emit(&client.get_text(url).await?)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_typed_by_the_job_type_and_typos_are_named() {
        let job_type = json!({"settings": [
            {"key": "message", "type": "string"},
            {"key": "sleep_repeats", "type": "int32"},
            {"key": "fast", "type": "bool"},
        ]});
        let pairs = vec![
            "message=a=b".to_string(),
            "sleep_repeats=3".into(),
            "fast=yes".into(),
        ];
        let settings = typed_settings(&job_type, &pairs).unwrap();
        assert_eq!(settings["message"], json!("a=b"));
        assert_eq!(settings["sleep_repeats"], json!(3));
        assert_eq!(settings["fast"], json!(true));
        let err = typed_settings(&job_type, &["mesage=x".into()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"mesage\"") && err.contains("message, sleep_repeats"),
            "{err}"
        );
        let err = typed_settings(&job_type, &["sleep_repeats=many".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("whole number"), "{err}");
    }

    #[test]
    fn only_a_completed_job_fills_the_bar() {
        for (status, position) in [("completed", 10), ("failed", 3), ("canceled", 3)] {
            let bar = ProgressBar::hidden();
            bar.set_length(10);
            bar.set_position(3);
            end_bar(&bar, status);
            assert_eq!(bar.position(), position, "{status}");
            assert!(bar.is_finished());
        }
    }
}
