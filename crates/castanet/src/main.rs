//! `castanet`: the one binary of the Castanet render farm — manager, worker, CLI, demo.
mod addon_settings;
mod api_client;
mod bench;
mod blocklist_cmd;
mod demo;
mod find_manager;
mod images_cmd;
mod job_actions_cmd;
mod jobs_cmd;
mod manager_cmd;
mod migrate_db_cmd;
mod notifications_cmd;
mod openjd_cmd;
mod output;
mod preview_cmd;
mod scheduling_cmd;
mod secret_cmd;
mod signals;
mod status_cmd;
mod submit_placement;
mod tls_pin;
mod token_cmd;
mod worker_cmd;
mod workers_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "castanet",
    version,
    about = "Castanet render farm: manager, worker and command-line client"
)]
struct Cli {
    /// Manager URL ("host:port" or "http://host:port"); CLI verbs default to http://localhost:8080.
    /// A worker takes a comma-separated list of managers sharing one PostgreSQL database
    /// ("a:8080,b:8080") and works with whichever is active.
    #[arg(long, global = true, env = "CASTANET_MANAGER")]
    manager: Option<String>,
    /// API token for a manager whose API needs one (`castanet manager token create`).
    #[arg(long, global = true, env = "CASTANET_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(flatten)]
    trust: tls_pin::TrustArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the manager (writes a default config on first start).
    Manager(manager_cmd::ManagerArgs),
    /// Run a worker that takes tasks from the manager.
    Worker(worker_cmd::WorkerArgs),
    /// Start a manager and two workers in ./castanet-demo and run a sample job.
    Demo(demo::DemoArgs),
    /// Submit a job: `castanet submit echo-sleep-test --set message=hi --wait`, or an Open
    /// Job Description template: `castanet submit --openjd template.yaml --param Frames=1-10`.
    Submit(jobs_cmd::SubmitArgs),
    /// List jobs, newest first, with their estimated completion.
    Jobs,
    /// List the workers: status, storage (shared or their own mirror) and, for workers
    /// without shared storage, the bytes they moved and their cache's hits.
    Workers,
    /// Where jobs' newest preview images are: `castanet images` (the newest ones) or
    /// `castanet images JOB…`.
    Images(images_cmd::ImagesArgs),
    /// What a job's live preview video holds and where it is, or save it with --output.
    PreviewVideo(preview_cmd::PreviewVideoArgs),
    /// List every frame of a job with an image (where each is, which task rendered it).
    Frames {
        /// Job id.
        job: String,
    },
    /// List the farm's resource pools (licences and the like) and the units in use.
    Resources,
    /// The farm's status, the database engine, and whether this manager is the active one
    /// (or a standby sharing its PostgreSQL database).
    Status,
    /// List the tasks of a job.
    Tasks {
        /// Job id.
        job: String,
    },
    /// Print the log of a task.
    Logs {
        /// Task id.
        task: String,
    },
    /// Act on a job: pause, resume, cancel, requeue, delete, priority, depend, approve, reject,
    /// blocklist, unblock.
    Job {
        #[command(subcommand)]
        action: job_actions_cmd::JobAction,
    },
    /// Measure the farm: an in-process manager with simulated workers over gRPC, or real
    /// manager and worker processes (`--scenario real-workers`, `submit-http`).
    Bench(bench::BenchArgs),
    /// Open Job Description templates: `castanet openjd check template.yaml --param k=v`.
    /// (Submit one with `castanet submit --openjd template.yaml`.)
    Openjd {
        #[command(subcommand)]
        command: openjd_cmd::OpenJdCommand,
    },
    /// Notification rules and the delivery log: `castanet notifications list`.
    Notifications {
        #[command(subcommand)]
        command: notifications_cmd::NotificationsCommand,
    },
    /// Explain why a task is not running.
    Why {
        /// Task id.
        task: String,
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CASTANET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only on a terminal: logs redirected to a file or journald stay plain text.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before the runtime's threads exist, so they share the capped arenas.
    if matches!(cli.command, Command::Manager(_) | Command::Demo(_)) {
        castanet_manager::memory::limit_arenas();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> ExitCode {
    init_logging();
    let manager = cli
        .manager
        .clone()
        .unwrap_or_else(|| DEFAULT_MANAGER.to_string());
    if let Err(e) = api_client::configure(cli.token.clone(), &cli.trust) {
        eprintln!("error: {e:#}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Manager(args) => manager_cmd::run(args).await,
        Command::Worker(args) => worker_cmd::run(cli.manager, args, &cli.trust).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Submit(args) => jobs_cmd::submit(&manager, args).await,
        Command::Jobs => jobs_cmd::list_jobs(&manager).await,
        Command::Workers => workers_cmd::list_workers(&manager).await,
        Command::Images(args) => images_cmd::run(&manager, args).await,
        Command::PreviewVideo(args) => preview_cmd::preview_video(&manager, args).await,
        Command::Frames { job } => preview_cmd::frames(&manager, &job).await,
        Command::Resources => scheduling_cmd::resources(&manager).await,
        Command::Status => status_cmd::status(&manager).await,
        Command::Tasks { job } => jobs_cmd::list_tasks(&manager, &job).await,
        Command::Logs { task } => jobs_cmd::print_log(&manager, &task).await,
        Command::Job { action } => job_actions_cmd::run(&manager, action).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Why { task } => job_actions_cmd::why(&manager, &task).await,
        Command::Openjd { command } => openjd_cmd::run(command),
        Command::Notifications { command } => notifications_cmd::run(&manager, command).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The manager CLI verbs talk to when none is given.
const DEFAULT_MANAGER: &str = "http://localhost:8080";

/// Where `castanet manager` looks for its config unless told otherwise.
fn default_manager_config() -> PathBuf {
    PathBuf::from("castanet-manager.toml")
}
