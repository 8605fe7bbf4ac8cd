//! `castanet manager token create|list|revoke`: REST API tokens, written straight into the
//! manager's database (the running manager sees them on the next request). A new token is
//! printed once; only its hash is stored. Each change is written to the audit log.
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use castanet_manager::ManagerConfig;
use castanet_manager::store::{ApiRole, NewAuditEntry, Store, hash_api_token, new_api_token};
use clap::Subcommand;

use crate::output::{Align, emit, table};

#[derive(Subcommand)]
pub enum TokenAction {
    /// Create a token and print it (it cannot be shown again).
    Create {
        /// A name saying whose or what the token is ("render-wrangler", "ci").
        #[arg(long)]
        name: String,
        /// viewer (read), submitter (also submit and act on jobs) or admin (everything).
        #[arg(long, value_parser = parse_role)]
        role: ApiRole,
    },
    /// List tokens (names, roles, dates; never the tokens themselves).
    List,
    /// Revoke a token by id or name; it stops working at once.
    Revoke {
        /// The token's id or name.
        token: String,
    },
}

fn parse_role(text: &str) -> Result<ApiRole, String> {
    text.parse()
}

async fn open_store(config_path: &Path) -> anyhow::Result<Store> {
    if !config_path.exists() {
        anyhow::bail!(
            "no manager config at {}; pass --config",
            config_path.display()
        );
    }
    let (config, _) = ManagerConfig::load_or_create(config_path)?;
    let database = config.database_location();
    Store::open(&database)
        .await
        .with_context(|| format!("opening the database {database}"))
}

async fn audit(store: &Store, what: &str) {
    let entry = NewAuditEntry {
        actor: "cli",
        role: None,
        remote: None,
        method: "CLI",
        path: what,
        status: 200,
    };
    if let Err(e) = store.insert_audit_entry(&entry).await {
        tracing::warn!("cannot write the audit log: {e}");
    }
}

pub async fn run(config_path: &Path, action: TokenAction) -> anyhow::Result<ExitCode> {
    let store = open_store(config_path).await?;
    let result = act(&store, action).await;
    store.close().await;
    result
}

async fn act(store: &Store, action: TokenAction) -> anyhow::Result<ExitCode> {
    match action {
        TokenAction::Create { name, role } => {
            let name = name.trim();
            if name.is_empty() {
                anyhow::bail!("--name must not be empty");
            }
            let token = new_api_token();
            let row = store
                .insert_api_token(name, role, &hash_api_token(&token))
                .await?;
            audit(store, &format!("token create {name} ({role})")).await;
            eprintln!(
                "created {role} token \"{}\" (id {}); it is shown only now:",
                row.name, row.id
            );
            println!("{token}");
        }
        TokenAction::List => {
            let tokens = store.list_api_tokens().await?;
            if tokens.is_empty() {
                println!("no API tokens");
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = tokens
                .into_iter()
                .map(|token| {
                    let state = token
                        .revoked_at
                        .map_or_else(|| "live".to_string(), |at| format!("revoked {at}"));
                    vec![
                        token.id,
                        token.name,
                        token.role.to_string(),
                        token.created_at,
                        state,
                    ]
                })
                .collect();
            let headers = [
                ("ID", Align::Left),
                ("NAME", Align::Left),
                ("ROLE", Align::Left),
                ("CREATED", Align::Left),
                ("STATE", Align::Left),
            ];
            emit(&table(&headers, &rows))?;
        }
        TokenAction::Revoke { token } => {
            let row = store.revoke_api_token(&token).await?;
            audit(store, &format!("token revoke {}", row.name)).await;
            println!("revoked token \"{}\" (id {})", row.name, row.id);
        }
    }
    Ok(ExitCode::SUCCESS)
}
