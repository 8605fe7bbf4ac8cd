//! How good the completion estimates are (`GET /api/v3/eta`): jobs queued one behind the
//! other run on simulated workers whose task times vary 10× — rising across each job's range
//! with noise on top, as frames of a shot that gets heavier. At 25 %, 50 % and 75 % of each
//! job the estimated finish is noted; once the job has finished, the error is known.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::api_scenarios::call;
use super::scenarios::insert_job;
use super::sim;

/// Progress points at which estimates are checked.
const CHECKPOINTS: [f64; 3] = [0.25, 0.5, 0.75];
/// The fastest task; the slowest takes ten times as long.
const SHORTEST_TASK: Duration = Duration::from_millis(40);

/// What the scenario measures: per checkpoint, the median absolute error of the estimated
/// finish in seconds and as a share of the time that was really left.
pub async fn accuracy(workers: usize, jobs: usize, tasks_per_job: usize) -> anyhow::Result<Value> {
    let super::BenchManager {
        dir: _dir,
        config,
        manager,
        url,
    } = super::BenchManager::start().await?;
    let state = manager.state.clone();
    let mut farm = sim::new_farm();
    farm.task_time = Some(Arc::new(move |task| {
        task_time(&task.task_name, tasks_per_job)
    }));
    sim::grow(&mut farm, &url, &config.registration_secret, workers, 10).await?;

    let mut job_ids = Vec::new();
    for _ in 0..jobs {
        job_ids.push(insert_job(&state, tasks_per_job).await?.0);
    }
    state.dispatcher.kick();
    let http = reqwest::Client::new();
    // Job id → (checkpoint index → (when, estimated seconds left, its range)); job id → finish.
    let mut noted: HashMap<String, Vec<Noted>> = HashMap::new();
    let mut finished: HashMap<String, Instant> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    while finished.len() < job_ids.len() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the jobs did not finish in 10 minutes"
        );
        let asked = Instant::now();
        let eta = call(
            &http,
            reqwest::Method::GET,
            &format!("{url}/api/v3/eta"),
            None,
        )
        .await?;
        let listed: HashMap<&str, &Value> = eta["jobs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|job| Some((job["job_id"].as_str()?, job)))
            .collect();
        for id in &job_ids {
            let Some(job) = listed.get(id.as_str()) else {
                finished.entry(id.clone()).or_insert(asked);
                continue;
            };
            let remaining = job["remaining_tasks"].as_u64().unwrap_or(0) as f64;
            let done = 1.0 - remaining / tasks_per_job as f64;
            let points = noted.entry(id.clone()).or_default();
            if let (Some(&checkpoint), Some(left)) = (
                CHECKPOINTS.get(points.len()),
                job["remaining_seconds"].as_f64(),
            ) && done >= checkpoint
            {
                let from_now = |key: &str| seconds_after(&eta["computed_at"], &job[key]);
                points.push(Noted {
                    at: asked,
                    left,
                    range: (from_now("earliest"), from_now("latest")),
                });
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    manager.shutdown().await.ok();
    Ok(report(&job_ids, &noted, &finished, workers, tasks_per_job))
}

/// An estimate noted at a checkpoint: when, the seconds it said were left, and its range.
struct Noted {
    at: Instant,
    left: f64,
    range: (f64, f64),
}

/// Seconds from the RFC 3339 time `from` to `to` (0 when either is missing).
fn seconds_after(from: &Value, to: &Value) -> f64 {
    let parse = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str()?).ok();
    match (parse(from), parse(to)) {
        (Some(from), Some(to)) => (to - from).num_milliseconds() as f64 / 1000.0,
        _ => 0.0,
    }
}

/// The medians per checkpoint, over the jobs, and how often the finish fell in the range.
fn report(
    job_ids: &[String],
    noted: &HashMap<String, Vec<Noted>>,
    finished: &HashMap<String, Instant>,
    workers: usize,
    tasks_per_job: usize,
) -> Value {
    let mut points = Vec::new();
    for (index, checkpoint) in CHECKPOINTS.iter().enumerate() {
        let mut seconds = Vec::new();
        let mut shares = Vec::new();
        let mut within = 0;
        let (mut signed, mut widths) = (Vec::new(), Vec::new());
        for id in job_ids {
            let (Some(point), Some(&end)) =
                (noted.get(id).and_then(|p| p.get(index)), finished.get(id))
            else {
                continue;
            };
            let actual = end.saturating_duration_since(point.at).as_secs_f64();
            // The poll that saw the job gone may come up to one poll late.
            let slack = 0.05;
            if actual >= point.range.0 - slack && actual <= point.range.1 + slack {
                within += 1;
            }
            signed.push(point.left - actual);
            widths.push((point.range.1 - point.range.0) / 2.0);
            let error = (point.left - actual).abs();
            seconds.push(error);
            shares.push(if actual > 0.0 { error / actual } else { 0.0 });
        }
        points.push(json!({
            "progress_percent": (checkpoint * 100.0).round(),
            "jobs": seconds.len(),
            "median_abs_error_seconds": median(&mut seconds),
            "median_abs_error_percent_of_time_left": median(&mut shares) * 100.0,
            "finished_within_range": within,
            // Positive: the estimate said later than it came.
            "median_error_seconds": median(&mut signed),
            "median_range_half_width_seconds": median(&mut widths),
        }));
    }
    json!({
        "workers": workers,
        "jobs": job_ids.len(),
        "tasks_per_job": tasks_per_job,
        "task_seconds": [SHORTEST_TASK.as_secs_f64(), SHORTEST_TASK.as_secs_f64() * 10.0],
        "checkpoints": points,
    })
}

/// Table rows: the median error at each checkpoint.
pub fn rows(result: &Value, rows: &mut Vec<(String, String)>) {
    let Some(points) = result["eta_accuracy"]["checkpoints"].as_array() else {
        return;
    };
    for point in points {
        rows.push((
            format!(
                "ETA error at {}% (median of {} jobs)",
                point["progress_percent"], point["jobs"]
            ),
            format!(
                "{:.2} s ({:.0}% of the time left); {} of {} finished within the range",
                point["median_abs_error_seconds"].as_f64().unwrap_or(0.0),
                point["median_abs_error_percent_of_time_left"]
                    .as_f64()
                    .unwrap_or(0.0),
                point["finished_within_range"],
                point["jobs"]
            ),
        ));
    }
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Task `noop-I` of a job of `tasks` takes 1×–10× the shortest time: rising with I across the
/// range (up to 5×), times a noise factor of up to 2× from a hash of I.
fn task_time(name: &str, tasks: usize) -> Duration {
    let index: u64 = name
        .rsplit('-')
        .next()
        .and_then(|i| i.parse().ok())
        .unwrap_or(0);
    let position = index as f64 / tasks.max(1) as f64;
    let noise = (index.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as f64 / (1u64 << 24) as f64;
    let factor = (1.0 + 4.0 * position) * (1.0 + noise);
    SHORTEST_TASK.mul_f64(factor.min(10.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_times_rise_across_the_range_within_ten_times_the_shortest() {
        let times: Vec<Duration> = (0..100)
            .map(|i| task_time(&format!("noop-{i}"), 100))
            .collect();
        assert!(
            times
                .iter()
                .all(|t| *t >= SHORTEST_TASK && *t <= SHORTEST_TASK * 10)
        );
        let first: Duration = times[..20].iter().sum();
        let last: Duration = times[80..].iter().sum();
        assert!(last > first * 3, "{first:?} {last:?}");
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
    }
}
