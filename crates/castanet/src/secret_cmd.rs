//! `castanet manager secret show|rotate`: the registration secret new workers need.
//! A rotation is stored in the manager's database (the running manager uses it for the
//! next registration); registered workers keep their own tokens.
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use castanet_manager::ManagerConfig;
use castanet_manager::store::{NewAuditEntry, Store};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum SecretAction {
    /// Print the registration secret in force.
    Show,
    /// Replace the registration secret with a new random one and print it.
    Rotate,
}

pub async fn run(config_path: &Path, action: SecretAction) -> anyhow::Result<ExitCode> {
    if !config_path.exists() {
        anyhow::bail!(
            "no manager config at {}; pass --config",
            config_path.display()
        );
    }
    let (config, _) = ManagerConfig::load_or_create(config_path)?;
    let database = config.database_location();
    let store = Store::open(&database)
        .await
        .with_context(|| format!("opening the database {database}"))?;
    let result = act(&store, &config, action).await;
    store.close().await;
    result
}

async fn act(
    store: &Store,
    config: &ManagerConfig,
    action: SecretAction,
) -> anyhow::Result<ExitCode> {
    match action {
        SecretAction::Show => {
            let current = store
                .registration_secret(&config.registration_secret)
                .await?;
            if let Some(at) = &current.rotated_at {
                eprintln!("rotated {at} (the config file holds the secret it replaced)");
            }
            println!("{}", current.secret);
        }
        SecretAction::Rotate => {
            let new_secret = castanet_manager::config::generate_secret();
            store
                .rotate_registration_secret(&new_secret, &config.registration_secret)
                .await?;
            let entry = NewAuditEntry {
                actor: "cli",
                role: None,
                remote: None,
                method: "CLI",
                path: "secret rotate",
                status: 200,
            };
            if let Err(e) = store.insert_audit_entry(&entry).await {
                tracing::warn!("cannot write the audit log: {e}");
            }
            eprintln!(
                "rotated the registration secret: new workers need the one below; registered workers keep working"
            );
            println!("{new_secret}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
