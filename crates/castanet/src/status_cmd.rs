//! `castanet status`: the farm's one-word status, and whether the manager asked is the
//! active one (managers sharing a PostgreSQL database) and on which database engine.
use std::process::ExitCode;

use serde_json::Value;

use crate::api_client::ApiClient;

pub async fn status(manager: &str) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(manager);
    let farm = client.get_json("/api/v3/status").await?;
    let role = client.get_json("/api/v3/manager").await?;
    let text = |value: &Value, key: &str| {
        value
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string()
    };
    println!("farm:     {}", text(&farm, "status"));
    println!("database: {}", text(&role, "database"));
    match (
        text(&role, "role").as_str(),
        role.get("active_manager").and_then(Value::as_str),
    ) {
        ("standby", Some(active)) => println!(
            "manager:  standby (reads only; changes are refused): the active manager is {active}"
        ),
        ("standby", None) => println!("manager:  standby (reads only; changes are refused)"),
        (role, _) => println!("manager:  {role}"),
    }
    Ok(ExitCode::SUCCESS)
}
