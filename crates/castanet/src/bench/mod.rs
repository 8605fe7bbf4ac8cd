//! `castanet bench`: starts a manager in-process on a temporary SQLite file, connects N
//! simulated workers over real gRPC on loopback, runs the selected scenarios and prints
//! a table and JSON. The real-path scenarios start a `castanet manager` process and real
//! `castanet worker` processes instead (`real_scenarios.rs`). See docs/benchmarks.md for the numbers and how to reproduce them.
mod api_scenarios;
mod cpu;
mod eta_scenario;
mod processes;
mod real_scenarios;
mod scenarios;
mod sim;
mod soak_failover;
mod soak_scenario;
mod stats;
mod transfer_scenario;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Task runnable → worker receives it (p50/p99).
    Dispatch,
    /// Gap between one worker's consecutive tasks (completion sent → next task received).
    Gap,
    /// Tasks/s over the whole farm.
    Throughput,
    /// Cancel request → the worker running the task is told to abort.
    Cancel,
    /// Compile and store a simple-blender-render job of `--frames` frames (one per task).
    Compile,
    /// Dispatch latency without and with `--sse-clients` idle event-stream clients.
    Sse,
    /// Pages of 100 from the jobs query and a 50,000-task job, 100,000 tasks stored.
    JobsQuery,
    /// A manager process and `--real-workers` real worker processes: submit → first task
    /// started, and tasks/s of a `--real-tasks` job of `exec /bin/true` tasks.
    RealWorkers,
    /// `POST /api/v3/jobs` of a `--frames` frame simple-blender-render job to a manager process.
    SubmitHttp,
    /// A worker without shared storage: download and upload speed of a `--transfer-mb` file
    /// (hash-verified), and a job whose input comes from the worker's cache.
    Transfers,
    /// The farm at scale: `--soak-workers` simulated workers, `--soak-jobs` jobs (1,000,000
    /// tasks by default) stored in a manager process; throughput, dispatch, page times, the
    /// manager's memory and a restart with every worker reattaching.
    Soak,
    /// Accuracy of completion estimates: `--eta-jobs` queued jobs of `--eta-tasks` tasks whose
    /// times vary 10×, on `--eta-workers` simulated workers of their own manager.
    Eta,
}

impl Scenario {
    /// Whether the scenario runs against the in-process manager and simulated workers
    /// (the others start real processes of their own).
    fn in_process(self) -> bool {
        !matches!(
            self,
            Scenario::RealWorkers
                | Scenario::SubmitHttp
                | Scenario::Eta
                | Scenario::Transfers
                | Scenario::Soak
        )
    }
}

#[derive(Args)]
pub struct BenchArgs {
    /// Scenarios to run (repeatable); all when none is given.
    #[arg(long = "scenario", value_enum)]
    scenarios: Vec<Scenario>,
    /// Simulated workers (one slot each).
    #[arg(long, default_value_t = 500)]
    workers: usize,
    /// No-op tasks in the throughput job.
    #[arg(long, default_value_t = 20_000)]
    tasks: usize,
    /// Samples for the latency scenarios.
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// Frames in the compile scenario.
    #[arg(long, default_value_t = 100_000)]
    frames: u64,
    /// Idle event-stream clients in the SSE scenario.
    #[arg(long, default_value_t = 200)]
    sse_clients: usize,
    /// Real worker processes in the real-workers scenario.
    #[arg(long, default_value_t = 4)]
    real_workers: usize,
    /// Slots of each real worker.
    #[arg(long, default_value_t = 4)]
    real_slots: u32,
    /// `exec /bin/true` tasks in the real-workers job.
    #[arg(long, default_value_t = 2_000)]
    real_tasks: usize,
    /// Simulated workers in the ETA scenario.
    #[arg(long, default_value_t = 8)]
    eta_workers: usize,
    /// Jobs queued in the ETA scenario.
    #[arg(long, default_value_t = 3)]
    eta_jobs: usize,
    /// Tasks per job in the ETA scenario.
    #[arg(long, default_value_t = 200)]
    eta_tasks: usize,
    /// Size of the file in the transfers scenario, in MB.
    #[arg(long, default_value_t = 256)]
    transfer_mb: u64,
    /// Simulated workers in the soak, each on its own gRPC connection.
    #[arg(long, default_value_t = 1_000)]
    soak_workers: usize,
    /// Jobs stored in the soak (one of them has `--soak-big-tasks` tasks): 1,000,000 tasks
    /// by default.
    #[arg(long, default_value_t = 1_001)]
    soak_jobs: usize,
    /// Tasks of each other soak job.
    #[arg(long, default_value_t = 950)]
    soak_tasks: usize,
    /// Tasks of the soak's big job, whose task page is timed.
    #[arg(long, default_value_t = 50_000)]
    soak_big_tasks: usize,
    /// How long the soak's farm runs before the restart, in seconds.
    #[arg(long, default_value_t = 60)]
    soak_seconds: u64,
    /// The soak manager's database: an SQLite file in its temporary folder (default), or an
    /// empty PostgreSQL database (`postgres://user:password@host/db`).
    #[arg(long)]
    soak_database: Option<String>,
    /// Also write the JSON result to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// (p50, p99, max) in milliseconds.
fn percentiles(mut samples: Vec<Duration>) -> Value {
    if samples.is_empty() {
        return json!(null);
    }
    samples.sort();
    let at = |q: f64| samples[stats::quantile_index(samples.len(), q)];
    json!({
        "samples": samples.len(),
        "p50_ms": millis(at(0.50)),
        "p99_ms": millis(at(0.99)),
        "max_ms": millis(at(1.0)),
    })
}

pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let scenarios = if args.scenarios.is_empty() {
        vec![
            Scenario::Dispatch,
            Scenario::Gap,
            Scenario::Throughput,
            Scenario::Cancel,
            Scenario::Compile,
            Scenario::Sse,
            Scenario::JobsQuery,
            Scenario::RealWorkers,
            Scenario::SubmitHttp,
            Scenario::Eta,
            Scenario::Transfers,
        ]
    } else {
        args.scenarios.clone()
    };
    let mut result = serde_json::Map::new();
    let (in_process, real): (Vec<Scenario>, Vec<Scenario>) =
        scenarios.into_iter().partition(|s| s.in_process());
    if !in_process.is_empty() {
        run_in_process(&args, in_process, &mut result).await?;
    }
    for scenario in real {
        eprintln!("running {scenario:?} …");
        match scenario {
            Scenario::RealWorkers => {
                let shape = real_scenarios::RealFarmShape {
                    workers: args.real_workers,
                    slots: args.real_slots,
                    tasks: args.real_tasks,
                    samples: args.samples,
                };
                let real = real_scenarios::real_workers(&shape).await?;
                result.insert("real_workers".into(), real);
            }
            Scenario::SubmitHttp => {
                let submit = real_scenarios::submit_http(args.frames).await?;
                result.insert("submit_http".into(), submit);
            }
            Scenario::Eta => {
                let eta =
                    eta_scenario::accuracy(args.eta_workers, args.eta_jobs, args.eta_tasks).await?;
                result.insert("eta_accuracy".into(), eta);
            }
            Scenario::Soak => {
                let shape = soak_scenario::SoakShape {
                    workers: args.soak_workers,
                    jobs: args.soak_jobs,
                    tasks_per_job: args.soak_tasks,
                    big_job_tasks: args.soak_big_tasks,
                    seconds: args.soak_seconds,
                    samples: args.samples,
                    database: args.soak_database.clone(),
                };
                result.insert("soak".into(), soak_scenario::soak(&shape).await?);
            }
            Scenario::Transfers => {
                let moved = transfer_scenario::transfers(args.transfer_mb).await?;
                result.insert("transfers".into(), moved);
            }
            _ => {}
        }
    }
    let result = Value::Object(result);
    print_table(&result);
    let text = serde_json::to_string_pretty(&result)?;
    println!("{text}");
    if let Some(path) = &args.json {
        std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A manager started in-process on a temporary directory, listening on a free loopback port.
pub(crate) struct BenchManager {
    /// Removed when dropped, after the manager.
    pub dir: tempfile::TempDir,
    pub config: castanet_manager::ManagerConfig,
    pub manager: castanet_manager::RunningManager,
    pub url: String,
}

impl BenchManager {
    pub async fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("creating a temporary directory")?;
        let mut config = castanet_manager::ManagerConfig::new_default(dir.path());
        config.listen = "127.0.0.1:0".into();
        let manager = castanet_manager::start(config.clone())
            .await
            .context("starting the manager")?;
        let url = format!("http://{}", manager.addr);
        Ok(Self {
            dir,
            config,
            manager,
            url,
        })
    }
}

/// The scenarios of the in-process manager with simulated workers.
async fn run_in_process(
    args: &BenchArgs,
    scenarios: Vec<Scenario>,
    result: &mut serde_json::Map<String, Value>,
) -> anyhow::Result<()> {
    let BenchManager {
        dir: _dir,
        config,
        manager,
        url,
    } = BenchManager::start().await?;
    let state = manager.state.clone();
    eprintln!("manager on {url}, database {}", config.database_location());

    // Latency scenarios run against one worker; the rest of the farm joins for the
    // throughput scenario (with 500 workers a worker's turn comes only every 500 tasks).
    let mut farm = sim::new_farm();
    sim::grow(&mut farm, &url, &config.registration_secret, 1, 1).await?;
    result.insert("workers".into(), json!(args.workers));
    for scenario in scenarios {
        eprintln!("running {scenario:?} …");
        match scenario {
            Scenario::Dispatch => {
                let samples = scenarios::dispatch_latency(&state, &mut farm, args.samples).await?;
                result.insert("dispatch_latency".into(), percentiles(samples));
            }
            Scenario::Gap => {
                let gaps = scenarios::gap(&state, &mut farm, args.samples).await?;
                result.insert("gap_between_tasks".into(), percentiles(gaps));
            }
            Scenario::Throughput => {
                if farm.size < args.workers {
                    let start = Instant::now();
                    let more = args.workers - farm.size;
                    sim::grow(&mut farm, &url, &config.registration_secret, more, 10).await?;
                    result.insert("connect_farm_ms".into(), json!(millis(start.elapsed())));
                }
                let t = scenarios::throughput(&state, &mut farm, args.tasks).await?;
                result.insert(
                    "throughput".into(),
                    json!({
                        "tasks": t.tasks,
                        "seconds": t.elapsed.as_secs_f64(),
                        "tasks_per_second": (t.tasks as f64 / t.elapsed.as_secs_f64()).round(),
                        "gap_between_tasks_at_full_load": percentiles(t.gaps),
                    }),
                );
            }
            Scenario::Cancel => {
                let samples =
                    scenarios::cancel_latency(&state, &mut farm, &url, args.samples.min(100))
                        .await?;
                result.insert("cancel_to_abort".into(), percentiles(samples));
            }
            Scenario::Compile => {
                let (job_type, tasks, elapsed) =
                    scenarios::compile_and_store(&url, args.frames).await?;
                result.insert(
                    "compile_and_store".into(),
                    json!({ "job_type": job_type, "frames": args.frames, "tasks": tasks,
                            "seconds": elapsed.as_secs_f64() }),
                );
            }
            Scenario::Sse => {
                let sse = api_scenarios::sse_dispatch(
                    &state,
                    &mut farm,
                    &url,
                    args.sse_clients,
                    args.samples,
                )
                .await?;
                result.insert("sse".into(), sse);
            }
            Scenario::JobsQuery => {
                let query = api_scenarios::jobs_query(&state, &url, args.samples.min(100)).await?;
                result.insert("jobs_query".into(), query);
            }
            Scenario::RealWorkers
            | Scenario::SubmitHttp
            | Scenario::Eta
            | Scenario::Transfers
            | Scenario::Soak => {}
        }
    }
    result.insert("rss_mib".into(), json!(scenarios::rss_mib()));
    manager.shutdown().await.ok();
    Ok(())
}

fn print_table(result: &Value) {
    let ms = |v: &Value, key: &str| {
        v.get(key)
            .and_then(Value::as_f64)
            .map(|x| format!("{x:.3} ms"))
    };
    let mut rows: Vec<(String, String)> = Vec::new();
    if let Some(d) = result.get("dispatch_latency") {
        rows.push((
            "dispatch latency p50".into(),
            ms(d, "p50_ms").unwrap_or_default(),
        ));
        rows.push((
            "dispatch latency p99".into(),
            ms(d, "p99_ms").unwrap_or_default(),
        ));
    }
    if let Some(gap) = result.get("gap_between_tasks") {
        rows.push((
            "gap between tasks p50".into(),
            ms(gap, "p50_ms").unwrap_or_default(),
        ));
        rows.push((
            "gap between tasks p99".into(),
            ms(gap, "p99_ms").unwrap_or_default(),
        ));
    }
    if let Some(t) = result.get("throughput") {
        rows.push((
            format!("throughput ({} workers)", result["workers"]),
            format!("{} tasks/s", t["tasks_per_second"]),
        ));
    }
    if let Some(c) = result.get("cancel_to_abort") {
        rows.push((
            "cancel → abort p50".into(),
            ms(c, "p50_ms").unwrap_or_default(),
        ));
        rows.push((
            "cancel → abort p99".into(),
            ms(c, "p99_ms").unwrap_or_default(),
        ));
    }
    if let Some(c) = result.get("compile_and_store") {
        rows.push((
            format!(
                "compile+store {} ({} tasks)",
                c["job_type"].as_str().unwrap_or("?"),
                c["tasks"]
            ),
            format!("{:.2} s", c["seconds"].as_f64().unwrap_or_default()),
        ));
    }
    api_rows(result, &mut rows);
    real_scenarios::rows(result, &mut rows);
    eta_scenario::rows(result, &mut rows);
    transfer_scenario::rows(result, &mut rows);
    soak_scenario::rows(result, &mut rows);
    if let Some(rss) = result.get("rss_mib").and_then(Value::as_f64) {
        rows.push((
            "RSS (manager + sim workers)".into(),
            format!("{rss:.0} MiB"),
        ));
    }
    println!("| measure | value |\n|---|---|");
    for (name, value) in rows {
        println!("| {name} | {value} |");
    }
}

/// "p50 / p99 ms" of a `percentiles` value, for the table.
fn p50_p99(v: &Value) -> String {
    format!(
        "{:.3} / {:.3} ms",
        v["p50_ms"].as_f64().unwrap_or_default(),
        v["p99_ms"].as_f64().unwrap_or_default()
    )
}

/// Table rows of the SSE and jobs-query scenarios.
fn api_rows(result: &Value, rows: &mut Vec<(String, String)>) {
    if let Some(sse) = result.get("sse") {
        rows.push((
            "dispatch p50 / p99, no SSE client".into(),
            p50_p99(&sse["without_clients"]),
        ));
        rows.push((
            format!(
                "dispatch p50 / p99, {} idle SSE clients",
                sse["sse_clients"]
            ),
            p50_p99(&sse["with_clients"]),
        ));
        let difference = &sse["difference"];
        let interval = |key: &str| {
            format!(
                "{:+.3} ms (95% {:+.3} … {:+.3})",
                difference[format!("{key}_ms")].as_f64().unwrap_or_default(),
                difference[format!("{key}_ci95_ms")][0]
                    .as_f64()
                    .unwrap_or_default(),
                difference[format!("{key}_ci95_ms")][1]
                    .as_f64()
                    .unwrap_or_default(),
            )
        };
        rows.push((
            "with − without, p50 / p99".into(),
            format!("{} / {}", interval("p50"), interval("p99")),
        ));
        let cpu = &sse["cpu_percent_of_one_core"];
        rows.push((
            "CPU (% of a core) manager + sim workers, without / with clients; clients' thread"
                .into(),
            format!(
                "{} / {} %; {} %",
                cpu["without_clients"]["manager_and_workers"],
                cpu["with_clients"]["manager_and_workers"],
                cpu["with_clients"]["clients"]
            ),
        ));
        rows.push((
            "slowdown measurable".into(),
            if difference["measurable_slowdown"] == true {
                "yes"
            } else {
                "no"
            }
            .into(),
        ));
    }
    if let Some(query) = result.get("jobs_query") {
        let stored = &query["tasks_stored"];
        for page in query["pages"].as_array().into_iter().flatten() {
            rows.push((
                format!(
                    "{} ({} items; {stored} tasks stored) p50 / p99",
                    page["request"].as_str().unwrap_or("?"),
                    page["items"]
                ),
                p50_p99(page),
            ));
        }
    }
}
