//! The dashboard's copy of the OpenAPI document (`web/src/api/openapi.json`) is the one
//! the manager serves in `open` mode, so the dashboard's generated API types cannot drift
//! from the handlers.
//!
//! Refresh the copy with
//! `CASTANET_UPDATE_API_SNAPSHOT=1 cargo test -p castanet-manager --test openapi_snapshot`,
//! then regenerate the TypeScript with `cd web && npm run api:types`.
//!
//! The document is fetched from a running manager because that is the only public way to
//! build it; `open` mode is the one without per-operation security, the dashboard's view.
mod common;

use std::path::PathBuf;

use castanet_manager::http::AccessMode;
use serde_json::Value;

const REFRESH: &str =
    "CASTANET_UPDATE_API_SNAPSHOT=1 cargo test -p castanet-manager --test openapi_snapshot";

fn snapshot_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web/src/api/openapi.json")
}

#[tokio::test]
async fn the_dashboards_openapi_snapshot_is_the_served_document() {
    let m = common::start_configured(tempfile::tempdir().expect("temp dir"), |config| {
        config.access.mode = AccessMode::Open;
    })
    .await;
    let (status, document) = m.get("/api/v3/openapi.json").await;
    assert_eq!(status, 200, "{document}");
    let path = snapshot_path();

    if std::env::var("CASTANET_UPDATE_API_SNAPSHOT").as_deref() == Ok("1") {
        let mut text = serde_json::to_string_pretty(&document).expect("serialize document");
        text.push('\n');
        std::fs::write(&path, text).expect("write the snapshot");
        return;
    }

    let committed: Value = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null);
    assert!(
        committed == document,
        "{} is missing or differs from the document the manager serves; refresh it with \
         `{REFRESH}`, then run `cd web && npm run api:types`",
        path.display()
    );
}
