//! `castanet demo`: a manager and two workers in one process, with their files in
//! `./castanet-demo/`, running a sample job — a first look at the farm.
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use castanet_manager::ManagerConfig;
use castanet_worker::WorkerConfig;
use clap::Args;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::api_client::{Answer, ApiClient};

#[derive(Args)]
pub struct DemoArgs {
    /// Where the demo keeps its config, database, logs and worker credentials.
    #[arg(long, default_value = "castanet-demo")]
    dir: PathBuf,
    /// Address for the manager (use port 0 for any free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Sleep tasks in the sample job.
    #[arg(long, default_value_t = 8)]
    tasks: u32,
    /// Stop once the sample job has ended, instead of waiting for Ctrl-C.
    #[arg(long)]
    exit_when_done: bool,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let mut stop_signals = super::signals::StopSignals::install();
    let (mut config, _) = ManagerConfig::load_or_create(&args.dir.join("castanet-manager.toml"))?;
    config.listen = args.listen.clone();
    let secret = config.registration_secret.clone();
    let manager = castanet_manager::start(config)
        .await
        .context("cannot start the demo manager (is another one running on that port? try --listen 127.0.0.1:0)")?;
    let url = format!("http://{}", manager.addr);

    let workers_stop = CancellationToken::new();
    let mut workers = Vec::new();
    for n in 1..=2 {
        let mut worker =
            WorkerConfig::with_defaults(url.clone(), args.dir.join(format!("worker-{n}")));
        worker.name = format!("demo-worker-{n}");
        worker.registration_secret = Some(secret.clone());
        let stop = workers_stop.clone();
        workers.push(tokio::spawn(async move {
            castanet_worker::run(worker, stop).await
        }));
    }

    println!(
        "Castanet demo farm: manager at {url} with 2 workers (files in {})",
        args.dir.display()
    );
    println!("  Web:     {}", dashboard_url(manager.addr));
    println!("  API:     {url}/api/v3/version, {url}/api/v3/jobs");
    println!("  CLI:     castanet --manager {url} jobs");
    let outcome = tokio::select! {
        outcome = run_sample_job(&url, args.tasks) => Some(outcome),
        () = stop_signals.requested() => None,
    };
    let code = match outcome {
        Some(Ok(status)) => {
            println!("sample job {status}");
            if !args.exit_when_done {
                println!(
                    "the farm keeps running; submit more with `castanet --manager {url} submit echo-sleep-test --set message=hi --wait`. Ctrl-C stops it."
                );
                stop_signals.requested().await;
            }
            if status == "completed" {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Some(Err(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
        None => ExitCode::SUCCESS,
    };
    println!("stopping the demo farm");
    workers_stop.cancel();
    for worker in workers {
        match worker.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("worker stopped with an error: {e}"),
            Err(e) => eprintln!("worker task failed: {e}"),
        }
    }
    manager.shutdown().await?;
    Ok(code)
}

/// Where a browser finds the dashboard: a manager listening on every address is reached
/// through this machine's loopback.
fn dashboard_url(addr: std::net::SocketAddr) -> String {
    let mut browsable = addr;
    if addr.ip().is_unspecified() {
        browsable.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("http://{browsable}/")
}

async fn run_sample_job(url: &str, tasks: u32) -> anyhow::Result<String> {
    let client = ApiClient::new(url);
    let job_type = client.get_json("/api/v3/jobs/type/echo-sleep-test").await?;
    let body = json!({
        "name": "Castanet demo",
        "type": "echo-sleep-test",
        "type_etag": job_type.get("etag").cloned().unwrap_or(Value::Null),
        "priority": 50,
        "settings": {
            "message": "Hello from the Castanet demo",
            "sleep_duration_seconds": 1,
            "sleep_repeats": tasks,
        },
        "metadata": {},
        "submitter_platform": std::env::consts::OS,
    });
    let Answer::Json(job) = client.post_json("/api/v3/jobs", &body).await? else {
        bail!("the manager accepted the sample job but returned no job");
    };
    let id = job
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    println!("submitted sample job {id}: castanet --manager {url} tasks {id}");
    super::jobs_cmd::follow_job(&client, &id).await
}

#[cfg(test)]
mod tests {
    use super::dashboard_url;

    #[test]
    fn the_dashboard_url_is_one_a_browser_can_open() {
        assert_eq!(
            dashboard_url("127.0.0.1:8080".parse().unwrap()),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(
            dashboard_url("0.0.0.0:8080".parse().unwrap()),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(
            dashboard_url("[::]:9000".parse().unwrap()),
            "http://[::1]:9000/"
        );
    }
}
