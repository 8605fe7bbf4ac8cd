//! REST and event-stream scenarios: answer times of the paged job and task queries with
//! 100,000 tasks stored, and dispatch latency with and without idle SSE clients.
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use castanet_manager::AppState;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::percentiles;
use super::scenarios::{dispatch_latency, insert_job};
use super::sim::SimFarm;

/// The stored farm of the query scenario: one big job and many small ones.
const BIG_JOB_TASKS: usize = 50_000;
const SMALL_JOBS: usize = 500;
const SMALL_JOB_TASKS: usize = 100;
/// Tasks of the big job canceled one by one, so a status filter has something to find.
const CANCELED_TASKS: usize = 100;

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<&Value>,
) -> anyhow::Result<Value> {
    let mut request = http.request(method.clone(), url);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("{method} {url}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("{method} {url} answered {status}: {text}");
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Stores the jobs (pausing them through the API, so no worker runs them) and cancels
/// some tasks of the big one. Returns the big job's id.
async fn seed(state: &AppState, http: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    let pause = json!({ "status": "pause-requested", "reason": "bench data" });
    let (big, big_tasks) = insert_job(state, BIG_JOB_TASKS).await?;
    call(
        http,
        reqwest::Method::POST,
        &format!("{url}/api/v3/jobs/{big}/setstatus"),
        Some(&pause),
    )
    .await?;
    for _ in 0..SMALL_JOBS {
        let (id, _) = insert_job(state, SMALL_JOB_TASKS).await?;
        let path = format!("{url}/api/v3/jobs/{id}/setstatus");
        call(http, reqwest::Method::POST, &path, Some(&pause)).await?;
    }
    let cancel = json!({ "status": "canceled", "reason": "bench data" });
    let step = BIG_JOB_TASKS / CANCELED_TASKS;
    for task in big_tasks.iter().step_by(step) {
        let path = format!("{url}/api/v3/tasks/{task}/setstatus");
        call(http, reqwest::Method::POST, &path, Some(&cancel)).await?;
    }
    Ok(big)
}

/// How many tasks the database holds, per the farm summary.
async fn stored_tasks(http: &reqwest::Client, url: &str) -> anyhow::Result<i64> {
    let summary = call(
        http,
        reqwest::Method::GET,
        &format!("{url}/api/v3/farm/summary"),
        None,
    )
    .await?;
    Ok(summary["tasks"]
        .as_object()
        .map(|counts| counts.values().filter_map(Value::as_i64).sum())
        .unwrap_or_default())
}

/// Answer times of one request, `samples` times (after one warm-up call).
async fn timed(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<&Value>,
    samples: usize,
) -> anyhow::Result<(Vec<Duration>, Value)> {
    let mut last = call(http, method.clone(), url, body).await?;
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let start = Instant::now();
        last = call(http, method.clone(), url, body).await?;
        times.push(start.elapsed());
    }
    Ok((times, last))
}

fn count(answer: &Value, key: &str) -> usize {
    answer[key].as_array().map(Vec::len).unwrap_or_default()
}

/// Pages of 100 from the jobs query and from a 50,000-task job, with 100,000 tasks stored.
pub async fn jobs_query(state: &AppState, url: &str, samples: usize) -> anyhow::Result<Value> {
    let http = reqwest::Client::new();
    let seeding = Instant::now();
    let big = seed(state, &http, url).await?;
    let seed_seconds = seeding.elapsed().as_secs_f64();
    let tasks_stored = stored_tasks(&http, url).await?;
    let get = reqwest::Method::GET;
    let cases: Vec<(&str, reqwest::Method, String, Option<Value>, &str)> = vec![
        (
            "POST /jobs/query, 100 most recently updated",
            reqwest::Method::POST,
            format!("{url}/api/v3/jobs/query"),
            Some(json!({ "limit": 100, "order_by": ["updated"] })),
            "jobs",
        ),
        (
            "GET /jobs?status=paused&order=updated, last page",
            get.clone(),
            format!("{url}/api/v3/jobs?limit=100&offset=400&status=paused&order=updated"),
            None,
            "jobs",
        ),
        (
            "GET /jobs/{id}/tasks/page, middle of 50,000",
            get.clone(),
            format!("{url}/api/v3/jobs/{big}/tasks/page?offset=25000&limit=100"),
            None,
            "tasks",
        ),
        (
            "GET /jobs/{id}/tasks/page?status=canceled",
            get.clone(),
            format!("{url}/api/v3/jobs/{big}/tasks/page?status=canceled&limit=100"),
            None,
            "tasks",
        ),
    ];
    let mut results = Vec::new();
    for (name, method, case_url, body, key) in cases {
        let (times, answer) = timed(&http, method, &case_url, body.as_ref(), samples).await?;
        let mut result = percentiles(times);
        result["request"] = json!(name);
        result["items"] = json!(count(&answer, key));
        results.push(result);
    }
    // For comparison: Flamenco's unpaged list of every task of the big job.
    let (times, answer) = timed(
        &http,
        get,
        &format!("{url}/api/v3/jobs/{big}/tasks"),
        None,
        5,
    )
    .await?;
    let mut whole = percentiles(times);
    whole["request"] = json!("GET /jobs/{id}/tasks, all 50,000 (unpaged, Flamenco's)");
    whole["items"] = json!(count(&answer, "tasks"));
    results.push(whole);
    Ok(json!({
        "tasks_stored": tasks_stored,
        "jobs_stored": SMALL_JOBS + 1,
        "seed_seconds": seed_seconds,
        "pages": results,
    }))
}

/// Opens `clients` event streams that read (and drop) every event until `stop`. They
/// run on their own thread and runtime, as clients elsewhere would: only the manager's
/// side of each stream shares the manager's runtime.
fn idle_clients(url: &str, clients: usize, stop: &CancellationToken) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the SSE clients' runtime")?;
    let (url, stop) = (url.to_string(), stop.clone());
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let http = reqwest::Client::new();
            let mut readers = tokio::task::JoinSet::new();
            for _ in 0..clients {
                let response = match http.get(format!("{url}/api/v3/events")).send().await {
                    Ok(response) if response.status().is_success() => response,
                    Ok(response) => {
                        eprintln!("the event stream answered {}", response.status());
                        return;
                    }
                    Err(e) => {
                        eprintln!("cannot open an event stream: {e}");
                        return;
                    }
                };
                let stop = stop.clone();
                readers.spawn(async move {
                    let mut body = response.bytes_stream();
                    loop {
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            chunk = body.next() => if !matches!(chunk, Some(Ok(_))) { return },
                        }
                    }
                });
            }
            while readers.join_next().await.is_some() {}
        });
    });
    Ok(())
}

/// Dispatch latency without, then with `clients` idle SSE clients connected.
pub async fn sse_dispatch(
    state: &AppState,
    farm: &mut SimFarm,
    url: &str,
    clients: usize,
    samples: usize,
) -> anyhow::Result<Value> {
    let without = dispatch_latency(state, farm, samples).await?;
    let stop = CancellationToken::new();
    idle_clients(url, clients, &stop)?;
    // Every stream is subscribed once its first bytes came back; the bus counts them.
    let deadline = Instant::now() + Duration::from_secs(30);
    while state.events.subscriber_count() < clients {
        if Instant::now() > deadline {
            bail!(
                "only {} of {clients} event streams subscribed",
                state.events.subscriber_count()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let with = dispatch_latency(state, farm, samples).await?;
    stop.cancel();
    Ok(json!({
        "sse_clients": clients,
        "without_clients": percentiles(without),
        "with_clients": percentiles(with),
    }))
}
