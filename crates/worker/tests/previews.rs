//! Frame previews against a fake manager: every frame Blender saves is uploaded with its
//! frame number, in order, retried while the manager answers UNAVAILABLE, and all of them
//! before the task is reported completed.

// Shared with session.rs, which uses all of the fake manager.
#[allow(dead_code)]
mod fake_manager;
mod harness;

use castanet_protocol::v1::TaskStatus;
use fake_manager::{Event, SECRET, Script};
use harness::{Worker, connected, task, update_of};

#[tokio::test]
async fn every_numbered_frame_reaches_the_manager_before_the_task_completes() {
    let mut manager = fake_manager::start(Script {
        failing_previews: 3,
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    // A stand-in for Blender printing its lines for three frames it "saved".
    let mut script = String::new();
    for frame in 1..=3 {
        let png = dir.path().join(format!("frame_{frame:04}.png"));
        image::RgbImage::from_pixel(32, 24, image::Rgb([200, 100, 50]))
            .save(&png)
            .expect("png written");
        script.push_str(&format!(
            "echo 'Fra:{frame} Mem:1M | Scene | Sample 4/4'; echo \"Saved: '{}'\"; echo ' Time: 00:00.10';",
            png.display()
        ));
    }
    let params = serde_json::json!({
        "exe": "sh", "exeArgs": "-c", "argsBefore": [script, "sh"], "blendfile": "",
        "args": ["-f", "1..3"],
    });
    let worker = Worker::start(&manager, &dir.path().join("data"), Some(SECRET));
    connected(&mut manager).await;
    manager
        .instruct(task("t1", 1, &[("blender-render", &params.to_string())]))
        .await;
    let mut frames = Vec::new();
    loop {
        let event = manager.next().await;
        if let Event::Preview { task_id, frame } = &event {
            assert_eq!(task_id, "t1");
            frames.push(*frame);
        }
        if let Some(update) =
            update_of(&event).filter(|u| u.status != TaskStatus::Unspecified as i32)
            && update.status != TaskStatus::Active as i32
        {
            assert_eq!(update.status, TaskStatus::Completed as i32, "{update:?}");
            break;
        }
    }
    assert_eq!(frames, [Some(1), Some(2), Some(3)]);
    worker.stop().await.expect("clean exit");
}
