//! `castanet worker --test` through the real binary: on this machine (Debian's Blender and
//! FFmpeg) every check passes, with a real frame rendered and encoded; without Blender on
//! PATH, or with a storage root that is not mounted, the report names what is wrong and the
//! exit code is non-zero. A running worker reports the same directory problems at sign-on,
//! and the manager shows them with the worker.
mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Api, ManagerProcess, WorkerProcess};

fn self_test(data_dir: &Path, storage_root: &Path, path: Option<&Path>) -> Output {
    let mut command = Command::new(common::BIN);
    command
        .args(["worker", "--test", "--data-dir"])
        .arg(data_dir)
        .arg("--storage-root")
        .arg(storage_root);
    if let Some(path) = path {
        command.env("PATH", path);
    }
    command.output().expect("castanet runs")
}

fn report(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_render_node_with_blender_and_ffmpeg_passes_every_check() {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = dir.path().join("storage");
    std::fs::create_dir(&storage).expect("mkdir");
    let output = self_test(&dir.path().join("data"), &storage, None);
    let text = report(&output);
    assert!(output.status.success(), "{text}");
    for line in [
        "ok    blender: version ",
        "ok    ffmpeg: version ",
        "ok    blender renders a frame: ",
        "ok    ffmpeg encodes a video: ",
        &format!(
            "ok    storage root {}: {} is writable",
            storage.display(),
            storage.display()
        ),
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
    assert!(text.trim_end().ends_with("checks passed"), "{text}");
    // The checks leave nothing behind in the directories they wrote in.
    let left: Vec<_> = std::fs::read_dir(&storage).expect("list").collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn without_blender_or_its_shared_storage_the_node_is_told_what_is_missing() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A PATH with FFmpeg only.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("mkdir");
    std::os::unix::fs::symlink("/usr/bin/ffmpeg", bin.join("ffmpeg")).expect("link ffmpeg");
    let unmounted = dir.path().join("not-mounted");
    let output = self_test(&dir.path().join("data"), &unmounted, Some(&bin));
    let text = report(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    for line in [
        "FAIL  blender: `blender` was not found on PATH",
        "FAIL  blender renders a frame: skipped: no Blender",
        "ok    ffmpeg encodes a video: ",
        &format!(
            "FAIL  storage root {}: {} is not there (is the shared storage mounted?)",
            unmounted.display(),
            unmounted.display()
        ),
        "3 of 7 checks failed",
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_reports_an_unmounted_storage_root_at_sign_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let api = Api::new(&manager.url);
    let unmounted = dir.path().join("not-mounted");
    let args = [OsStr::new("--storage-root"), unmounted.as_os_str()];
    let worker = WorkerProcess::start_with_args(&manager, &dir.path().join("w"), "node", 1, &args);
    api.wait_connected(1, Duration::from_secs(30)).await;
    let workers = api.get("/api/v3/worker-mgt/workers").await;
    let id = workers["workers"][0]["id"]
        .as_str()
        .expect("worker id")
        .to_owned();
    let expected = format!(
        "storage root {}: {} is not there (is the shared storage mounted?)",
        unmounted.display(),
        unmounted.display()
    );
    let shown = api.get(&format!("/api/v3/worker-mgt/workers/{id}")).await;
    assert_eq!(
        shown["self_check_problems"],
        serde_json::json!([expected]),
        "{shown}"
    );

    // Mounted (made) and signed on again: nothing to report any more.
    worker.stop();
    std::fs::create_dir(&unmounted).expect("mkdir");
    let worker = WorkerProcess::start_with_args(&manager, &dir.path().join("w"), "node", 1, &args);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let shown = api.get(&format!("/api/v3/worker-mgt/workers/{id}")).await;
        if shown["self_check_problems"] == serde_json::json!([]) {
            break;
        }
        assert!(Instant::now() < deadline, "still reported: {shown}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.stop();
    manager.stop();
}
