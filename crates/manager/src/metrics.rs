//! In-memory measurements for `/metrics` that the database cannot answer: how long
//! dispatching takes and how long tasks run, as Prometheus histograms. One per manager
//! (held by its `Store`), so managers in one process never mix their numbers.
//!
//! Recording is a mutex-guarded add; the dispatch loop and task updates call it.
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Dispatch rounds take around a millisecond; the goal is ≤ 10 ms.
const DISPATCH_BOUNDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Tasks run from a fraction of a second (tests, scripts) to hours (renders).
const DURATION_BOUNDS: &[f64] = &[
    0.1, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0,
];
/// Start times of tasks whose end is never reported (deleted with their job while
/// running) must not pile up: past this many, entries older than a day are dropped.
const MAX_TRACKED_STARTS: usize = 100_000;
const STALE_START: Duration = Duration::from_secs(24 * 3600);

/// A cumulative histogram with fixed bucket bounds (seconds).
#[derive(Clone, Debug)]
struct Histogram {
    bounds: &'static [f64],
    /// Observations ≤ each bound (not cumulative here; summed when rendered).
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, seconds: f64) {
        if let Some(i) = self.bounds.iter().position(|b| seconds <= *b) {
            self.counts[i] += 1;
        }
        self.sum += seconds;
        self.count += 1;
    }

    /// Writes the `_bucket`, `_sum` and `_count` lines; `labels` is `k="v",…` or empty.
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count;
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = |l: &str| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{{{l}}}")
            }
        };
        let _ = writeln!(out, "{name}_sum{} {}", braces(labels), self.sum);
        let _ = writeln!(out, "{name}_count{} {}", braces(labels), self.count);
    }
}

/// A label value with `\`, `"` and newlines escaped as the text format requires.
pub fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Inner {
    dispatch: Histogram,
    /// (task type, outcome) → durations.
    durations: BTreeMap<(String, &'static str), Histogram>,
    /// Task id → when it was handed to its worker.
    started: HashMap<String, Instant>,
}

/// The manager's histograms. Cheap to share behind an `Arc`.
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                dispatch: Histogram::new(DISPATCH_BOUNDS),
                durations: BTreeMap::new(),
                started: HashMap::new(),
            }),
        }
    }
}

impl Metrics {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves only counters behind: keep using them.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A task was handed to a worker `latency` after its dispatch round began.
    pub fn task_dispatched(&self, task_id: &str, latency: Duration) {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.dispatch.observe(latency.as_secs_f64());
        if inner.started.len() >= MAX_TRACKED_STARTS {
            inner
                .started
                .retain(|_, at| now.duration_since(*at) < STALE_START);
        }
        inner.started.insert(task_id.to_string(), now);
    }

    /// A worker reported a task finished; its run time since dispatch is recorded under
    /// its type and outcome. Tasks dispatched before a manager restart are not timed.
    pub fn task_finished(&self, task_id: &str, task_type: &str, completed: bool) {
        let mut inner = self.lock();
        let Some(started) = inner.started.remove(task_id) else {
            return;
        };
        let outcome = if completed { "completed" } else { "failed" };
        inner
            .durations
            .entry((task_type.to_string(), outcome))
            .or_insert_with(|| Histogram::new(DURATION_BOUNDS))
            .observe(started.elapsed().as_secs_f64());
    }

    /// Appends both histograms in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let inner = self.lock();
        let name = "castanet_dispatch_latency_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time from the start of a dispatch round to a task being handed to its worker.\n\
             # TYPE {name} histogram"
        );
        inner.dispatch.render(out, name, "");
        let name = "castanet_task_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Run time of finished tasks, from dispatch to the worker's final update.\n\
             # TYPE {name} histogram"
        );
        for ((task_type, outcome), histogram) in &inner.durations {
            let labels = format!(
                "task_type=\"{}\",outcome=\"{outcome}\"",
                escape_label(task_type)
            );
            histogram.render(out, name, &labels);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_labelled_per_task_type() {
        let metrics = Metrics::default();
        metrics.task_dispatched("a", Duration::from_micros(700));
        metrics.task_dispatched("b", Duration::from_millis(30));
        metrics.task_finished("a", "blender \"render\"", true);
        metrics.task_finished("b", "misc", false);
        metrics.task_finished("never-dispatched", "misc", true);
        let mut out = String::new();
        metrics.render(&mut out);
        assert!(out.contains("castanet_dispatch_latency_seconds_bucket{le=\"0.0005\"} 0\n"));
        assert!(out.contains("castanet_dispatch_latency_seconds_bucket{le=\"0.001\"} 1\n"));
        assert!(out.contains("castanet_dispatch_latency_seconds_bucket{le=\"0.05\"} 2\n"));
        assert!(out.contains("castanet_dispatch_latency_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(out.contains("castanet_dispatch_latency_seconds_count 2\n"));
        assert!(out.contains(
            "castanet_task_duration_seconds_count{task_type=\"blender \\\"render\\\"\",outcome=\"completed\"} 1\n"
        ));
        assert!(out.contains(
            "castanet_task_duration_seconds_count{task_type=\"misc\",outcome=\"failed\"} 1\n"
        ));
        assert!(!out.contains("outcome=\"completed\"} 2"));
    }
}
