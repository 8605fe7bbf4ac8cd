//! `castanet job pause|resume|cancel|requeue|delete|priority|depend|approve|reject|blocklist|
//! unblock` and
//! `castanet why TASK`: status actions on jobs, and why a task is not running.
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::Subcommand;
use serde_json::{Value, json};

use crate::api_client::{Answer, ApiClient};

#[derive(Subcommand)]
pub enum JobAction {
    /// Stop handing out the job's tasks; running ones finish first.
    Pause { job: String },
    /// Let a paused job run again.
    Resume { job: String },
    /// Cancel the job; running tasks are aborted on their workers.
    Cancel { job: String },
    /// Run the job's failed, canceled and paused tasks again (all tasks of a completed
    /// job); clears the failure lists and the job's blocklist.
    Requeue { job: String },
    /// Delete the job, its tasks and its logs' bookkeeping.
    Delete { job: String },
    /// Set the job's priority (0..=100, higher runs sooner).
    Priority { job: String, priority: i64 },
    /// Make the job wait until other jobs have completed (replaces its dependencies; no
    /// --on: it waits for none). Refused for a job that started, and for cycles.
    Depend {
        job: String,
        /// A job it waits for. Repeatable.
        #[arg(long = "on", value_name = "JOB")]
        on: Vec<String>,
    },
    /// Approve the preview pass of a job awaiting approval: its final pass is queued.
    Approve {
        job: String,
        /// A note kept with the approval.
        #[arg(long)]
        comment: Option<String>,
        /// Who approves, recorded when no API token names you (default: $USER).
        #[arg(long, env = "USER")]
        reviewer: Option<String>,
    },
    /// List the workers that may not run the job's tasks of some type, and why.
    Blocklist { job: String },
    /// Let a blocklisted worker run the job's tasks again (of every type, or --task-type).
    Unblock {
        job: String,
        /// The worker's name or id.
        #[arg(long)]
        worker: String,
        #[arg(long)]
        task_type: Option<String>,
    },
    /// Reject the preview pass of a job awaiting approval: the job ends as rejected.
    Reject {
        job: String,
        /// What to change (required; kept with the job).
        #[arg(long)]
        comment: String,
        /// Who rejects, recorded when no API token names you (default: $USER).
        #[arg(long, env = "USER")]
        reviewer: Option<String>,
    },
}

pub async fn run(manager: &str, action: JobAction) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(manager);
    let (job, done) = match action {
        JobAction::Pause { job } => set_status(&client, job, "pause-requested", "pause").await?,
        JobAction::Resume { job } => set_status(&client, job, "queued", "resume").await?,
        JobAction::Cancel { job } => set_status(&client, job, "cancel-requested", "cancel").await?,
        JobAction::Requeue { job } => set_status(&client, job, "requeueing", "requeue").await?,
        JobAction::Priority { job, priority } => {
            client
                .post_json(
                    &format!("/api/v3/jobs/{job}/setpriority"),
                    &json!({ "priority": priority }),
                )
                .await?;
            (job, format!("priority set to {priority}"))
        }
        JobAction::Blocklist { job } => return crate::blocklist_cmd::list(manager, &job).await,
        JobAction::Unblock {
            job,
            worker,
            task_type,
        } => {
            return crate::blocklist_cmd::unblock(manager, &job, &worker, task_type.as_deref())
                .await;
        }
        JobAction::Depend { job, on } => {
            return crate::scheduling_cmd::depend(manager, &job, &on).await;
        }
        JobAction::Approve {
            job,
            comment,
            reviewer,
        } => {
            let body = json!({ "comment": comment.unwrap_or_default(), "reviewer": reviewer });
            review(&client, &job, "approve", &body).await?;
            (job, "approved; the final pass is queued".to_owned())
        }
        JobAction::Reject {
            job,
            comment,
            reviewer,
        } => {
            let body = json!({ "comment": comment, "reviewer": reviewer });
            review(&client, &job, "reject", &body).await?;
            (job, "rejected".to_owned())
        }
        JobAction::Delete { job } => {
            delete(manager, &job).await?;
            println!("job {job} deleted");
            return Ok(ExitCode::SUCCESS);
        }
    };
    let now = client.get_json(&format!("/api/v3/jobs/{job}")).await?;
    let status = now.get("status").and_then(Value::as_str).unwrap_or("?");
    println!("job {job}: {done}; status now {status}");
    Ok(ExitCode::SUCCESS)
}

/// Approves or rejects a job's preview pass (`verb` is the path's last part).
async fn review(client: &ApiClient, job: &str, verb: &str, body: &Value) -> anyhow::Result<()> {
    client
        .post_json(&format!("/api/v3/jobs/{job}/{verb}"), body)
        .await
        .with_context(|| format!("cannot {verb} job {job}"))?;
    Ok(())
}

async fn set_status(
    client: &ApiClient,
    job: String,
    status: &str,
    verb: &str,
) -> anyhow::Result<(String, String)> {
    let body = json!({ "status": status, "reason": format!("{verb} from the command line") });
    client
        .post_json(&format!("/api/v3/jobs/{job}/setstatus"), &body)
        .await
        .with_context(|| format!("cannot {verb} job {job}"))?;
    Ok((job, format!("{verb} requested")))
}

async fn delete(manager: &str, job: &str) -> anyhow::Result<()> {
    // Through the API client, so the token and certificate trust apply.
    ApiClient::new(manager)
        .delete(&format!("/api/v3/jobs/{job}"))
        .await
        .with_context(|| format!("cannot delete job {job}"))?;
    Ok(())
}

/// `castanet why TASK`: prints every rule that keeps a task from running.
pub async fn why(manager: &str, task: &str) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(manager);
    let Answer::Json(answer) = client.get(&format!("/api/v3/tasks/{task}/why")).await? else {
        return Err(anyhow!("the manager gave no answer about task {task}"));
    };
    let status = answer.get("status").and_then(Value::as_str).unwrap_or("?");
    let summary = answer.get("summary").and_then(Value::as_str).unwrap_or("");
    let mut text = format!("task {task}: {status}\n{summary}\n");
    for reason in answer
        .get("blockers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let rule = reason.get("rule").and_then(Value::as_str).unwrap_or("?");
        let detail = reason.get("detail").and_then(Value::as_str).unwrap_or("");
        text.push_str(&format!("  - [{rule}] {detail}\n"));
    }
    crate::output::emit(&text)?;
    Ok(ExitCode::SUCCESS)
}
