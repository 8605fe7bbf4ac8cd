//! `castanet bench --scenario transfers`: a manager process and one worker process without
//! shared storage on loopback. A `--transfer-mb` file goes to the manager through Shaman;
//! a one-task job copies it (the worker downloads the input, copies it, uploads the copy),
//! then a second job copies the same file from another checkout: its input comes from the
//! worker's cache. Reported: the worker's own download and upload speeds, each job's time,
//! and the bytes the second job downloaded (none).
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::api_scenarios::call;
use super::processes::{BENCH_COPY_JOB_TYPE_NAME, ManagerProcess, WorkerProcess};

const JOB_LIMIT: Duration = Duration::from_secs(900);

struct Farm {
    http: reqwest::Client,
    url: String,
}

impl Farm {
    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        call(
            &self.http,
            reqwest::Method::GET,
            &format!("{}{path}", self.url),
            None,
        )
        .await
    }

    /// Stores `content` through Shaman and checks it out as `<checkout>/input.bin`.
    async fn shaman_checkout(&self, checkout: &str, content: &[u8]) -> anyhow::Result<String> {
        let sha = hex::encode(Sha256::digest(content));
        let size = content.len();
        // As the add-on does: a stored file is not sent again (the manager would answer
        // before reading the body, and the rest of a big body would meet a closed socket).
        let status = self
            .get(&format!("/api/v3/shaman/files/{sha}/{size}"))
            .await?;
        if status["status"] == "stored" {
            return self.checkout(checkout, &sha, size).await;
        }
        let answer = self
            .http
            .post(format!("{}/api/v3/shaman/files/{sha}/{size}", self.url))
            .body(content.to_vec())
            .send()
            .await
            .context("uploading through Shaman")?;
        if !answer.status().is_success() {
            bail!("the Shaman upload answered {}", answer.status());
        }
        self.checkout(checkout, &sha, size).await
    }

    async fn checkout(&self, checkout: &str, sha: &str, size: usize) -> anyhow::Result<String> {
        let request = json!({
            "checkoutPath": checkout,
            "files": [{ "sha": sha, "size": size, "path": "input.bin" }],
        });
        let url = format!("{}/api/v3/shaman/checkout/create", self.url);
        let made = call(&self.http, reqwest::Method::POST, &url, Some(&request)).await?;
        Ok(made["checkoutPath"]
            .as_str()
            .context("no checkout path")?
            .to_owned())
    }

    /// Copies `<checkout>/input.bin` to `{jobs}/bench-out/<name>`; returns the seconds from
    /// the submission to the job completed.
    async fn copy(&self, checkout: &str, name: &str) -> anyhow::Result<f64> {
        let body = json!({
            "name": format!("bench copy {name}"), "type": BENCH_COPY_JOB_TYPE_NAME,
            "priority": 50, "submitter_platform": "linux", "metadata": {},
            "storage": { "shaman_checkout_id": checkout },
            "settings": {
                "src": format!("{{jobs}}/{checkout}/input.bin"),
                "dest": format!("{{jobs}}/bench-out/{name}"),
            },
        });
        let start = Instant::now();
        let url = format!("{}/api/v3/jobs", self.url);
        let job = call(&self.http, reqwest::Method::POST, &url, Some(&body)).await?;
        let id = job["id"].as_str().context("no job id")?.to_owned();
        loop {
            let job = self.get(&format!("/api/v3/jobs/{id}")).await?;
            match job["status"].as_str() {
                Some("completed") => return Ok(start.elapsed().as_secs_f64()),
                Some(status @ ("failed" | "canceled")) => {
                    bail!("the copy job ended {status}: {}", job["activity"])
                }
                _ => {}
            }
            if start.elapsed() > JOB_LIMIT {
                bail!("the copy job did not complete within {JOB_LIMIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The worker's transfer totals (it reports them after each task's files moved).
    async fn totals(&self) -> anyhow::Result<Value> {
        let workers = self.get("/api/v3/worker-mgt/workers").await?;
        let id = workers["workers"][0]["id"].as_str().context("no worker")?;
        let worker = self
            .get(&format!("/api/v3/worker-mgt/workers/{id}"))
            .await?;
        Ok(worker["transfers"].clone())
    }
}

pub async fn transfers(megabytes: u64) -> anyhow::Result<Value> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    for part in ["manager", "worker"] {
        std::fs::create_dir_all(dir.path().join(part))
            .context("creating the farm's directories")?;
    }
    let manager = ManagerProcess::start(&dir.path().join("manager"))?;
    let (records, _ignored) = tokio::sync::mpsc::unbounded_channel();
    let worker = WorkerProcess::start_with_args(
        &manager,
        &dir.path().join("worker"),
        "bench-no-shared",
        1,
        records,
        &["--no-shared-storage"],
    )?;
    let farm = Farm {
        http: reqwest::Client::new(),
        url: manager.url.clone(),
    };
    // Incompressible bytes, so nothing on the way can shrink them.
    let size = usize::try_from(megabytes * 1_000_000).context("size out of range")?;
    let mut content = vec![0u8; size];
    rand::fill(&mut content[..]);
    let first_checkout = farm.shaman_checkout("bench-first", &content).await?;
    let first_seconds = farm.copy(&first_checkout, "first.bin").await?;
    let after_first = farm.totals().await?;
    let second_checkout = farm.shaman_checkout("bench-second", &content).await?;
    let second_seconds = farm.copy(&second_checkout, "second.bin").await?;
    let after_second = farm.totals().await?;
    let stored = dir
        .path()
        .join("manager/castanet-shared/jobs/bench-out/second.bin");
    let stored = std::fs::read(&stored).with_context(|| format!("reading {}", stored.display()))?;
    if stored != content {
        bail!("the copy on the manager differs from the file sent");
    }
    worker.stop()?;
    manager.stop()?;
    let number = |totals: &Value, key: &str| totals[key].as_f64().unwrap_or(0.0);
    let round = |x: f64| (x * 10.0).round() / 10.0;
    let hundredths = |x: f64| (x * 100.0).round() / 100.0;
    Ok(json!({
        "file_mb": megabytes,
        "download_mb_per_second": round(number(&after_first, "download_mb_per_second")),
        "upload_mb_per_second": round(number(&after_first, "upload_mb_per_second")),
        "first_job_seconds": hundredths(first_seconds),
        "cached_job_seconds": hundredths(second_seconds),
        "cached_job_bytes_downloaded": after_second["bytes_downloaded"].as_u64().unwrap_or(0)
            .saturating_sub(after_first["bytes_downloaded"].as_u64().unwrap_or(0)),
        "cache_hits": after_second["cache_hits"],
    }))
}

pub fn rows(result: &Value, rows: &mut Vec<(String, String)>) {
    let Some(t) = result.get("transfers") else {
        return;
    };
    rows.push((
        format!("transfer {} MB: download", t["file_mb"]),
        format!("{} MB/s", t["download_mb_per_second"]),
    ));
    rows.push((
        "transfer: upload (hash-verified)".into(),
        format!("{} MB/s", t["upload_mb_per_second"]),
    ));
    rows.push((
        "transfer: job, input downloaded".into(),
        format!("{} s", t["first_job_seconds"]),
    ));
    rows.push((
        "transfer: job, input from cache".into(),
        format!(
            "{} s ({} bytes downloaded)",
            t["cached_job_seconds"], t["cached_job_bytes_downloaded"]
        ),
    ));
}
