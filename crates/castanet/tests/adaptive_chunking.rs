//! Adaptive chunking through the real binaries: a 16-frame Blender render submitted with
//! `castanet submit … --target-task-minutes`, rendered by two real worker processes with the
//! Debian `blender`. The job starts from single frames; once the first ones finished, the
//! queued frames are regrouped into larger chunks; every frame is rendered exactly once and the
//! preview video holds all of them.
mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::render_jobs::make_scene;
use common::{Api, ManagerProcess, WorkerProcess, cli as castanet};

const FRAMES: u64 = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_render_with_a_target_duration_is_regrouped_and_renders_each_frame_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let blend = dir.path().join("tiny.blend");
    make_scene(&blend, 2, (32, 24));
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let api = Api::new(&manager.url);
    let workers: Vec<WorkerProcess> = (1..=2)
        .map(|n| {
            let name = format!("chunker-{n}");
            WorkerProcess::start(&manager, &dir.path().join(&name), &name, 1)
        })
        .collect();
    api.wait_connected(2, Duration::from_secs(30)).await;

    let out_root = dir.path().join("renders");
    let set = |pair: String| ["--set".to_string(), pair];
    let mut args: Vec<String> = vec!["submit".into(), "simple-blender-render".into()];
    for pair in [
        format!("frames=1-{FRAMES}"),
        format!("blendfile={}", blend.display()),
        format!("render_output_root={}", out_root.display()),
        format!("render_output_path={}/tiny/######", out_root.display()),
        "format=PNG".into(),
        "image_file_extension=.png".into(),
        "scene=Scene".into(),
        "fps=24".into(),
    ] {
        args.extend(set(pair));
    }
    // Twelve seconds a task: one frame of this scene takes a second or two (mostly Blender
    // starting), so the regrouped chunks hold several frames.
    args.extend([
        "--target-task-minutes".into(),
        "0.2".into(),
        "--name".into(),
        "tiny".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out, err) = castanet(&manager.url, &args);
    assert!(ok, "{out}{err}");
    let job = out
        .lines()
        .find_map(|l| l.strip_prefix("submitted job "))
        .expect("prints the job id")
        .trim()
        .to_string();

    let deadline = Instant::now() + Duration::from_secs(180);
    let shown = loop {
        let shown = api.get(&format!("/api/v3/jobs/{job}")).await;
        if shown["status"] == "completed" {
            break shown;
        }
        assert!(
            !matches!(shown["status"].as_str(), Some("failed" | "canceled")),
            "{shown}"
        );
        assert!(Instant::now() < deadline, "not done: {shown}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(shown["target_task_minutes"], 0.2, "{shown}");

    let tasks = api.tasks(&job).await;
    let renders: Vec<&serde_json::Value> = tasks
        .iter()
        .filter(|t| t["task_type"] == "blender")
        .collect();
    let mut rendered: BTreeMap<u64, usize> = BTreeMap::new();
    for task in &renders {
        let frames = task["frames"].as_str().expect("a chunk's frames");
        for frame in castanet_manager::compiler::frames::frame_list(frames).expect("frames") {
            *rendered.entry(frame).or_default() += 1;
        }
    }
    assert_eq!(rendered.len() as u64, FRAMES, "{rendered:?}");
    assert!(
        rendered.values().all(|&n| n == 1),
        "each frame once: {rendered:?}"
    );
    assert!(
        (renders.len() as u64) < FRAMES,
        "the queued frames were regrouped: {} render tasks",
        renders.len()
    );
    for frame in 1..=FRAMES {
        let path = out_root.join("tiny").join(format!("{frame:06}.png"));
        assert!(path.is_file(), "{} written", path.display());
    }
    for worker in workers {
        worker.stop();
    }
    manager.stop();
}
