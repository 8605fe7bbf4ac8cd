//! `castanet worker`: run a worker until Ctrl-C / SIGTERM (or the manager's offline/restart
//! request), then sign off; the exit code tells a supervisor whether to start it again.
use std::path::PathBuf;
use std::process::ExitCode;

use castanet_worker::{NoSharedStorage, SlotGpus, WorkerConfig};
use clap::Args;
use tokio_util::sync::CancellationToken;

#[derive(Args)]
pub struct WorkerArgs {
    /// The farm's registration secret (needed until the worker has registered once).
    #[arg(long, env = "CASTANET_REGISTRATION_SECRET", hide_env_values = true)]
    registration_secret: Option<String>,
    /// Where the worker keeps its credentials.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Name shown in the dashboard (default: the hostname).
    #[arg(long)]
    name: Option<String>,
    /// How many tasks to run at once.
    #[arg(long, default_value_t = 1)]
    slots: u32,
    /// Without --manager: use the manager of this farm when several answer on the LAN.
    #[arg(long)]
    farm: Option<String>,
    /// Without --manager: how long to look for a manager on the LAN, in seconds.
    #[arg(long, default_value_t = 15)]
    discovery_timeout: u64,
    /// A directory the file commands (create-directory, move-directory, copy-file, delete-file,
    /// delete-directory) may act inside (absolute; repeatable). Without any, they are refused.
    #[arg(long = "storage-root", value_name = "DIR")]
    storage_roots: Vec<PathBuf>,
    /// A program that prints nothing for this many seconds is killed as hung.
    #[arg(long, default_value_t = 600)]
    hung_after_seconds: u64,
    /// On SIGTERM / Ctrl-C, how many seconds running tasks get to finish before they are
    /// aborted and handed back (0: hand them back at once).
    #[arg(long, default_value_t = 0)]
    shutdown_grace_seconds: u64,
    /// On SIGTERM / Ctrl-C, let running tasks finish however long they take.
    #[arg(long)]
    finish_tasks_on_shutdown: bool,
    /// A command running longer than this many seconds is killed and fails as `timeout`
    /// (0: no limit). A command's own `timeout_seconds` parameter takes precedence.
    #[arg(long, default_value_t = 0)]
    command_timeout_seconds: u64,
    /// Task types to accept, comma separated.
    #[arg(long, value_delimiter = ',')]
    task_types: Option<Vec<String>>,
    /// Pin slots to GPUs: "auto" spreads the GPUs found over the slots; or one entry per
    /// slot, comma separated, each a GPU index, indices joined by "+" ("0+1"), or "none"
    /// (no GPU). Slots without an entry see every GPU. Example: --slot-gpus 0,1
    #[arg(long, value_name = "SPEC")]
    slot_gpus: Option<SlotGpus>,
    /// This machine does not see the farm's shared storage: it keeps a local mirror of the
    /// farm's paths, downloads each task's inputs (by content hash, cached) before it runs
    /// and uploads its outputs to the manager after.
    #[arg(long)]
    no_shared_storage: bool,
    /// With --no-shared-storage: the mirror directory (default: <data-dir>/mirror).
    #[arg(long, value_name = "DIR", requires = "no_shared_storage")]
    mirror_dir: Option<PathBuf>,
    /// With --no-shared-storage: the input cache directory (default: <data-dir>/cache).
    #[arg(long, value_name = "DIR", requires = "no_shared_storage")]
    cache_dir: Option<PathBuf>,
    /// With --no-shared-storage: the input cache's size limit in GB; the least recently
    /// used files go first.
    #[arg(long, default_value_t = 50.0, value_name = "GB")]
    cache_size_gb: f64,
    /// Check this machine instead of joining a farm: its directories, free space, Blender and
    /// FFmpeg (a tiny render and encode) and, with --manager, the manager's address. Prints a
    /// report; exits 1 when a check fails.
    #[arg(long)]
    test: bool,
}

pub fn config_from(manager_url: String, args: WorkerArgs) -> WorkerConfig {
    let data_dir = args
        .data_dir
        .unwrap_or_else(castanet_worker::default_data_dir);
    let no_shared_storage = args.no_shared_storage.then(|| NoSharedStorage {
        mirror_dir: args.mirror_dir.unwrap_or_else(|| data_dir.join("mirror")),
        cache_dir: args.cache_dir.unwrap_or_else(|| data_dir.join("cache")),
        cache_limit_bytes: (args.cache_size_gb.max(0.0) * 1e9) as u64,
    });
    let mut config = WorkerConfig::with_defaults(manager_url, data_dir);
    config.no_shared_storage = no_shared_storage;
    config.registration_secret = args.registration_secret;
    if let Some(name) = args.name {
        config.name = name;
    }
    config.slots = args.slots;
    config.storage_roots = args.storage_roots;
    config.hung_after = std::time::Duration::from_secs(args.hung_after_seconds);
    config.shutdown_grace = std::time::Duration::from_secs(args.shutdown_grace_seconds);
    config.finish_tasks_on_shutdown = args.finish_tasks_on_shutdown;
    config.command_time_limit = (args.command_timeout_seconds > 0)
        .then(|| std::time::Duration::from_secs(args.command_timeout_seconds));
    if let Some(types) = args.task_types {
        config.task_types = types;
    }
    if let Some(slot_gpus) = args.slot_gpus {
        config.slot_gpus = slot_gpus;
    }
    config
}

/// `castanet worker --test`: the machine's report on stdout, a progress line on stderr.
async fn test_machine(manager: Option<String>, args: WorkerArgs) -> ExitCode {
    let config = config_from(manager.clone().unwrap_or_default(), args);
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_message("checking this machine (a tiny Blender render and FFmpeg encode)…");
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let report = castanet_worker::run_machine_checks(&config, manager.as_deref()).await;
    spinner.finish_and_clear();
    println!("{report}");
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

pub async fn run(
    manager: Option<String>,
    args: WorkerArgs,
    trust: &super::tls_pin::TrustArgs,
) -> anyhow::Result<ExitCode> {
    if args.test {
        return Ok(test_machine(manager, args).await);
    }
    let manager_url = match manager {
        Some(url) => url,
        None => {
            let timeout = std::time::Duration::from_secs(args.discovery_timeout);
            super::find_manager::find_manager(args.farm.as_deref(), timeout).await?
        }
    };
    let mut config = config_from(manager_url, args);
    config.manager_fingerprint = trust.manager_fingerprint.clone();
    config.manager_ca = trust.manager_ca.clone();
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let mut signals = super::signals::StopSignals::install();
    tokio::spawn(async move {
        signals.requested().await;
        tracing::info!("stopping the worker");
        stop.cancel();
    });
    // A requested restart exits non-zero (75) so the supervisor starts the worker again;
    // a requested offline exits 0 and stays down.
    let exit = castanet_worker::run_to_exit(config, shutdown).await?;
    tracing::info!(?exit, code = exit.exit_code(), "worker stopped");
    Ok(ExitCode::from(exit.exit_code()))
}
