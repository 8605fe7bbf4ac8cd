//! Adaptive chunking over real gRPC: a render job with a target task duration starts from
//! single frames; once a chunk finished, its never-started queued frames are regrouped (the
//! running task untouched), every frame still renders exactly once, and the preview video still
//! waits for every render task.
mod common;
mod sim_worker;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::TestManager;
use serde_json::{Value, json};
use sim_worker::{SimWorker, start_with};

const FRAMES: u64 = 40;

fn render_job(target_minutes: Option<f64>) -> Value {
    let mut job = json!({
        "name": "render", "type": "simple-blender-render", "priority": 50,
        "submitter_platform": "linux",
        "settings": {
            "frames": format!("1-{FRAMES}"), "chunk_size": 5,
            "render_output_root": "/render", "add_path_components": 0,
            "render_output_path": "/render/test/######",
            "blendfile": "/projects/scene.blend", "fps": 24.0, "format": "PNG",
            "image_file_extension": ".png", "has_previews": false, "scene": "Scene",
        },
        "metadata": {},
    });
    if let Some(minutes) = target_minutes {
        job["target_task_minutes"] = json!(minutes);
    }
    job
}

async fn tasks(m: &TestManager, job: &str) -> Vec<Value> {
    let (status, answer) = m.get(&format!("/api/v3/jobs/{job}/tasks")).await;
    assert_eq!(status, 200, "{answer}");
    answer["tasks"].as_array().cloned().unwrap_or_default()
}

fn frame_list(frames: &str) -> Vec<u64> {
    castanet_manager::compiler::frames::frame_list(frames).expect("stored frames read back")
}

#[tokio::test]
async fn queued_frames_are_regrouped_after_the_first_chunk_and_each_renders_once() {
    let m = start_with(|_| {}).await;
    // Bad targets are refused, naming the field; a job type without compileChunk too.
    for bad in [json!(0), json!(-1), json!(100_000)] {
        let mut job = render_job(None);
        job["target_task_minutes"] = bad.clone();
        let (status, answer) = m.post("/api/v3/jobs", &job).await;
        assert_eq!(status, 400, "{bad}: {answer}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap_or_default()
                .contains("target_task_minutes")
        );
    }
    let mut echo = common::echo_sleep_job(0, 0);
    echo["target_task_minutes"] = json!(5);
    let (status, answer) = m.post("/api/v3/jobs", &echo).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or_default()
            .contains("compileChunk"),
        "{answer}"
    );

    let (status, job) = m.post("/api/v3/jobs", &render_job(Some(1.0))).await;
    assert_eq!(status, 200, "{job}");
    let job_id = job["id"].as_str().expect("id").to_string();
    assert_eq!(job["target_task_minutes"], 1.0, "{job}");
    // Single frames to start with (the chunk size is for jobs without a target), plus the video.
    let initial = tasks(&m, &job_id).await;
    assert_eq!(initial.len() as u64, FRAMES + 1);
    assert_eq!(initial[0]["frames"], "1");

    let mut worker = SimWorker::connect_for(&m, "w", &["blender", "ffmpeg"]).await;
    let first = worker.next_assignment().await;
    worker.complete(&first).await;
    // The worker takes the next frame at once; the queued ones behind it are regrouped.
    let running = worker.next_assignment().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let regrouped = loop {
        let now = tasks(&m, &job_id).await;
        if (now.len() as u64) < FRAMES + 1 {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "never regrouped: {} tasks",
            now.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let still_running = regrouped
        .iter()
        .find(|t| t["id"] == running.task_id.as_str())
        .expect("the running task is untouched");
    assert_eq!(still_running["status"], "active");
    assert!(
        regrouped.iter().any(|t| t["frames"]
            .as_str()
            .is_some_and(|f| frame_list(f).len() > 1)),
        "some chunk holds several frames: {regrouped:?}"
    );

    // Run everything to the end; the video comes only after every render task completed.
    worker.complete(&running).await;
    let mut rendered: BTreeMap<u64, usize> = BTreeMap::new();
    for done in [&first, &running] {
        let (_, shown) = m.get(&format!("/api/v3/tasks/{}", done.task_id)).await;
        for frame in frame_list(shown["frames"].as_str().expect("frames")) {
            *rendered.entry(frame).or_default() += 1;
        }
    }
    loop {
        let task = worker.next_assignment().await;
        let (_, shown) = m.get(&format!("/api/v3/tasks/{}", task.task_id)).await;
        if shown["task_type"] == "ffmpeg" {
            let all = tasks(&m, &job_id).await;
            assert!(
                all.iter()
                    .filter(|t| t["task_type"] == "blender")
                    .all(|t| t["status"] == "completed"),
                "{all:?}"
            );
            worker.complete(&task).await;
            break;
        }
        let frames = shown["frames"]
            .as_str()
            .expect("a chunk's frames")
            .to_string();
        // The command renders exactly the chunk's frames (Blender's notation).
        let args = shown["commands"][0]["parameters"]["args"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            args.last(),
            Some(&json!(frames.replace('-', ".."))),
            "{shown}"
        );
        for frame in frame_list(&frames) {
            *rendered.entry(frame).or_default() += 1;
        }
        worker.complete(&task).await;
    }
    assert_eq!(rendered.len() as u64, FRAMES, "{rendered:?}");
    assert!(
        rendered.values().all(|&n| n == 1),
        "each frame once: {rendered:?}"
    );
    m.wait_for_job(&job_id, Duration::from_secs(10), |j| {
        j["status"] == "completed"
    })
    .await;
}
