//! End to end with the real Debian `blender` and `ffmpeg`: built-in job types rendered and
//! transcoded by real `castanet worker` processes, progress and previews read back through
//! the manager's API, and a cancel that must kill Blender at once.
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::render_jobs::{make_scene, render_job, submit};
use common::{Api, ManagerProcess, WorkerProcess, completed};
use serde_json::{Value, json};

/// Frames counted by ffprobe.
fn probe_frames(video: &Path) -> u64 {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(video)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// Polls the job until `done`, recording every progress value each task showed (in order,
/// repeats folded).
async fn follow_progress(
    api: &Api,
    job: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> BTreeMap<String, Vec<f64>> {
    let deadline = Instant::now() + limit;
    let mut seen: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    loop {
        for task in api.tasks(job).await {
            let name = task["name"].as_str().unwrap_or_default().to_string();
            // The API drops `progress` once a task is finished; completed counts as 100.
            let progress = match task["status"].as_str() {
                Some("completed") => 100.0,
                _ => task["progress"].as_f64().unwrap_or(0.0),
            };
            let values = seen.entry(name).or_default();
            if values.last() != Some(&progress) {
                values.push(progress);
            }
        }
        let value = api.get(&format!("/api/v3/jobs/{job}")).await;
        if done(&value) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "job not done within {limit:?}: {value}"
        );
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_four_frame_render_on_two_workers_gives_frames_video_and_preview() {
    let dir = tempfile::tempdir().expect("temp dir");
    let blend = dir.path().join("tiny.blend");
    make_scene(&blend, 4, (64, 48));
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let api = Api::new(&manager.url);
    let one = WorkerProcess::start(&manager, &dir.path().join("w1"), "render-one", 1);
    let two = WorkerProcess::start(&manager, &dir.path().join("w2"), "render-two", 1);

    let out_root = dir.path().join("renders");
    let job = submit(&api, render_job(&blend, &out_root, "1-4")).await;
    let progress = follow_progress(&api, &job, Duration::from_secs(60), completed).await;

    let render_dir = out_root.join("tiny");
    for frame in 1..=4 {
        let path = render_dir.join(format!("{frame:06}.png"));
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(size > 0, "{} written", path.display());
    }
    let video = render_dir.join("tiny-1-4.mp4");
    assert_eq!(
        probe_frames(&video),
        4,
        "{} has the 4 frames",
        video.display()
    );

    let tasks = api.tasks(&job).await;
    assert_eq!(tasks.len(), 5);
    let workers: std::collections::BTreeSet<_> = tasks
        .iter()
        .filter(|t| t["name"].as_str().is_some_and(|n| n.starts_with("render-")))
        .map(|t| t["worker"]["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(workers.len(), 2, "both workers rendered: {workers:?}");
    for (task, values) in &progress {
        assert_eq!(values.first(), Some(&0.0), "{task} starts at 0: {values:?}");
        assert_eq!(
            values.last(),
            Some(&100.0),
            "{task} ends at 100: {values:?}"
        );
    }

    let info = api.get(&format!("/api/v3/jobs/{job}/last-rendered")).await;
    assert_eq!(info["suffixes"], json!(["last-rendered.jpg"]));
    let base = info["base"].as_str().expect("base");
    let image = reqwest::get(format!("{}{base}/last-rendered.jpg", manager.url))
        .await
        .expect("GET image");
    assert_eq!(image.status().as_u16(), 200);
    let bytes = image.bytes().await.expect("image bytes");
    assert_eq!(&bytes[..2], &[0xFF, 0xD8], "a JPEG");
    let farm = api.get("/api/v3/jobs/last-rendered").await;
    assert_eq!(farm["base"], info["base"]);

    one.stop();
    two.stop();
    manager.stop();
}

fn make_clip(path: &Path, seconds: u32) {
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc=size=64x48:rate=24:duration={seconds}"))
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p"])
        .arg(path)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_transcode_of_three_clips_reports_rising_progress() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clips = dir.path().join("clips");
    std::fs::create_dir(&clips).expect("mkdir");
    for name in ["a", "b", "c"] {
        make_clip(&clips.join(format!("{name}.mp4")), 3);
    }
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let api = Api::new(&manager.url);
    let worker = WorkerProcess::start(&manager, &dir.path().join("w1"), "transcoder", 1);

    let out = dir.path().join("out");
    let job = submit(
        &api,
        json!({
            "name": "clips", "type": "ffmpeg-transcode", "priority": 50, "submitter_platform": "linux",
            "settings": {
                "input": format!("{}/*.mp4", clips.display()),
                "output_pattern": format!("{}/{{stem}}-small.mkv", out.display()),
                "output_args": "-c:v libx264 -preset veryslow -pix_fmt yuv420p",
            },
        }),
    )
    .await;
    std::fs::create_dir(&out).expect("mkdir");
    let progress = follow_progress(&api, &job, Duration::from_secs(60), completed).await;

    for name in ["a", "b", "c"] {
        let output = out.join(format!("{name}-small.mkv"));
        assert_eq!(probe_frames(&output), 72, "{}", output.display());
    }
    for (task, values) in &progress {
        assert!(
            values.windows(2).all(|w| w[0] <= w[1]),
            "{task} rises: {values:?}"
        );
        assert_eq!(values.last(), Some(&100.0), "{task}: {values:?}");
    }
    worker.stop();
    manager.stop();
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline: PathBuf = entry.path().join("cmdline");
        if let Ok(bytes) = std::fs::read(cmdline) {
            // A zombie has an empty command line: it is gone as far as rendering goes.
            if String::from_utf8_lossy(&bytes).contains(needle) {
                found.push(pid);
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canceling_a_render_kills_blender_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let blend = dir.path().join("slow-render.blend");
    make_scene(&blend, 100_000, (320, 240));
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let api = Api::new(&manager.url);
    let worker = WorkerProcess::start(&manager, &dir.path().join("w1"), "canceler", 1);

    let job = submit(&api, render_job(&blend, &dir.path().join("renders"), "1")).await;
    let needle = blend.display().to_string();
    // Wait until Blender is rendering (a sample count shows in the activity).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let tasks = api.tasks(&job).await;
        let rendering = tasks.iter().any(|t| {
            t["activity"]
                .as_str()
                .is_some_and(|a| a.starts_with("Rendering frame 1 (sample"))
        });
        if rendering && !processes_mentioning(&needle).is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Blender never started rendering: {tasks:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let started = Instant::now();
    let response = reqwest::Client::new()
        .post(format!("{}/api/v3/jobs/{job}/setstatus", manager.url))
        .json(&json!({"status": "cancel-requested", "reason": "e2e cancel"}))
        .send()
        .await
        .expect("POST setstatus");
    assert!(response.status().is_success(), "{}", response.status());
    while !processes_mentioning(&needle).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "Blender still running {:?} after the cancel",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let gone_after = started.elapsed();
    eprintln!("Blender process tree gone {gone_after:?} after the cancel request");
    api.wait_for_job(&job, Duration::from_secs(10), |j| j["status"] == "canceled")
        .await;
    worker.stop();
    manager.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_blend_file_fails_as_missing_input() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let api = Api::new(&manager.url);
    let worker = WorkerProcess::start(&manager, &dir.path().join("w1"), "checker", 1);

    let absent = dir.path().join("absent.blend");
    let job = submit(&api, render_job(&absent, &dir.path().join("renders"), "1")).await;
    let tasks = api
        .wait_for_tasks(&job, Duration::from_secs(30), |tasks| {
            tasks.iter().any(|t| t["fault_class"] == "missing-input")
        })
        .await;
    let failed = tasks
        .iter()
        .find(|t| t["fault_class"] == "missing-input")
        .expect("the failed render task");
    let id = failed["id"].as_str().expect("task id");
    let log = api.task_log(id).await;
    assert!(
        log.contains(&format!("blend file not found: {}", absent.display())),
        "{log}"
    );
    // Checked before starting: Blender never ran.
    assert!(!log.contains("going to run:"), "{log}");
    worker.stop();
    manager.stop();
}

/// A directory for `PATH` that has ffmpeg and ffprobe but no Blender.
fn path_without_blender(dir: &Path) -> PathBuf {
    let bin = dir.join("bin-without-blender");
    std::fs::create_dir_all(&bin).expect("mkdir");
    for tool in ["ffmpeg", "ffprobe"] {
        let target = which(tool).expect("tool on PATH");
        std::os::unix::fs::symlink(target, bin.join(tool)).expect("symlink");
    }
    bin
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(tool))
        .find(|path| path.is_file())
}

/// Waits until the worker called `name` has signed on and returns its task types.
async fn signed_on_task_types(api: &Api, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let workers = api.get("/api/v3/worker-mgt/workers").await;
        let found = workers["workers"].as_array().and_then(|list| {
            list.iter()
                .find(|w| w["name"] == name)
                .and_then(|w| w["id"].as_str().map(String::from))
        });
        if let Some(id) = found {
            // Listed once registered; the task types arrive with the sign-on.
            let worker = api.get(&format!("/api/v3/worker-mgt/workers/{id}")).await;
            let types = &worker["supported_task_types"];
            if types.as_array().is_some_and(|t| !t.is_empty()) {
                return types.clone();
            }
        }
        assert!(Instant::now() < deadline, "worker {name} never signed on");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_without_blender_gets_no_render_tasks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let blend = dir.path().join("tiny.blend");
    make_scene(&blend, 4, (64, 48));
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let api = Api::new(&manager.url);
    let bin = path_without_blender(dir.path());
    let blind = WorkerProcess::start_with_env(
        &manager.url,
        &manager.secret,
        &dir.path().join("w1"),
        "no-blender",
        2,
        &[("PATH", bin.as_os_str())],
    );
    let blind_types = signed_on_task_types(&api, "no-blender").await;
    let types: Vec<&str> = blind_types
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        !types.contains(&"blender") && types.contains(&"ffmpeg"),
        "{blind_types}"
    );
    // A render job with no registered worker offering blender would fail at once as
    // impossible; with one signed on, the blender-less worker (two idle slots) would
    // get renders only if it offered them.
    let able = WorkerProcess::start(&manager, &dir.path().join("w2"), "with-blender", 1);
    signed_on_task_types(&api, "with-blender").await;

    let job = submit(&api, render_job(&blend, &dir.path().join("renders"), "1-2")).await;
    api.wait_for_job(&job, Duration::from_secs(60), completed)
        .await;
    for task in api.tasks(&job).await {
        if task["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("render-"))
        {
            assert_eq!(task["worker"]["name"], "with-blender", "{task}");
        }
    }
    blind.stop();
    able.stop();
    manager.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_render_outlives_a_manager_outage_and_reports_once_afterwards() {
    let dir = tempfile::tempdir().expect("temp dir");
    let blend = dir.path().join("outage.blend");
    make_scene(&blend, 200, (320, 240));
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let address = manager.listen_address();
    let secret = manager.secret.clone();
    let api = Api::new(&manager.url);
    let worker = WorkerProcess::start(&manager, &dir.path().join("w1"), "survivor", 1);
    let out_root = dir.path().join("renders");
    let job = submit(&api, render_job(&blend, &out_root, "1")).await;
    let needle = blend.display().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while processes_mentioning(&needle).is_empty() {
        assert!(Instant::now() < deadline, "Blender never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The manager dies while Blender renders; the render goes on and finishes.
    let mut manager = manager;
    let _ = manager.child.kill();
    let _ = manager.child.wait();
    let killed_at = Instant::now();
    drop(manager);
    let frame = out_root.join("tiny").join("000001.png");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !processes_mentioning(&needle).is_empty() {
        assert!(Instant::now() < deadline, "Blender did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        std::fs::metadata(&frame).map(|m| m.len()).unwrap_or(0) > 0,
        "frame rendered during the outage"
    );

    // The outage lasts 20 s in all: the worker's retries run into their backoff cap.
    let outage = Duration::from_secs(20);
    if let Some(left) = outage.checked_sub(killed_at.elapsed()) {
        tokio::time::sleep(left).await;
    }
    let manager = ManagerProcess::start(dir.path(), &address);
    assert_eq!(manager.secret, secret);
    let render_task = |tasks: &[Value]| {
        tasks
            .iter()
            .find(|t| t["name"] == "render-1")
            .cloned()
            .unwrap_or_default()
    };
    let tasks = api
        .wait_for_tasks(&job, Duration::from_secs(60), |tasks| {
            render_task(tasks)["status"] == "completed"
        })
        .await;
    let task = render_task(&tasks);
    assert_eq!(task["worker"]["name"], "survivor", "{task}");
    let log = api.task_log(task["id"].as_str().expect("id")).await;
    let count = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(count("going to run:"), 1, "{log}");
    assert_eq!(count("Saved: '"), 1, "the whole log, once:\n{log}");
    assert_eq!(count("verified: 1 frame(s) written"), 1, "{log}");
    // The frame's preview was retried until the manager was back.
    let info = api.get(&format!("/api/v3/jobs/{job}/last-rendered")).await;
    assert_eq!(info["suffixes"], json!(["last-rendered.jpg"]));
    api.wait_for_job(&job, Duration::from_secs(60), completed)
        .await;
    worker.stop();
    manager.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_hands_the_running_task_back_and_another_worker_completes_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let api = Api::new(&manager.url);
    let leaving = WorkerProcess::start(&manager, &dir.path().join("w1"), "leaving", 1);
    let job = api.submit_echo_sleep(1, 3).await;
    let sleeping = |tasks: &[Value]| {
        tasks
            .iter()
            .any(|t| t["status"] == "active" && t["name"] != "echo")
    };
    api.wait_for_tasks(&job, Duration::from_secs(30), sleeping)
        .await;

    // SIGTERM: the task is aborted and handed back, the worker signs off and exits 0.
    leaving.stop();
    let tasks = api.tasks(&job).await;
    let sleeper = tasks
        .iter()
        .find(|t| t["name"] != "echo")
        .expect("the sleep task");
    assert_eq!(sleeper["status"], "queued", "handed back: {sleeper}");

    let staying = WorkerProcess::start(&manager, &dir.path().join("w2"), "staying", 1);
    api.wait_for_job(&job, Duration::from_secs(30), completed)
        .await;
    for task in api.tasks(&job).await {
        if task["name"] != "echo" {
            assert_eq!(task["worker"]["name"], "staying", "{task}");
        }
    }
    staying.stop();
    manager.stop();
}
