//! `castanet worker`: run a worker until Ctrl-C / SIGTERM, then sign off.
use std::path::PathBuf;
use std::process::ExitCode;

use castanet_worker::WorkerConfig;
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
    /// A directory the delete-file/delete-directory commands may delete inside (absolute;
    /// repeatable). Without any, deletes are refused.
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
    /// Task types to accept, comma separated.
    #[arg(long, value_delimiter = ',')]
    task_types: Option<Vec<String>>,
}

pub fn config_from(manager_url: String, args: WorkerArgs) -> WorkerConfig {
    let data_dir = args
        .data_dir
        .unwrap_or_else(castanet_worker::default_data_dir);
    let mut config = WorkerConfig::with_defaults(manager_url, data_dir);
    config.registration_secret = args.registration_secret;
    if let Some(name) = args.name {
        config.name = name;
    }
    config.slots = args.slots;
    config.storage_roots = args.storage_roots;
    config.hung_after = std::time::Duration::from_secs(args.hung_after_seconds);
    config.shutdown_grace = std::time::Duration::from_secs(args.shutdown_grace_seconds);
    config.finish_tasks_on_shutdown = args.finish_tasks_on_shutdown;
    if let Some(types) = args.task_types {
        config.task_types = types;
    }
    config
}

pub async fn run(manager: Option<String>, args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let manager_url = match manager {
        Some(url) => url,
        None => {
            let timeout = std::time::Duration::from_secs(args.discovery_timeout);
            super::find_manager::find_manager(args.farm.as_deref(), timeout).await?
        }
    };
    let config = config_from(manager_url, args);
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        super::signals::stop_requested().await;
        tracing::info!("stopping the worker");
        stop.cancel();
    });
    castanet_worker::run(config, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}
