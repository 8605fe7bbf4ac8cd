//! Slots pinned to GPUs: the processes of a task get their slot's CUDA_VISIBLE_DEVICES,
//! Blender is told to render on the GPU, unpinned workers change nothing, and a pinning
//! that cannot work stops the worker at start-up. This machine needs no GPU: explicit
//! indices are passed on unchecked when none is detected.

// Shared with session.rs, which uses all of the fake manager.
#[allow(dead_code)]
mod fake_manager;
mod harness;

use std::collections::HashMap;
use std::path::Path;

use castanet_protocol::v1::TaskStatus;
use castanet_worker::{SlotGpus, WorkerError};
use fake_manager::{Event, Handle, SECRET, Script};
use harness::{Worker, connected, task};

/// Runs until every task in `ids` completed; returns each task's log text.
async fn logs_until_completed(manager: &mut Handle, ids: &[&str]) -> HashMap<String, String> {
    let mut logs: HashMap<String, String> = HashMap::new();
    let mut completed = 0;
    while completed < ids.len() {
        match manager.next().await {
            Event::Log(chunk) => logs.entry(chunk.task_id).or_default().push_str(&chunk.text),
            Event::Update(update) if update.status == TaskStatus::Completed as i32 => {
                completed += 1
            }
            Event::Update(update) if update.status == TaskStatus::Failed as i32 => {
                panic!("task {} failed: {:?}", update.task_id, update.failure)
            }
            _ => {}
        }
    }
    logs
}

/// An `exec` of `sh -c script` with `args` after it (`$0`, `$1`, …).
fn shell(script: &str, args: &[&str]) -> String {
    let mut argv = vec!["-c".to_string(), script.to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    serde_json::json!({ "exe": "sh", "args": argv }).to_string()
}

/// Prints what the process sees, then waits (with a deadline) until the other task has
/// printed too, so both run at the same time and must hold different slots.
const PRINT_AND_MEET: &str = r#"echo "seen: cuda=${CUDA_VISIBLE_DEVICES-unset} order=${CUDA_DEVICE_ORDER-unset}"
touch "$0/$1"
i=0
while [ ! -e "$0/$2" ]; do
  i=$((i+1)); [ $i -gt 2000 ] && { echo "the other task never started"; exit 1; }
  sleep 0.01
done"#;

/// What the process printed on its `seen:` line (not the command line quoting it).
fn seen(log: &str) -> &str {
    log.lines()
        .find_map(|l| l.split_once(" > seen: ").map(|(_, rest)| rest))
        .unwrap_or("")
}

async fn run_two_meeting_tasks(manager: &mut Handle, dir: &Path) -> HashMap<String, String> {
    let meet = dir.to_str().expect("utf-8 temp dir");
    connected(manager).await;
    // Both assignments name slot 0: the worker puts the second one in its free slot.
    for (id, me, other) in [("t1", "a", "b"), ("t2", "b", "a")] {
        manager
            .instruct(task(
                id,
                1,
                &[("exec", &shell(PRINT_AND_MEET, &[meet, me, other]))],
            ))
            .await;
    }
    logs_until_completed(manager, &["t1", "t2"]).await
}

#[tokio::test]
async fn each_pinned_slot_gets_its_own_cuda_devices() {
    let mut manager = fake_manager::start(Script::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let meet = tempfile::tempdir().expect("temp dir");
    let worker = Worker::start_with(&manager, dir.path(), Some(SECRET), |config| {
        config.slots = 2;
        config.slot_gpus = "0,1".parse().expect("valid slot GPUs");
    });
    let logs = run_two_meeting_tasks(&mut manager, meet.path()).await;
    let mut seen_by_tasks = [seen(&logs["t1"]), seen(&logs["t2"])];
    seen_by_tasks.sort();
    assert_eq!(
        seen_by_tasks,
        ["cuda=0 order=PCI_BUS_ID", "cuda=1 order=PCI_BUS_ID"],
        "logs: {logs:?}"
    );
    // The task log says which devices the process was given.
    assert!(
        logs["t1"]
            .contains("slot GPU environment: CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES="),
        "{}",
        logs["t1"]
    );
    worker.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn unpinned_slots_leave_the_environment_alone() {
    let mut manager = fake_manager::start(Script::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let meet = tempfile::tempdir().expect("temp dir");
    // Slot 1 has no entry, so only slot 0 is pinned; a worker without the option pins none.
    let worker = Worker::start_with(&manager, dir.path(), Some(SECRET), |config| {
        config.slots = 2;
        config.slot_gpus = "3".parse().expect("valid slot GPUs");
    });
    let logs = run_two_meeting_tasks(&mut manager, meet.path()).await;
    let inherited = std::env::var("CUDA_VISIBLE_DEVICES").unwrap_or_else(|_| "unset".into());
    let order = std::env::var("CUDA_DEVICE_ORDER").unwrap_or_else(|_| "unset".into());
    let mut seen_by_tasks = [seen(&logs["t1"]), seen(&logs["t2"])];
    seen_by_tasks.sort();
    let mut want = [
        "cuda=3 order=PCI_BUS_ID".to_string(),
        format!("cuda={inherited} order={order}"),
    ];
    want.sort();
    assert_eq!(seen_by_tasks, [want[0].as_str(), want[1].as_str()]);
    worker.stop().await.expect("clean shutdown");

    let mut manager = fake_manager::start(Script::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let meet = tempfile::tempdir().expect("temp dir");
    let worker = Worker::start_with(&manager, dir.path(), Some(SECRET), |config| {
        config.slots = 2;
        assert_eq!(config.slot_gpus, SlotGpus::Unpinned);
    });
    let logs = run_two_meeting_tasks(&mut manager, meet.path()).await;
    for id in ["t1", "t2"] {
        assert_eq!(seen(&logs[id]), format!("cuda={inherited} order={order}"));
        assert!(!logs[id].contains("slot GPU environment"), "{}", logs[id]);
    }
    worker.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn blender_is_told_to_render_on_the_slots_gpu() {
    let mut manager = fake_manager::start(Script::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    // A stand-in for Blender that prints the arguments it was started with.
    let bin = tempfile::tempdir().expect("temp dir");
    let fake_blender = bin.path().join("blender");
    std::fs::write(&fake_blender, "#!/bin/sh\necho \"argv: $*\"\n").expect("write script");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake_blender, std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }
    let worker = Worker::start_with(&manager, dir.path(), Some(SECRET), |config| {
        config.slots = 1;
        config.slot_gpus = "0".parse().expect("valid slot GPUs");
    });
    connected(&mut manager).await;
    let render = |args: &[&str]| {
        serde_json::json!({
            "exe": fake_blender.to_str().expect("utf-8 path"),
            "argsBefore": ["-b"],
            "blendfile": "",
            "args": args,
        })
        .to_string()
    };
    manager
        .instruct(task(
            "t1",
            1,
            &[("blender-render", &render(&["--python-expr", "pass"]))],
        ))
        .await;
    let logs = logs_until_completed(&mut manager, &["t1"]).await;
    assert!(
        logs["t1"].contains("argv: -b --python-expr pass -- --cycles-device CUDA"),
        "{}",
        logs["t1"]
    );
    // A job that chose its device keeps it.
    manager
        .instruct(task(
            "t2",
            1,
            &[(
                "blender-render",
                &render(&["--", "--cycles-device", "OPTIX"]),
            )],
        ))
        .await;
    let logs = logs_until_completed(&mut manager, &["t2"]).await;
    assert!(
        logs["t2"].contains("argv: -b -- --cycles-device OPTIX\n"),
        "{}",
        logs["t2"]
    );
    worker.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn more_slot_gpu_entries_than_slots_stop_the_worker_at_start() {
    let manager = fake_manager::start(Script::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let worker = Worker::start_with(&manager, dir.path(), Some(SECRET), |config| {
        config.slots = 2;
        config.slot_gpus = "0,1,2".parse().expect("valid syntax");
    });
    let result = worker.finished().await;
    let Err(WorkerError::InvalidConfig(message)) = result else {
        panic!("expected an invalid configuration, got {result:?}");
    };
    assert_eq!(
        message,
        "slot GPUs \"0,1,2\" has 3 entries but the worker has only 2 slot(s)"
    );
}

/// A 32×24 Cycles scene with one sample (no denoiser: Debian's Blender has none).
fn make_scene(path: &Path) {
    let script = format!(
        "import bpy\n\
         s = bpy.context.scene\n\
         s.render.engine = 'CYCLES'\n\
         s.cycles.samples = 1\n\
         s.cycles.use_denoising = False\n\
         s.render.resolution_x = 32\n\
         s.render.resolution_y = 24\n\
         s.render.resolution_percentage = 100\n\
         bpy.ops.wm.save_as_mainfile(filepath={:?})\n",
        path.display().to_string()
    );
    let output = std::process::Command::new("blender")
        .args(["-b", "--factory-startup", "--python-expr", &script])
        .output()
        .expect("blender runs");
    assert!(
        output.status.success() && path.is_file(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn real_blender_takes_the_cycles_device_of_the_slot() {
    let scene_dir = tempfile::tempdir().expect("temp dir");
    let blend = scene_dir.path().join("scene.blend");
    make_scene(&blend);
    let render = |out: &str| {
        serde_json::json!({
            "exe": "blender", "exeArgs": "-b -y --factory-startup", "blendfile": blend,
            "args": ["--render-output", format!("{}/{out}_####", scene_dir.path().display()),
                     "--render-format", "PNG", "--render-frame", "1"],
        })
        .to_string()
    };

    // A slot pinned to no GPU renders on the CPU.
    let mut manager = fake_manager::start(Script::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let worker = Worker::start_with(&manager, dir.path(), Some(SECRET), |config| {
        config.slots = 1;
        config.slot_gpus = "none".parse().expect("valid slot GPUs");
    });
    connected(&mut manager).await;
    manager
        .instruct(task("t1", 1, &[("blender-render", &render("cpu"))]))
        .await;
    let logs = logs_until_completed(&mut manager, &["t1"]).await;
    assert!(
        logs["t1"].contains("-- --cycles-device CPU"),
        "{}",
        logs["t1"]
    );
    assert!(
        logs["t1"].contains("CUDA_VISIBLE_DEVICES=-1"),
        "{}",
        logs["t1"]
    );
    let frame = scene_dir.path().join("cpu_0001.png");
    assert!(std::fs::metadata(&frame).is_ok_and(|m| m.len() > 0));
    worker.stop().await.expect("clean shutdown");

    // A slot pinned to GPU 0 makes Cycles use CUDA: it renders where the device exists
    // and refuses where it does not, instead of quietly rendering on the CPU.
    let mut manager = fake_manager::start(Script::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let worker = Worker::start_with(&manager, dir.path(), Some(SECRET), |config| {
        config.slots = 1;
        config.slot_gpus = "0".parse().expect("valid slot GPUs");
    });
    connected(&mut manager).await;
    manager
        .instruct(task("t2", 1, &[("blender-render", &render("gpu"))]))
        .await;
    let ended = manager
        .wait_for(|e| match e {
            Event::Update(u)
                if u.status == TaskStatus::Completed as i32
                    || u.status == TaskStatus::Failed as i32 =>
            {
                Some(u.clone())
            }
            _ => None,
        })
        .await;
    if let Some(failure) = &ended.failure {
        assert!(
            failure
                .last_log_lines
                .iter()
                .any(|l| l.contains("Found no Cycles device of the specified type")),
            "{failure:?}"
        );
        assert!(!scene_dir.path().join("gpu_0001.png").exists());
    } else {
        assert!(scene_dir.path().join("gpu_0001.png").is_file());
    }
    worker.stop().await.expect("clean shutdown");
}
