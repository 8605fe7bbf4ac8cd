//! A job type whose tasks leave a trail: each is a shell that appends `start`, a `tick`
//! every 0.2 s and `end` lines (task, run pid, wall time) to a markers file, and prints
//! the same lines to its log. Reading the file back gives every run's lifetime, so tests
//! can check that no two runs of one task were ever alive at once.
use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;

use super::{Api, render_jobs};

/// The job type (`marker-run`): settings `markers` (the file), `tasks`, `ticks` (× 0.2 s)
/// and an optional `label` that prefixes the task names.
pub const MARKER_JOB_TYPE: &str = r#"
const JOB_TYPE = {
  label: "Marker Run",
  settings: [
    { key: "markers", type: "string", required: true },
    { key: "label", type: "string", default: "run" },
    { key: "tasks", type: "int32", default: 1 },
    { key: "ticks", type: "int32", default: 5 },
  ],
};
const SCRIPT = 'm="$0"; t="$1"; n="$2"; i=0; ' +
  'mark() { echo "$1 $t $$ $(date +%s.%N)" >> "$m"; echo "$1 $t $$ $i"; }; ' +
  'mark start; while [ $i -lt $n ]; do sleep 0.2; i=$((i+1)); mark tick; done; mark end';
function compileJob(job) {
  const s = job.settings;
  for (let i = 1; i <= s.tasks; i++) {
    const name = `${s.label}-${i}`;
    const task = author.Task(name, "misc");
    task.addCommand(author.Command("exec", {
      exe: "sh", args: ["-c", SCRIPT, s.markers, name, String(s.ticks)],
    }));
    job.addTask(task);
  }
}
"#;

/// Puts the job type into the `scripts/` folder of a manager whose config is in `dir`.
pub fn install_job_type(dir: &Path) {
    std::fs::create_dir_all(dir.join("scripts")).expect("scripts dir");
    std::fs::write(dir.join("scripts/marker_run.js"), MARKER_JOB_TYPE).expect("job type");
}

/// Submits a marker job of `tasks` tasks of `ticks` × 0.2 s; returns its id.
pub async fn submit(api: &Api, markers: &Path, label: &str, tasks: u32, ticks: u32) -> String {
    let body = json!({
        "name": label, "type": "marker-run", "priority": 50, "submitter_platform": "linux",
        "settings": {
            "markers": markers.display().to_string(), "label": label,
            "tasks": tasks, "ticks": ticks,
        },
    });
    render_jobs::submit(api, body).await
}

/// One run of a task as the markers tell it.
#[derive(Debug)]
pub struct Run {
    pub pid: String,
    pub start: f64,
    pub last: f64,
    pub ended: bool,
}

/// Task name → its runs in start order.
pub fn runs(markers: &Path) -> BTreeMap<String, Vec<Run>> {
    let text = std::fs::read_to_string(markers).unwrap_or_default();
    let mut by_task: BTreeMap<String, Vec<Run>> = BTreeMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // A run killed while writing can leave a torn last line: not a marker.
        let [kind, task, pid, time] = fields[..] else {
            continue;
        };
        let Ok(time) = time.parse::<f64>() else {
            continue;
        };
        let task_runs = by_task.entry(task.to_string()).or_default();
        match task_runs.iter_mut().find(|r| r.pid == pid) {
            Some(run) => {
                run.last = run.last.max(time);
                run.ended |= kind == "end";
            }
            None => task_runs.push(Run {
                pid: pid.to_string(),
                start: time,
                last: time,
                ended: kind == "end",
            }),
        }
    }
    for task_runs in by_task.values_mut() {
        task_runs.sort_by(|a, b| a.start.total_cmp(&b.start));
    }
    by_task
}

/// Runs still writing after the next run of their task started (two live runs at once).
/// Empty when all is well.
pub fn overlaps(by_task: &BTreeMap<String, Vec<Run>>) -> Vec<String> {
    let mut faults = Vec::new();
    for (task, task_runs) in by_task {
        for pair in task_runs.windows(2) {
            if pair[0].last >= pair[1].start {
                faults.push(format!(
                    "{task}: run {} was still writing at {:.3} after run {} started at {:.3}",
                    pair[0].pid, pair[0].last, pair[1].pid, pair[1].start
                ));
            }
        }
    }
    faults
}

/// Wall time in seconds, as the markers write it.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}
