//! Open Job Description templates from the command line: `castanet submit --openjd FILE
//! --param NAME=VALUE` (checked here first, then sent to `POST /api/v3/jobs/openjd`) and
//! `castanet openjd check FILE…`, which expands templates locally and prints their steps.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::api_client::{Answer, ApiClient};

#[derive(Subcommand)]
pub enum OpenJdCommand {
    /// Check templates without a manager: print each one's steps and task counts, or why it
    /// is refused. Exits non-zero when any template is refused.
    Check(CheckArgs),
}

#[derive(Args)]
pub struct CheckArgs {
    /// Template files (YAML or JSON).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// A job parameter value, as NAME=VALUE. Repeatable; applies to every file.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
}

pub fn run(command: OpenJdCommand) -> anyhow::Result<ExitCode> {
    match command {
        OpenJdCommand::Check(args) => check(&args),
    }
}

fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let values = parse_params(&args.params)?;
    let mut refused = 0;
    for file in &args.files {
        match expand_file(file, &values) {
            Ok(job) => {
                println!(
                    "{}: accepted: job \"{}\", {} steps, {} tasks",
                    file.display(),
                    job.name,
                    job.steps.len(),
                    job.task_count()
                );
                for step in &job.steps {
                    let after = if step.dependencies.is_empty() {
                        String::new()
                    } else {
                        format!(" (after {})", step.dependencies.join(", "))
                    };
                    println!("  step {}: {} tasks{after}", step.name, step.tasks.len());
                }
            }
            Err(e) => {
                refused += 1;
                println!("{}: refused: {e:#}", file.display());
            }
        }
    }
    Ok(if refused == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `NAME=VALUE` pairs as the JSON strings the template's parameter types read.
pub fn parse_params(pairs: &[String]) -> anyhow::Result<BTreeMap<String, Value>> {
    let mut values = BTreeMap::new();
    for pair in pairs {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| anyhow!("--param {pair}: expected NAME=VALUE"))?;
        if values.insert(name.to_owned(), json!(value)).is_some() {
            bail!("--param {name} is given more than once");
        }
    }
    Ok(values)
}

fn read_template(file: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))
}

fn expand_file(
    file: &Path,
    values: &BTreeMap<String, Value>,
) -> anyhow::Result<castanet_openjd::Job> {
    let text = read_template(file)?;
    Ok(castanet_openjd::expand(&text, values)?)
}

/// What `castanet submit --openjd` sends besides the template and parameters.
pub struct Submission<'a> {
    pub template: &'a Path,
    pub params: &'a [String],
    pub name: Option<String>,
    pub priority: i64,
    pub paused: bool,
    pub wait: bool,
    pub placement: &'a crate::submit_placement::PlacementArgs,
    pub scheduling: &'a crate::scheduling_cmd::SchedulingArgs,
}

/// `castanet submit --openjd FILE`: the template is expanded here first, so a refusal names
/// the file before anything is sent.
pub async fn submit(manager: &str, submission: Submission<'_>) -> anyhow::Result<ExitCode> {
    let values = parse_params(submission.params)?;
    let file = submission.template;
    let text = read_template(file)?;
    let job = castanet_openjd::expand(&text, &values)
        .with_context(|| format!("{} is refused", file.display()))?;
    let client = ApiClient::new(manager);
    let mut body = json!({
        "template": text,
        "parameters": values,
        "priority": submission.priority,
        "metadata": { "submitted.by": "castanet-cli", "openjd.template": file.display().to_string() },
        "submitter_platform": std::env::consts::OS,
        "initial_status": if submission.paused { "paused" } else { "queued" },
    });
    if let Some(name) = submission.name {
        body["name"] = json!(name);
    }
    if let Some(requirements) = submission.placement.requirements()? {
        body["requirements"] = requirements;
    }
    if let Some(tag) = submission.placement.worker_tag(&client).await? {
        body["worker_tag"] = json!(tag);
    }
    submission.scheduling.add_to(&mut body)?;
    let Answer::Json(stored) = client.post_json("/api/v3/jobs/openjd", &body).await? else {
        bail!("the manager accepted the job but returned no job");
    };
    let id = stored
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    println!(
        "submitted job {id} ({} steps, {} tasks)",
        job.steps.len(),
        job.task_count()
    );
    if !submission.wait {
        return Ok(ExitCode::SUCCESS);
    }
    let status = crate::jobs_cmd::follow_job(&client, &id).await?;
    println!("job {id} {status}");
    Ok(if status == "completed" {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
