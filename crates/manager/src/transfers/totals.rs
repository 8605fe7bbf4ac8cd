//! Bytes moved for workers without shared storage: each worker's own running totals (it
//! reports them after every task that moved files) and the manager's counts of what it
//! sent and received. Kept in memory: a worker's totals come back with its next report.
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use castanet_protocol::v1;
use serde::Serialize;
use utoipa::ToSchema;

/// What a worker without shared storage reported about its transfers and its cache.
#[derive(Clone, Debug, Default, PartialEq, Serialize, ToSchema)]
pub struct WorkerTransfers {
    /// Input bytes downloaded from the manager.
    pub bytes_downloaded: u64,
    /// Output bytes uploaded to the manager.
    pub bytes_uploaded: u64,
    /// Input files found in the worker's cache (not downloaded).
    pub cache_hits: u64,
    /// Input files the worker had to download.
    pub cache_misses: u64,
    pub files_uploaded: u64,
    /// Download speed over all downloads, in megabytes (10^6 bytes) per second.
    pub download_mb_per_second: f64,
    /// Upload speed over all uploads, in megabytes per second.
    pub upload_mb_per_second: f64,
    /// What the worker's input cache holds now.
    pub cache_bytes: u64,
    pub cache_limit_bytes: u64,
}

impl WorkerTransfers {
    pub fn from_report(report: &v1::TransferTotals) -> Self {
        let speed = |bytes: u64, seconds: f64| {
            if seconds > 0.0 && seconds.is_finite() {
                bytes as f64 / seconds / 1e6
            } else {
                0.0
            }
        };
        WorkerTransfers {
            bytes_downloaded: report.bytes_downloaded,
            bytes_uploaded: report.bytes_uploaded,
            cache_hits: report.cache_hits,
            cache_misses: report.cache_misses,
            files_uploaded: report.files_uploaded,
            download_mb_per_second: speed(report.bytes_downloaded, report.download_seconds),
            upload_mb_per_second: speed(report.bytes_uploaded, report.upload_seconds),
            cache_bytes: report.cache_bytes,
            cache_limit_bytes: report.cache_limit_bytes,
        }
    }
}

/// The farm's transfer counts for `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct FarmTransfers {
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub files_stored: u64,
    /// Worker id → its last report.
    pub workers: BTreeMap<String, WorkerTransfers>,
}

#[derive(Default)]
pub(super) struct Totals {
    workers: Mutex<BTreeMap<String, WorkerTransfers>>,
    sent: AtomicU64,
    received: AtomicU64,
    stored: AtomicU64,
}

impl Totals {
    fn workers(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, WorkerTransfers>> {
        // Whole entries only: a poisoned map is still consistent.
        self.workers.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn record_worker(&self, worker_id: &str, totals: WorkerTransfers) {
        self.workers().insert(worker_id.to_owned(), totals);
    }

    pub(super) fn worker(&self, worker_id: &str) -> Option<WorkerTransfers> {
        self.workers().get(worker_id).cloned()
    }

    pub(super) fn count_sent(&self, bytes: u64) {
        self.sent.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(super) fn count_received(&self, bytes: u64) {
        self.received.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(super) fn count_stored(&self) {
        self.stored.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn farm(&self) -> FarmTransfers {
        FarmTransfers {
            bytes_sent: self.sent.load(Ordering::Relaxed),
            bytes_received: self.received.load(Ordering::Relaxed),
            files_stored: self.stored.load(Ordering::Relaxed),
            workers: self.workers().clone(),
        }
    }
}

impl FarmTransfers {
    /// The counts in Prometheus text format (`/metrics`).
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        counter(
            "castanet_transfer_sent_bytes_total",
            "Input bytes the manager sent to workers without shared storage.",
            self.bytes_sent,
        );
        counter(
            "castanet_transfer_received_bytes_total",
            "Output bytes the manager received from workers without shared storage.",
            self.bytes_received,
        );
        counter(
            "castanet_transfer_stored_files_total",
            "Output files received whole, verified and stored.",
            self.files_stored,
        );
        type Field = fn(&WorkerTransfers) -> f64;
        let per_worker: [(&str, &str, &str, Field); 7] = [
            (
                "castanet_worker_downloaded_bytes",
                "gauge",
                "Input bytes the worker downloaded (its own count).",
                |t| t.bytes_downloaded as f64,
            ),
            (
                "castanet_worker_uploaded_bytes",
                "gauge",
                "Output bytes the worker uploaded.",
                |t| t.bytes_uploaded as f64,
            ),
            (
                "castanet_worker_cache_hits",
                "gauge",
                "Input files found in the worker's cache.",
                |t| t.cache_hits as f64,
            ),
            (
                "castanet_worker_cache_misses",
                "gauge",
                "Input files the worker downloaded.",
                |t| t.cache_misses as f64,
            ),
            (
                "castanet_worker_download_mb_per_second",
                "gauge",
                "The worker's download speed over all downloads (MB/s).",
                |t| t.download_mb_per_second,
            ),
            (
                "castanet_worker_upload_mb_per_second",
                "gauge",
                "The worker's upload speed over all uploads (MB/s).",
                |t| t.upload_mb_per_second,
            ),
            (
                "castanet_worker_cache_bytes",
                "gauge",
                "What the worker's input cache holds.",
                |t| t.cache_bytes as f64,
            ),
        ];
        for (name, kind, help, field) in per_worker {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (worker, totals) in &self.workers {
                let worker = crate::metrics::escape_label(worker);
                let _ = writeln!(out, "{name}{{worker=\"{worker}\"}} {}", field(totals));
            }
        }
    }
}
