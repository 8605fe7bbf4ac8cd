//! `castanet manager`: load (or create) the config, serve until Ctrl-C / SIGTERM;
//! `castanet manager backup FILE`: an online copy of the database;
//! `castanet manager migrate-db --to URL`: the farm copied into another database.
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use castanet_manager::ManagerConfig;
use clap::{Args, Subcommand};

#[derive(Args)]
pub struct ManagerArgs {
    /// Config file; written with defaults and a fresh registration secret if missing.
    #[arg(long, default_value_os_t = super::default_manager_config())]
    config: PathBuf,
    /// Listen address, overriding the config (e.g. 127.0.0.1:0 for any free port).
    #[arg(long)]
    listen: Option<String>,
    #[command(subcommand)]
    action: Option<ManagerAction>,
}

#[derive(Subcommand)]
enum ManagerAction {
    /// Copy the database to FILE, consistently, while the manager runs.
    Backup {
        /// The new file to write (must not exist).
        file: PathBuf,
    },
    /// Copy the whole farm (jobs, tasks, workers, tags, tokens, audit log, …) into a new, empty
    /// database, e.g. from SQLite to PostgreSQL; counts are checked before it commits. Stop the
    /// manager first: what it writes meanwhile is not copied.
    MigrateDb {
        /// The database to copy: `sqlite:FILE` (or a path) or `postgres://…`; default: the
        /// config's.
        #[arg(long)]
        from: Option<String>,
        /// The new, empty database: `postgres://user:password@host/db` or `sqlite:FILE`.
        #[arg(long)]
        to: String,
    },
    /// Create, list or revoke REST API tokens.
    Token {
        #[command(subcommand)]
        action: super::token_cmd::TokenAction,
    },
    /// Show or rotate the registration secret new workers need.
    Secret {
        #[command(subcommand)]
        action: super::secret_cmd::SecretAction,
    },
    /// Print the SHA-256 fingerprint of the TLS certificate, for workers and the CLI to pin.
    Fingerprint,
}

pub async fn run(args: ManagerArgs) -> anyhow::Result<ExitCode> {
    let args = match args.action {
        Some(ManagerAction::Backup { file }) => return backup(&args.config, &file).await,
        Some(ManagerAction::MigrateDb { from, to }) => {
            return super::migrate_db_cmd::run(&args.config, from.as_deref(), &to).await;
        }
        Some(ManagerAction::Token { action }) => {
            return super::token_cmd::run(&args.config, action).await;
        }
        Some(ManagerAction::Secret { action }) => {
            return super::secret_cmd::run(&args.config, action).await;
        }
        Some(ManagerAction::Fingerprint) => return fingerprint(&args.config),
        None => args,
    };
    let (mut config, created) = ManagerConfig::load_or_create(&args.config)?;
    if created {
        tracing::info!(
            "wrote a default config to {}; workers register with secret {}",
            args.config.display(),
            config.registration_secret
        );
    }
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    make_scripts_dir(&config.scripts_path());
    let mut stop_signals = super::signals::StopSignals::install();
    let manager = castanet_manager::start(config)
        .await
        .context("cannot start the manager")?;
    // On stdout, so scripts and tests can pick up the port when listening on port 0.
    let scheme = if manager.tls_fingerprint.is_some() {
        "https"
    } else {
        "http"
    };
    println!("castanet manager listening on {scheme}://{}", manager.addr);
    if let Some(fingerprint) = &manager.tls_fingerprint {
        println!("TLS certificate SHA-256 fingerprint: {fingerprint}");
    }
    tokio::select! {
        () = stop_signals.requested() => tracing::info!("stopping the manager"),
        // It stops by itself when another manager took over its database.
        () = manager.stopping() => {}
    }
    manager.shutdown().await?;
    Ok(ExitCode::SUCCESS)
}

/// Creates the custom job-type folder the config names, so there is an obvious place to put
/// scripts. A folder that cannot be made is only a warning: built-in job types still work.
fn make_scripts_dir(dir: &std::path::Path) {
    if dir.exists() {
        return;
    }
    let made = std::fs::create_dir_all(dir).and_then(|()| {
        std::fs::write(
            dir.join("README.txt"),
            "Custom job types: put Flamenco-style job-type scripts (*.js) here. A script named \
             like a built-in (simple_blender_render.js, ...) replaces it; edits apply \
             without a restart.\n",
        )
    });
    match made {
        Ok(()) => {
            tracing::info!(dir = %dir.display(), "created the folder for custom job-type scripts")
        }
        Err(e) => {
            tracing::warn!(dir = %dir.display(), "cannot create the folder for custom job-type scripts: {e}")
        }
    }
}

/// Prints the fingerprint of the certificate the config serves (generated on first start).
fn fingerprint(config_path: &std::path::Path) -> anyhow::Result<ExitCode> {
    if !config_path.exists() {
        anyhow::bail!(
            "no manager config at {}; pass --config",
            config_path.display()
        );
    }
    let (config, _) = ManagerConfig::load_or_create(config_path)?;
    if !config.tls.enabled {
        anyhow::bail!(
            "TLS is not enabled in {} (set `enabled = true` in its [tls] table)",
            config_path.display()
        );
    }
    let fingerprint = castanet_manager::tls::configured_fingerprint(&config.tls, &config.base_dir)
        .context("the manager creates its certificate on first start with TLS enabled")?;
    println!("{fingerprint}");
    Ok(ExitCode::SUCCESS)
}

async fn backup(config_path: &std::path::Path, file: &std::path::Path) -> anyhow::Result<ExitCode> {
    if !config_path.exists() {
        anyhow::bail!(
            "no manager config at {}; pass --config",
            config_path.display()
        );
    }
    let (config, _) = ManagerConfig::load_or_create(config_path)?;
    let location = config.database_location();
    let Some(database) = location.sqlite_file() else {
        anyhow::bail!(
            "`castanet manager backup` copies an SQLite database; {location} is on a PostgreSQL \
             server: back it up with pg_dump (or the server's own backups)"
        );
    };
    castanet_manager::store::backup(database, file)
        .await
        .with_context(|| format!("backing up {}", database.display()))?;
    println!("backed up {} to {}", database.display(), file.display());
    Ok(ExitCode::SUCCESS)
}
