//! The live preview video with the real Debian `blender` and `ffmpeg`: a 12-frame render on
//! two `castanet worker` processes, paused after four frames (the video then holds all 12
//! frames, the unrendered ones black) and resumed (at the end all 12 show their render);
//! the frame images, byte ranges on the video, and the CLI's download of it.
mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::render_jobs::{make_scene, render_job, submit};
use common::{Api, ManagerProcess, WorkerProcess, cli, completed};
use serde_json::{Value, json};

const FRAMES: i64 = 12;

/// Frames counted by ffprobe.
fn probe_frames(video: &Path) -> u64 {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=nb_read_frames,codec_name",
            "-of",
            "csv=p=0",
        ])
        .arg(video)
        .output()
        .expect("ffprobe runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let mut fields = text.trim().split(',');
    assert_eq!(fields.next(), Some("h264"), "{}: {text}", video.display());
    fields.next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// Whether each frame of the video is black: decoded to 8×8 gray, mean brightness under 8.
fn black_frames(video: &Path) -> Vec<bool> {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(video)
        .args(["-vf", "scale=8:8,format=gray", "-f", "rawvideo", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
        .stdout
        .chunks(64)
        .map(|pixels| pixels.iter().map(|&p| u32::from(p)).sum::<u32>() / 64 < 8)
        .collect()
}

/// GET that may answer 204: `None` then.
async fn maybe_get(api: &Api, path: &str) -> Option<Value> {
    let response = reqwest::get(format!("{}{path}", api.url))
        .await
        .expect("GET");
    match response.status().as_u16() {
        204 => None,
        200 => Some(response.json().await.expect("JSON")),
        status => panic!(
            "GET {path}: {status}: {}",
            response.text().await.unwrap_or_default()
        ),
    }
}

/// Polls the video info until `done` says yes.
async fn wait_for_video(api: &Api, job: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let info = maybe_get(api, &format!("/api/v3/jobs/{job}/preview-video")).await;
        if let Some(info) = info.filter(|info| done(info)) {
            return info;
        }
        assert!(
            Instant::now() < deadline,
            "the preview video never got there"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn download(api: &Api, info: &Value, to: &Path) {
    let url = info["url"].as_str().expect("url");
    let response = reqwest::get(format!("{}{url}", api.url))
        .await
        .expect("GET video");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "video/mp4");
    std::fs::write(to, response.bytes().await.expect("bytes")).expect("write video");
}

async fn set_status(api: &Api, job: &str, status: &str) {
    let response = reqwest::Client::new()
        .post(format!("{}/api/v3/jobs/{job}/setstatus", api.url))
        .json(&json!({"status": status, "reason": "preview video test"}))
        .send()
        .await
        .expect("POST setstatus");
    assert!(response.status().is_success(), "{}", response.status());
}

async fn rendered_frames(api: &Api, job: &str) -> Vec<Value> {
    let list = api
        .get(&format!("/api/v3/jobs/{job}/rendered-frames"))
        .await;
    list["frames"].as_array().expect("frames").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twelve_frame_render_fills_its_preview_video_as_frames_land() {
    let dir = tempfile::tempdir().expect("temp dir");
    let blend = dir.path().join("tiny.blend");
    make_scene(&blend, 16, (64, 48));
    // A short throttle, so the test need not wait ten seconds per rebuild.
    std::fs::write(
        dir.path().join("castanet-manager.toml"),
        "registration_secret = \"preview-video-test\"\n\
         [preview_video]\nmin_interval_seconds = 0.5\n",
    )
    .expect("config");
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let api = Api::new(&manager.url);
    let one = WorkerProcess::start(&manager, &dir.path().join("w1"), "preview-one", 1);
    let two = WorkerProcess::start(&manager, &dir.path().join("w2"), "preview-two", 1);

    let out_root = dir.path().join("renders");
    let job = submit(&api, render_job(&blend, &out_root, &format!("1-{FRAMES}"))).await;
    assert_eq!(
        maybe_get(&api, &format!("/api/v3/jobs/{job}/preview-video")).await,
        None,
        "no video before the first frame"
    );

    // Pause once four frames are rendered; what runs then still finishes.
    api.wait_for_tasks(&job, Duration::from_secs(120), |tasks| {
        tasks
            .iter()
            .filter(|t| t["name"].as_str().is_some_and(|n| n.starts_with("render-")))
            .filter(|t| t["status"] == "completed")
            .count()
            >= 4
    })
    .await;
    set_status(&api, &job, "pause-requested").await;
    api.wait_for_job(&job, Duration::from_secs(60), |j| j["status"] == "paused")
        .await;

    let frames = rendered_frames(&api, &job).await;
    let rendered: BTreeSet<i64> = frames.iter().filter_map(|f| f["frame"].as_i64()).collect();
    // A completed task's frames are on the manager (the worker reports after uploading them),
    // and a paused job has no other.
    let completed_frames: BTreeSet<i64> = api
        .tasks(&job)
        .await
        .iter()
        .filter(|t| t["status"] == "completed")
        .filter_map(|t| t["frames"].as_str().and_then(|f| f.parse().ok()))
        .collect();
    assert_eq!(rendered, completed_frames);
    assert!(
        rendered.len() >= 4 && rendered.len() < FRAMES as usize,
        "paused with {rendered:?} rendered"
    );
    for frame in &frames {
        assert!(
            frame["task_id"].as_str().is_some_and(|t| !t.is_empty()),
            "{frame}"
        );
        let image = frame["image"].as_str().expect("image");
        let bytes = reqwest::get(format!("{}{image}", manager.url))
            .await
            .expect("GET frame")
            .bytes()
            .await
            .expect("bytes");
        assert_eq!(&bytes[..2], &[0xFF, 0xD8], "{image} is a JPEG");
    }

    let count = rendered.len() as i64;
    let info = wait_for_video(&api, &job, |info| info["rendered_frames"] == count).await;
    assert_eq!(info["frame_count"], FRAMES);
    assert_eq!(info["first_frame"], 1);
    assert_eq!(info["fps"], 24.0);
    let video = dir.path().join("paused.mp4");
    download(&api, &info, &video).await;
    assert_eq!(probe_frames(&video), FRAMES as u64);
    let black = black_frames(&video);
    let expected: Vec<bool> = (1..=FRAMES).map(|f| !rendered.contains(&f)).collect();
    assert_eq!(
        black, expected,
        "black exactly where not rendered ({rendered:?})"
    );
    assert_eq!(
        black.iter().filter(|b| **b).count(),
        FRAMES as usize - rendered.len()
    );

    // A browser seeks with byte ranges.
    let url = info["url"].as_str().expect("url");
    let part = reqwest::Client::new()
        .get(format!("{}{url}", manager.url))
        .header("Range", "bytes=0-99")
        .send()
        .await
        .expect("GET range");
    assert_eq!(part.status().as_u16(), 206);
    let length = std::fs::metadata(&video).expect("video").len();
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 0-99/{length}").as_str()
    );
    assert_eq!(part.bytes().await.expect("bytes").len(), 100);

    set_status(&api, &job, "queued").await;
    api.wait_for_job(&job, Duration::from_secs(180), completed)
        .await;
    let info = wait_for_video(&api, &job, |info| info["rendered_frames"] == FRAMES).await;
    let video = dir.path().join("final.mp4");
    download(&api, &info, &video).await;
    assert_eq!(probe_frames(&video), FRAMES as u64);
    assert_eq!(black_frames(&video), vec![false; FRAMES as usize]);
    assert_eq!(rendered_frames(&api, &job).await.len(), FRAMES as usize);

    // The CLI prints the info and downloads the video.
    let (ok, stdout, stderr) = cli(&manager.url, &["preview-video", &job]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("12 of 12 frames rendered"), "{stdout}");
    let saved = dir.path().join("cli.mp4");
    let saved_arg = saved.display().to_string();
    let (ok, _, stderr) = cli(
        &manager.url,
        &["preview-video", &job, "--output", &saved_arg],
    );
    assert!(ok, "{stderr}");
    assert_eq!(probe_frames(&saved), FRAMES as u64);
    let (ok, stdout, stderr) = cli(&manager.url, &["frames", &job]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.lines().count(), 1 + FRAMES as usize, "{stdout}");

    one.stop();
    two.stop();
    manager.stop();
}
