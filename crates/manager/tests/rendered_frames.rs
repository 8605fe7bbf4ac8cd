//! Numbered frame uploads (`LastRendered.frame`): kept per frame and listed by
//! `GET /api/v3/jobs/{id}/rendered-frames`, announced with `task_id` and `frame` on the
//! last-rendered event, made into the job's preview video (real FFmpeg), refused without
//! the lease, and gone with the job. `preview-video` says why when no videos are made.
mod common;
mod sim_worker;

use std::time::{Duration, Instant};

use castanet_manager::events::Event;
use castanet_protocol::v1;
use common::{TestManager, authed};
use serde_json::Value;
use sim_worker::{SimWorker, start_with};

async fn upload(
    worker: &mut SimWorker,
    task: &v1::AssignTask,
    frame: Option<i64>,
    image: Vec<u8>,
) -> Result<(), tonic::Status> {
    let preview = v1::LastRendered {
        task_id: task.task_id.clone(),
        lease_epoch: task.lease_epoch,
        mime_type: "image/jpeg".into(),
        image,
        frame,
    };
    worker
        .client
        .upload_last_rendered(authed(preview, &worker.id, &worker.token))
        .await
        .map(|_| ())
}

async fn frames_of(m: &TestManager, job: &str) -> Vec<Value> {
    let (status, answer) = m.get(&format!("/api/v3/jobs/{job}/rendered-frames")).await;
    assert_eq!(status, 200, "{answer}");
    answer["frames"].as_array().cloned().expect("frames list")
}

/// Polls `path` until `done(status, body)`.
async fn poll(m: &TestManager, path: &str, done: impl Fn(u16, &Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = m.get(path).await;
        if done(status, &body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{path}: still {status} {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn numbered_frames_are_kept_listed_announced_made_into_a_video_and_go_with_the_job() {
    let m = start_with(|c| c.preview_video.min_interval_seconds = 0.0).await;
    let colours = tempfile::tempdir().expect("temp dir");
    let (status, job) = m.post("/api/v3/jobs", &common::render_job("1-3")).await;
    assert_eq!(status, 200, "{job}");
    let job = job["id"].as_str().expect("id").to_string();
    assert!(frames_of(&m, &job).await.is_empty());
    let (status, _) = m.get(&format!("/api/v3/jobs/{job}/preview-video")).await;
    assert_eq!(status, 204, "no video before a frame");

    let mut events = m.manager.state.events.subscribe();
    let mut worker = SimWorker::connect_for(&m, "renderer", &["blender"]).await;
    let task = worker.next_assignment().await;
    let red = common::jpeg(colours.path(), "red", "40x30");
    upload(&mut worker, &task, Some(2), red.clone())
        .await
        .expect("frame accepted");

    let frames = frames_of(&m, &job).await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["frame"], 2);
    assert_eq!(frames[0]["task_id"], task.task_id.as_str());
    let image = frames[0]["image"].as_str().expect("image");
    assert_eq!(
        image,
        format!("/job-files/job-{}/{job}/frames/000002.jpg", &job[..4])
    );
    assert!(
        frames[0]["updated"]
            .as_str()
            .is_some_and(|u| u.ends_with('Z'))
    );
    let served = m
        .http
        .get(format!("{}{image}", m.url))
        .send()
        .await
        .expect("GET");
    assert_eq!(served.headers()["content-type"], "image/jpeg");
    assert_eq!(served.bytes().await.expect("body").as_ref(), red.as_slice());
    // It is the job's last-rendered image too.
    assert_eq!(
        m.get(&format!("/api/v3/jobs/{job}/last-rendered")).await.0,
        200
    );

    // The event names the task and frame, in its SSE text as well.
    let announced = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let published = events.recv().await.expect("event bus open");
            if matches!(published.event, Event::LastRendered { .. }) {
                return published;
            }
        }
    })
    .await
    .expect("a last-rendered event");
    assert_eq!(
        announced.event,
        Event::LastRendered {
            job_id: job.clone(),
            task_id: Some(task.task_id.clone()),
            frame: Some(2),
        }
    );
    let frame = announced.frame();
    assert!(frame.starts_with("event: last-rendered\n"), "{frame}");
    assert!(
        frame.contains(&format!("\"task_id\":\"{}\"", task.task_id))
            && frame.contains("\"frame\":2"),
        "{frame}"
    );

    // The video: all three frames of the range, at the job's rate, one of them rendered.
    let info = poll(&m, &format!("/api/v3/jobs/{job}/preview-video"), |s, b| {
        s == 200 && b["rendered_frames"] == 1
    })
    .await;
    assert_eq!(info["frame_count"], 3);
    assert_eq!(info["first_frame"], 1);
    assert_eq!(info["fps"], 25.0);
    assert_eq!(
        (info["width"].as_i64(), info["height"].as_i64()),
        (Some(40), Some(30))
    );
    let url = info["url"].as_str().expect("url");
    assert!(
        url.starts_with(&format!(
            "/job-files/job-{}/{job}/preview.mp4?v=",
            &job[..4]
        )),
        "{url}"
    );
    let video = m
        .http
        .get(format!("{}{url}", m.url))
        .send()
        .await
        .expect("GET");
    assert_eq!(video.headers()["content-type"], "video/mp4");
    assert_eq!(video.headers()["accept-ranges"], "bytes");
    let length = video.bytes().await.expect("video").len();
    let tail = m
        .http
        .get(format!("{}{url}", m.url))
        .header("Range", "bytes=-10")
        .send()
        .await
        .expect("GET range");
    assert_eq!(tail.status().as_u16(), 206);
    assert_eq!(
        tail.headers()["content-range"],
        format!("bytes {}-{}/{length}", length - 10, length - 1).as_str()
    );
    let beyond = m
        .http
        .get(format!("{}{url}", m.url))
        .header("Range", format!("bytes={length}-"))
        .send()
        .await
        .expect("GET range");
    assert_eq!(beyond.status().as_u16(), 416);

    // An unnumbered image is the last-rendered one only; an upload without the lease is
    // refused and stores nothing.
    upload(&mut worker, &task, None, red.clone())
        .await
        .expect("accepted");
    assert_eq!(frames_of(&m, &job).await.len(), 1);
    let mut stale = task.clone();
    stale.lease_epoch += 7;
    let refused = upload(&mut worker, &stale, Some(3), red.clone()).await;
    assert_eq!(
        refused.map_err(|s| s.code()),
        Err(tonic::Code::FailedPrecondition)
    );
    assert_eq!(frames_of(&m, &job).await.len(), 1);
    let refused = upload(&mut worker, &task, Some(3), b"\xFF\xD8 not a jpeg".to_vec()).await;
    let refused = refused.expect_err("not a JPEG");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(refused.message().contains("frame 3"), "{refused:?}");
    assert_eq!(frames_of(&m, &job).await.len(), 1);
    let last = m
        .http
        .get(format!(
            "{}/job-files/job-{}/{job}/last-rendered.jpg",
            m.url,
            &job[..4]
        ))
        .send()
        .await
        .expect("GET");
    assert_eq!(
        last.bytes().await.expect("body").as_ref(),
        red.as_slice(),
        "kept"
    );

    // Bad and unknown ids.
    let (status, body) = m.get("/api/v3/jobs/not-a-uuid/rendered-frames").await;
    assert_eq!(status, 400, "{body}");
    let unknown = "00000000-0000-4000-8000-000000000000";
    assert_eq!(
        m.get(&format!("/api/v3/jobs/{unknown}/rendered-frames"))
            .await
            .0,
        404
    );
    assert_eq!(
        m.get(&format!("/api/v3/jobs/{unknown}/preview-video"))
            .await
            .0,
        404
    );

    // Deleting the job removes its frames, its video and their rows.
    worker.complete(&task).await;
    let job_dir = m.manager.state.logs.job_dir(&job);
    assert!(job_dir.join("frames/000002.jpg").is_file());
    let deleted = m
        .http
        .delete(format!("{}/api/v3/jobs/{job}", m.url))
        .send()
        .await
        .expect("DELETE");
    assert!(deleted.status().is_success(), "{}", deleted.status());
    poll(&m, &format!("/api/v3/jobs/{job}"), |s, _| s == 404).await;
    let store = &m.manager.state.store;
    assert!(store.rendered_frames(&job).await.expect("read").is_empty());
    assert!(store.preview_video(&job).await.expect("read").is_none());
    let deadline = Instant::now() + Duration::from_secs(30);
    while job_dir.exists() {
        assert!(
            Instant::now() < deadline,
            "{} still there",
            job_dir.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn without_ffmpeg_or_turned_off_the_video_endpoint_says_why() {
    for (tweak, words) in [
        (
            Box::new(|c: &mut castanet_manager::ManagerConfig| {
                c.preview_video.ffmpeg = "/nonexistent/castanet/ffmpeg".into()
            }) as Box<dyn FnOnce(&mut castanet_manager::ManagerConfig)>,
            "/nonexistent/castanet/ffmpeg",
        ),
        (
            Box::new(|c: &mut castanet_manager::ManagerConfig| c.preview_video.enabled = false),
            "turned off",
        ),
    ] {
        let m = start_with(tweak).await;
        let (status, job) = m.post("/api/v3/jobs", &common::render_job("1-2")).await;
        assert_eq!(status, 200, "{job}");
        let job = job["id"].as_str().expect("id").to_string();
        let body = poll(&m, &format!("/api/v3/jobs/{job}/preview-video"), |s, _| {
            s == 503
        })
        .await;
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(words), "{message}");
        // Frames are still kept for the grid.
        let mut worker = SimWorker::connect_for(&m, "renderer", &["blender"]).await;
        let task = worker.next_assignment().await;
        let image = common::jpeg(m.dir.path(), "blue", "40x30");
        upload(&mut worker, &task, Some(1), image)
            .await
            .expect("accepted");
        assert_eq!(frames_of(&m, &job).await.len(), 1);
    }
}

#[tokio::test]
async fn after_a_restart_the_builder_catches_up_on_frames_that_have_no_video_yet() {
    // Frames land while videos are off: they are kept, no video is made.
    let m = start_with(|c| c.preview_video.enabled = false).await;
    let (status, job) = m.post("/api/v3/jobs", &common::render_job("1-2")).await;
    assert_eq!(status, 200, "{job}");
    let job = job["id"].as_str().expect("id").to_string();
    let mut worker = SimWorker::connect_for(&m, "renderer", &["blender"]).await;
    let task = worker.next_assignment().await;
    let image = common::jpeg(m.dir.path(), "green", "40x30");
    upload(&mut worker, &task, Some(1), image)
        .await
        .expect("accepted");
    drop(worker);
    let TestManager { manager, dir, .. } = m;
    manager.shutdown().await.expect("clean stop");

    // The same database and storage with videos on: the frame is made into a video
    // without any new upload.
    let m = common::start_configured(dir, |c| c.preview_video.min_interval_seconds = 0.0).await;
    let info = poll(&m, &format!("/api/v3/jobs/{job}/preview-video"), |s, _| {
        s == 200
    })
    .await;
    assert_eq!(info["rendered_frames"], 1, "{info}");
    assert_eq!(info["frame_count"], 2, "{info}");
}
