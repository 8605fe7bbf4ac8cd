//! REST and event-stream scenarios: answer times of the paged job and task queries with
//! 100,000 tasks stored, and dispatch latency with and without idle SSE clients.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use castanet_manager::AppState;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::cpu;
use super::percentiles;
use super::scenarios::{dispatch_latency, insert_job};
use super::sim::SimFarm;
use super::stats::difference;

/// The stored farm of the query scenario: one big job and many small ones.
const BIG_JOB_TASKS: usize = 50_000;
const SMALL_JOBS: usize = 500;
const SMALL_JOB_TASKS: usize = 100;
/// Tasks of the big job canceled one by one, so a status filter has something to find.
const CANCELED_TASKS: usize = 100;

/// One REST call; its JSON answer (Null when not JSON), or an error naming the status.
pub(super) async fn call(
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
pub(super) async fn stored_tasks(http: &reqwest::Client, url: &str) -> anyhow::Result<i64> {
    Ok(task_counts(http, url).await?.values().sum())
}

/// Task status → count, per the farm summary.
pub(super) async fn task_counts(
    http: &reqwest::Client,
    url: &str,
) -> anyhow::Result<std::collections::BTreeMap<String, i64>> {
    let summary = call(
        http,
        reqwest::Method::GET,
        &format!("{url}/api/v3/farm/summary"),
        None,
    )
    .await?;
    Ok(summary["tasks"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(status, count)| Some((status.clone(), count.as_i64()?)))
        .collect())
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

/// Opens `clients` event streams that read (and drop) every event until `stop`, adding
/// the bytes they read to `received`. They run on their own thread and runtime, as
/// clients elsewhere would: only the manager's side of each stream shares the manager's
/// runtime. Returns that thread, which ends once every stream is closed.
fn idle_clients(
    url: &str,
    clients: usize,
    stop: &CancellationToken,
    received: &Arc<AtomicU64>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the SSE clients' runtime")?;
    let (url, stop, received) = (url.to_string(), stop.clone(), Arc::clone(received));
    let thread = std::thread::Builder::new().name(CLIENT_THREAD.into());
    thread
        .spawn(move || {
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
                    let (stop, received) = (stop.clone(), Arc::clone(&received));
                    readers.spawn(async move {
                        let mut body = response.bytes_stream();
                        loop {
                            tokio::select! {
                                _ = stop.cancelled() => return,
                                chunk = body.next() => match chunk {
                                    Some(Ok(bytes)) => {
                                        received.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                                    }
                                    _ => return,
                                },
                            }
                        }
                    });
                }
                while readers.join_next().await.is_some() {}
            });
        })
        .context("starting the SSE clients' thread")
}

/// The name of the SSE clients' thread, so their CPU time can be told apart.
const CLIENT_THREAD: &str = "sse-clients";

/// CPU time and wall time of one condition of the SSE scenario, summed over its rounds.
#[derive(Default)]
struct CpuUse {
    clients: Duration,
    rest: Duration,
    wall: Duration,
}

impl CpuUse {
    /// Runs `phase`, adding the CPU time it took to this sum.
    async fn measure<T>(&mut self, phase: impl std::future::Future<Output = T>) -> T {
        let (clients, rest) = cpu::split_by_thread_name(CLIENT_THREAD);
        let start = Instant::now();
        let result = phase.await;
        self.wall += start.elapsed();
        let (clients_after, rest_after) = cpu::split_by_thread_name(CLIENT_THREAD);
        self.clients += clients_after.saturating_sub(clients);
        self.rest += rest_after.saturating_sub(rest);
        result
    }

    /// Percent of one core: the clients' thread and the rest of the process.
    fn percent(&self) -> Value {
        let of_wall = |cpu: Duration| {
            let percent = 100.0 * cpu.as_secs_f64() / self.wall.as_secs_f64().max(1e-9);
            (percent * 10.0).round() / 10.0
        };
        json!({ "clients": of_wall(self.clients), "manager_and_workers": of_wall(self.rest) })
    }
}

/// Polls `done` every 10 ms until it holds or `limit` passes.
async fn wait_until(what: &str, limit: Duration, done: impl Fn() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() > deadline {
            bail!("gave up waiting: {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// Rounds of the SSE scenario. Each round measures without, then with the clients, so a
/// drift of the machine (other load, the database growing) touches both alike.
const SSE_ROUNDS: usize = 10;

/// Dispatch latency without, then with `clients` idle SSE clients connected, in
/// alternating rounds of `samples` each.
pub async fn sse_dispatch(
    state: &AppState,
    farm: &mut SimFarm,
    url: &str,
    clients: usize,
    samples: usize,
) -> anyhow::Result<Value> {
    let mut without = Vec::with_capacity(SSE_ROUNDS);
    let mut with = Vec::with_capacity(SSE_ROUNDS);
    let received = Arc::new(AtomicU64::new(0));
    let (mut cpu_without, mut cpu_with) = (CpuUse::default(), CpuUse::default());
    for _ in 0..SSE_ROUNDS {
        without.push(
            cpu_without
                .measure(dispatch_latency(state, farm, samples))
                .await?,
        );
        let stop = CancellationToken::new();
        let readers = idle_clients(url, clients, &stop, &received)?;
        // Every stream is subscribed once its first bytes came back; the bus counts them.
        wait_until(
            "every event stream subscribed",
            Duration::from_secs(30),
            || state.events.subscriber_count() >= clients,
        )
        .await?;
        with.push(
            cpu_with
                .measure(dispatch_latency(state, farm, samples))
                .await?,
        );
        stop.cancel();
        tokio::task::spawn_blocking(move || readers.join())
            .await
            .context("joining the SSE clients")?
            .map_err(|_| anyhow::anyhow!("an SSE client panicked"))?;
        wait_until("every event stream closed", Duration::from_secs(30), || {
            state.events.subscriber_count() == 0
        })
        .await?;
    }
    Ok(json!({
        "sse_clients": clients,
        "rounds": SSE_ROUNDS,
        "bytes_read_per_client": received.load(Ordering::Relaxed) / clients.max(1) as u64,
        "difference": difference(&without, &with),
        "cpu_percent_of_one_core": {
            "without_clients": cpu_without.percent(),
            "with_clients": cpu_with.percent(),
        },
        "without_clients": percentiles(without.concat()),
        "with_clients": percentiles(with.concat()),
    }))
}
