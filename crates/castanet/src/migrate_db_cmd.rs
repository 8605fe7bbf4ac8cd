//! `castanet manager migrate-db --to postgres://…`: copies the farm the config's database holds
//! (or `--from`) into a new, empty database — every job, task, worker, tag, token, audit entry
//! and the rest — and checks every table's count before committing.
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use castanet_manager::ManagerConfig;
use castanet_manager::store::{DatabaseLocation, Store};
use indicatif::{ProgressBar, ProgressStyle};

pub async fn run(config_path: &Path, from: Option<&str>, to: &str) -> anyhow::Result<ExitCode> {
    let here = std::env::current_dir().context("cannot read the current directory")?;
    let source = match from {
        Some(from) => DatabaseLocation::parse(from, &here),
        None => {
            if !config_path.exists() {
                anyhow::bail!(
                    "no manager config at {}; pass --config or --from",
                    config_path.display()
                );
            }
            ManagerConfig::load_or_create(config_path)?
                .0
                .database_location()
        }
    };
    let destination = DatabaseLocation::parse(to, &here);
    if source == destination {
        anyhow::bail!("--from and --to name the same database ({source})");
    }
    if let Some(file) = source.sqlite_file().filter(|file| !file.exists()) {
        anyhow::bail!("there is no SQLite database at {}", file.display());
    }
    let source_store = Store::open(&source)
        .await
        .with_context(|| format!("opening the database to copy from, {source}"))?;
    let destination_store = Store::open(&destination)
        .await
        .with_context(|| format!("opening the database to copy into, {destination}"))?;
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    let copied = source_store
        .copy_farm_into(&destination_store, |table| {
            bar.set_message(format!("{}: {} rows", table.table, table.rows));
        })
        .await;
    bar.finish_and_clear();
    source_store.close().await;
    destination_store.close().await;
    let copied = copied.with_context(|| format!("copying {source} into {destination}"))?;
    println!("copied {source} into {destination}; every table's count matches:");
    for table in &copied {
        println!("  {:<26} {:>10}", table.table, table.rows);
    }
    println!(
        "Point the manager at it: database = \"{}\" in its config (keep its storage_root: task \
         logs, previews and uploaded files stay there).",
        match &destination {
            DatabaseLocation::Postgres(url) => url.clone(),
            DatabaseLocation::Sqlite(file) => format!("sqlite:{}", file.display()),
        }
    );
    Ok(ExitCode::SUCCESS)
}
