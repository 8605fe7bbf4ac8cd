//! `castanet workers`: the farm's workers, their status, how they reach the farm's files
//! (shared storage or a mirror of their own) and, for those without shared storage, what
//! they moved: bytes each way with the speed, and the input cache's hits and size.
use std::process::ExitCode;

use serde_json::Value;

use crate::api_client::ApiClient;
use crate::output::{Align, emit, table};

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn number(value: &Value, key: &str) -> u64 {
    value.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn speed(value: &Value, key: &str) -> f64 {
    value.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

/// The columns of one worker (its full record, with `transfers` when it reported any).
fn row(worker: &Value) -> Vec<String> {
    let text = |key: &str| {
        worker
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let storage = match worker.get("storage_mirror").and_then(Value::as_str) {
        Some(mirror) => format!("mirror {mirror}"),
        None => "shared".to_owned(),
    };
    let mut columns = vec![text("name"), text("status"), storage];
    match worker.get("transfers").filter(|t| t.is_object()) {
        Some(t) => columns.extend([
            format!(
                "{} ({:.1} MB/s)",
                megabytes(number(t, "bytes_downloaded")),
                speed(t, "download_mb_per_second")
            ),
            format!(
                "{} ({:.1} MB/s)",
                megabytes(number(t, "bytes_uploaded")),
                speed(t, "upload_mb_per_second")
            ),
            format!(
                "{}/{}",
                number(t, "cache_hits"),
                number(t, "cache_hits") + number(t, "cache_misses")
            ),
            format!(
                "{} of {}",
                megabytes(number(t, "cache_bytes")),
                megabytes(number(t, "cache_limit_bytes"))
            ),
        ]),
        None => columns.extend(["—", "—", "—", "—"].map(str::to_owned)),
    }
    columns
}

pub async fn list_workers(manager: &str) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(manager);
    let listed = client.get_json("/api/v3/worker-mgt/workers").await?;
    let summaries = listed
        .get("workers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut rows = Vec::with_capacity(summaries.len());
    for summary in &summaries {
        let Some(id) = summary.get("id").and_then(Value::as_str) else {
            continue;
        };
        let worker = client
            .get_json(&format!("/api/v3/worker-mgt/workers/{id}"))
            .await?;
        rows.push(row(&worker));
    }
    let headers = [
        ("NAME", Align::Left),
        ("STATUS", Align::Left),
        ("STORAGE", Align::Left),
        ("DOWNLOADED", Align::Right),
        ("UPLOADED", Align::Right),
        ("CACHE HITS", Align::Right),
        ("CACHE", Align::Right),
    ];
    emit(&table(&headers, &rows))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_without_shared_storage_shows_its_mirror_and_transfers() {
        let worker = serde_json::json!({
            "name": "node-7", "status": "awake", "storage_mirror": "/var/lib/castanet/mirror",
            "transfers": {
                "bytes_downloaded": 12_500_000, "download_mb_per_second": 95.25,
                "bytes_uploaded": 3_000_000, "upload_mb_per_second": 40.0,
                "cache_hits": 9, "cache_misses": 3,
                "cache_bytes": 20_000_000, "cache_limit_bytes": 50_000_000_000u64,
            },
        });
        assert_eq!(
            row(&worker),
            [
                "node-7",
                "awake",
                "mirror /var/lib/castanet/mirror",
                "12.5 MB (95.2 MB/s)",
                "3.0 MB (40.0 MB/s)",
                "9/12",
                "20.0 MB of 50000.0 MB"
            ]
        );
        let shared = serde_json::json!({"name": "a", "status": "asleep"});
        assert_eq!(row(&shared)[2], "shared");
        assert_eq!(row(&shared)[3], "—");
    }
}
