//! `castanet images`: the newest preview image of jobs, after a real Blender render on a
//! real worker process.
mod common;

use std::time::Duration;

use common::render_jobs::{make_scene, render_job, submit};
use common::{Api, ManagerProcess, WorkerProcess, cli, completed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_lists_each_jobs_newest_preview_url() {
    let dir = tempfile::tempdir().expect("temp dir");
    let blend = dir.path().join("tiny.blend");
    make_scene(&blend, 4, (64, 48));
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let api = Api::new(&manager.url);
    let _worker = WorkerProcess::start(&manager, &dir.path().join("w"), "painter", 1);

    let (ok, _, err) = cli(&manager.url, &["images"]);
    assert!(ok, "{err}");
    assert!(err.contains("no preview images yet"), "{err}");

    let rendered = submit(&api, render_job(&blend, &dir.path().join("out"), "1-2")).await;
    let unrendered = api.submit_echo_sleep(1, 0).await;
    api.wait_for_job(&rendered, Duration::from_secs(60), completed)
        .await;

    let (ok, out, err) = cli(&manager.url, &["images", &rendered, &unrendered]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "a header and the rendered job only:\n{out}");
    assert!(lines[0].starts_with("JOB"), "{out}");
    assert!(lines[1].starts_with(&rendered), "{out}");
    let url = lines[1].split_whitespace().last().expect("an image URL");
    assert!(
        url.starts_with(&manager.url) && url.ends_with("/last-rendered.jpg"),
        "{out}"
    );
    let image = reqwest::get(url).await.expect("GET image");
    assert_eq!(image.status().as_u16(), 200);
    let bytes = image.bytes().await.expect("image bytes");
    assert_eq!(&bytes[..2], &[0xFF, 0xD8], "a JPEG");

    let (ok, newest, err) = cli(&manager.url, &["images", "--limit", "1"]);
    assert!(ok, "{err}");
    assert_eq!(newest, out, "the only image is the newest");

    let (ok, _, err) = cli(&manager.url, &["images", "not-a-job"]);
    assert!(!ok);
    assert!(err.contains("\"not-a-job\" is not a UUID"), "{err}");
}
