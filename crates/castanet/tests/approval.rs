//! The approval gate end to end with the real binaries and the real Blender: a
//! `blender-render-with-approval` job renders a reduced preview of every other frame into
//! `preview/`, waits for approval, is approved with `castanet job approve`, renders every frame
//! at full size into the normal output, and runs its on-complete command last (a marker file
//! written with the job's environment; its log kept like any task's). Another is rejected with
//! `castanet job reject`, its comment kept.
mod common;

use std::path::Path;
use std::time::Duration;

use common::render_jobs::{make_scene, submit};
use common::{Api, ManagerProcess, WorkerProcess, cli, completed};
use serde_json::{Value, json};

/// Width and height from a PNG's header.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[1..4], b"PNG", "{} is a PNG", path.display());
    let number =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    (number(16), number(20))
}

fn gated_job(blend: &Path, out_root: &Path, marker: &Path) -> Value {
    json!({
        "name": "review me", "type": "blender-render-with-approval", "priority": 50,
        "submitter_platform": "linux",
        "settings": {
            "frames": "1-4", "chunk_size": 4, "preview_every_nth": 2,
            "preview_resolution_percentage": 50, "preview_samples": 1,
            "render_output_root": out_root, "add_path_components": 0,
            "render_output_path": format!("{}/tiny/######", out_root.display()),
            "blendfile": blend, "format": "PNG", "image_file_extension": ".png",
            "scene": "Scene",
        },
        "on_complete": format!(
            "sh -c 'echo \"$CASTANET_JOB_ID $CASTANET_JOB_NAME\" > \"$1\"; ls \"$CASTANET_RENDER_OUTPUT\" >> \"$1\"' on-complete '{}'",
            marker.display()
        ),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_pass_waits_for_approval_from_the_cli_then_the_final_pass_and_on_complete_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let blend = dir.path().join("tiny.blend");
    make_scene(&blend, 4, (64, 48));
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let api = Api::new(&manager.url);
    let worker = WorkerProcess::start(&manager, &dir.path().join("w1"), "reviewer-farm", 1);

    let out_root = dir.path().join("renders");
    let marker = dir.path().join("review server").join("delivered.txt");
    std::fs::create_dir_all(marker.parent().expect("parent")).expect("mkdir");
    let job = submit(&api, gated_job(&blend, &out_root, &marker)).await;
    let waiting = api
        .wait_for_job(&job, Duration::from_secs(60), |j| {
            j["status"] == "awaiting-approval" || j["status"] == "failed"
        })
        .await;
    assert_eq!(waiting["status"], "awaiting-approval", "{waiting}");
    assert_eq!(waiting["approval"]["state"], "pending");

    // The preview: frames 1 and 3 at half size, in preview/; nothing in the final output yet.
    let render_dir = out_root.join("tiny");
    for frame in [1, 3] {
        let path = render_dir.join("preview").join(format!("{frame:06}.png"));
        assert_eq!(png_size(&path), (32, 24), "{}", path.display());
    }
    assert!(!render_dir.join("preview").join("000002.png").exists());
    assert!(!render_dir.join("000001.png").exists());
    assert!(
        !marker.exists(),
        "the on-complete task waits for the final pass"
    );

    let (ok, stdout, stderr) = cli(&manager.url, &["job", "approve", &job, "--comment", "go"]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("approved"), "{stdout}");
    let done = api
        .wait_for_job(&job, Duration::from_secs(60), |j| {
            completed(j) || j["status"] == "failed"
        })
        .await;
    assert!(completed(&done), "{done}");
    assert_eq!(done["approval"]["comment"], "go");

    for frame in 1..=4 {
        let path = render_dir.join(format!("{frame:06}.png"));
        assert_eq!(png_size(&path), (64, 48), "{}", path.display());
    }
    // The on-complete command ran after the final frames, with the job in its environment.
    let delivered = std::fs::read_to_string(&marker).expect("the on-complete command ran");
    assert!(
        delivered.starts_with(&format!("{job} review me\n")),
        "{delivered}"
    );
    for frame in 1..=4 {
        assert!(
            delivered.contains(&format!("{frame:06}.png")),
            "{delivered}"
        );
    }
    let tasks = api.tasks(&job).await;
    let last = tasks.last().expect("tasks");
    assert_eq!(last["name"], "on-complete");
    let log = api.task_log(last["id"].as_str().expect("id")).await;
    assert!(log.contains("going to run: sh -c"), "{log}");
    assert!(log.contains(&format!("CASTANET_JOB_ID={job}")), "{log}");

    // Reviewed once: the CLI says why not again.
    let (ok, _, stderr) = cli(&manager.url, &["job", "reject", &job, "--comment", "late"]);
    assert!(!ok);
    assert!(stderr.contains("already approved"), "{stderr}");

    // A second look, rejected from the command line: a comment is required; it stays.
    let other = submit(&api, gated_job(&blend, &dir.path().join("second"), &marker)).await;
    api.wait_for_job(&other, Duration::from_secs(60), |j| {
        j["status"] == "awaiting-approval" || j["status"] == "failed"
    })
    .await;
    let (ok, _, stderr) = cli(&manager.url, &["job", "reject", &other]);
    assert!(!ok && stderr.contains("--comment"), "{stderr}");
    let (ok, stdout, stderr) = cli(
        &manager.url,
        &["job", "reject", &other, "--comment", "too dark"],
    );
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("rejected"), "{stdout}");
    let rejected = api.get(&format!("/api/v3/jobs/{other}")).await;
    assert_eq!(rejected["status"], "rejected", "{rejected}");
    assert_eq!(rejected["approval"]["comment"], "too dark");
    assert_eq!(
        api.tasks(&other).await.len(),
        1,
        "no final pass, no on-complete task"
    );

    worker.stop();
    manager.stop();
}
