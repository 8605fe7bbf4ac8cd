//! The soak's fail-over, on PostgreSQL: a standby manager joins the farm's database, the
//! active manager is SIGKILLed, and the scenario times the standby's takeover (ready to
//! write), the first task a worker receives from it, and every worker moved over and given a
//! task. The simulated workers were given both addresses from the start, as real workers
//! given `--manager a,b`.
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::processes::ManagerProcess;
use super::sim::SimFarm;
use super::soak_scenario::wait_reattached;

/// How long the standby gets to read who is active, and then to take over.
const STANDBY_LIMIT: Duration = Duration::from_secs(60);

/// A loopback address no one listens on now, for the standby the workers are told of before
/// it starts.
pub fn free_loopback_address() -> anyhow::Result<String> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("finding a free loopback port")?;
    Ok(listener.local_addr()?.to_string())
}

/// Starts a standby in `standby_dir` on `listen`, sharing `active_dir`'s config (database and
/// secret), kills `active`, and measures until every worker of `farm` has a task again.
pub async fn fail_over(
    active: ManagerProcess,
    active_dir: &Path,
    standby_dir: &Path,
    listen: &str,
    farm: &mut SimFarm,
    assigned: &mut HashMap<String, u32>,
) -> anyhow::Result<Value> {
    std::fs::create_dir_all(standby_dir)
        .with_context(|| format!("creating {}", standby_dir.display()))?;
    let config = "castanet-manager.toml";
    std::fs::copy(active_dir.join(config), standby_dir.join(config))
        .context("copying the manager's config for the standby")?;
    let standby = ManagerProcess::start_listening(standby_dir, listen)?;
    let http = reqwest::Client::new();
    // Killed before the standby knows the active one, the measure would include its start.
    wait_readiness(&http, &standby.url, |status, body| {
        status == 503 && body.contains(&active.url)
    })
    .await
    .context("the standby never named the active manager")?;

    let killed = Instant::now();
    active.kill()?;
    let ready = {
        let (http, url) = (http.clone(), standby.url.clone());
        tokio::spawn(async move {
            wait_readiness(&http, &url, |status, _| status == 200).await?;
            anyhow::Ok(killed.elapsed())
        })
    };
    let moved = wait_reattached(farm, killed, assigned, "fail-over").await?;
    let ready = ready.await.context("the readiness poll")??;
    standby.stop()?;
    Ok(json!({
        "standby_ready_seconds": ready.as_secs_f64(),
        "first_assignment_seconds": moved.first_assigned.as_secs_f64(),
        "all_signed_on_seconds": moved.signed_on.as_secs_f64(),
        "all_dispatching_seconds": moved.dispatching.as_secs_f64(),
    }))
}

/// Polls `GET /readyz` until `done(status, body)`, within `STANDBY_LIMIT`.
async fn wait_readiness(
    http: &reqwest::Client,
    url: &str,
    done: impl Fn(u16, &str) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + STANDBY_LIMIT;
    loop {
        if let Ok(response) = http.get(format!("{url}/readyz")).send().await {
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            if done(status, &body) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{url}/readyz still answers {status} {body} after {STANDBY_LIMIT:?}");
            }
        } else if Instant::now() > deadline {
            bail!("{url}/readyz did not answer within {STANDBY_LIMIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
