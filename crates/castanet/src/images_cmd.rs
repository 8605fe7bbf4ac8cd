//! `castanet images [JOB…]`: where each job's newest preview image is (one request for
//! all of them), newest first, as URLs to open or fetch.
use std::process::ExitCode;

use anyhow::anyhow;
use clap::Args;
use serde_json::Value;

use crate::api_client::ApiClient;
use crate::output::{Align, emit, table};

#[derive(Args)]
pub struct ImagesArgs {
    /// Jobs to show (ids); without any, the most recently updated images.
    jobs: Vec<String>,
    /// Without job ids: how many images, 1 to 1000.
    #[arg(long, default_value_t = 20, conflicts_with = "jobs")]
    limit: u32,
}

pub async fn run(manager: &str, args: ImagesArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(manager);
    let path = if args.jobs.is_empty() {
        format!("/api/v3/jobs/last-rendered-images?limit={}", args.limit)
    } else {
        format!(
            "/api/v3/jobs/last-rendered-images?ids={}",
            args.jobs.join(",")
        )
    };
    let answer = client.get_json(&path).await?;
    let images = answer
        .get("images")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("GET {path}: the answer has no images list: {answer}"))?;
    let field = |image: &Value, key: &str| {
        image
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let rows: Vec<Vec<String>> = images
        .iter()
        .map(|image| {
            vec![
                field(image, "job_id"),
                field(image, "updated"),
                client.url(&field(image, "image")),
            ]
        })
        .collect();
    if rows.is_empty() {
        eprintln!("no preview images yet");
        return Ok(ExitCode::SUCCESS);
    }
    let headers = [
        ("JOB", Align::Left),
        ("UPDATED", Align::Left),
        ("IMAGE", Align::Left),
    ];
    emit(&table(&headers, &rows))?;
    Ok(ExitCode::SUCCESS)
}
