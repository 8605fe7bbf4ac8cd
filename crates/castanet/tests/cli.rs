//! The command-line verbs and the demo, as a user runs them.
mod common;

use std::process::Command;
use std::time::Duration;

use common::{BIN, ManagerProcess, WorkerProcess};

fn castanet(manager: &str, args: &[&str]) -> (bool, String, String) {
    common::cli(manager, args)
}

#[test]
fn submit_wait_then_list_jobs_tasks_and_logs() {
    let dir = tempfile::tempdir().unwrap();
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let worker = WorkerProcess::start(&manager, &dir.path().join("w"), "cli-worker", 1);
    let url = manager.url.clone();

    let (ok, out, err) = castanet(
        &url,
        &[
            "submit",
            "echo-sleep-test",
            "--name",
            "from the cli",
            "--set",
            "message=hi there",
            "--set",
            "sleep_repeats=2",
            "--set",
            "sleep_duration_seconds=0",
            "--wait",
        ],
    );
    assert!(ok, "submit --wait succeeds:\n{out}\n{err}");
    let job_id = out
        .lines()
        .find_map(|l| l.strip_prefix("submitted job "))
        .expect("prints the job id")
        .trim()
        .to_string();
    assert!(out.contains(&format!("job {job_id} completed")), "{out}");

    let (ok, out, _) = castanet(&url, &["jobs"]);
    assert!(
        ok && out.contains(&job_id) && out.contains("from the cli") && out.contains("completed"),
        "{out}"
    );

    let (ok, out, _) = castanet(&url, &["tasks", &job_id]);
    assert!(ok, "{out}");
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{out}");
    assert!(
        rows.iter()
            .all(|r| r.contains("completed") && r.contains("cli-worker")),
        "{out}"
    );
    let echo_task = rows[0].split_whitespace().nth(1).expect("task id column");

    let (ok, out, _) = castanet(&url, &["logs", echo_task]);
    assert!(
        ok && out.contains("hi there") && out.contains("Task assigned to worker cli-worker"),
        "{out}"
    );
    // A reader that stops early (`castanet logs X | head`): no panic, a clean exit.
    for args in [
        vec!["logs", echo_task],
        vec!["jobs"],
        vec!["tasks", job_id.as_str()],
        vec!["why", echo_task],
    ] {
        let mut child = Command::new(BIN)
            .arg("--manager")
            .arg(&url)
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("castanet runs");
        drop(child.stdout.take());
        let output = child.wait_with_output().expect("castanet exits");
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && !err.contains("panicked"),
            "{args:?}: {:?}\n{err}",
            output.status
        );
    }

    // Mistakes are named, and nothing is submitted.
    let (ok, _, err) = castanet(
        &url,
        &["submit", "echo-sleep-test", "--set", "sleep_repeats=lots"],
    );
    assert!(!ok && err.contains("sleep_repeats"), "{err}");
    let (ok, _, err) = castanet(&url, &["submit", "no-such-type"]);
    assert!(!ok && err.contains("no-such-type"), "{err}");
    let (ok, _, err) = castanet(&url, &["submit", "echo-sleep-test"]);
    assert!(
        !ok && err.contains("message"),
        "a missing required setting is named: {err}"
    );
    let (_, out, _) = castanet(&url, &["jobs"]);
    assert_eq!(out.lines().count(), 2, "still only the one job:\n{out}");

    // An online backup of the running manager's database.
    let backup = dir.path().join("backup.sqlite");
    let output = Command::new(BIN)
        .arg("manager")
        .arg("--config")
        .arg(&manager.config)
        .arg("backup")
        .arg(&backup)
        .output()
        .expect("backup runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(std::fs::metadata(&backup).unwrap().len() > 0);

    worker.stop();
    manager.stop();
}

#[tokio::test]
async fn submit_places_jobs_by_worker_tag_and_requirements() {
    let dir = tempfile::tempdir().unwrap();
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let url = manager.url.clone();
    let tag: serde_json::Value = reqwest::Client::new()
        .post(format!("{url}/api/v3/worker-mgt/tags"))
        .json(&serde_json::json!({ "name": "gpu-nodes" }))
        .send()
        .await
        .expect("POST tag")
        .json()
        .await
        .expect("tag JSON");
    let base = ["submit", "echo-sleep-test", "--set", "message=hi"];
    let with = |extra: &[&str]| {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        castanet(&url, &args)
    };

    let (ok, _, err) = with(&["--tag", "no-such-tag"]);
    assert!(
        !ok && err.contains("no-such-tag") && err.contains("gpu-nodes"),
        "an unknown tag is named, with the known ones: {err}"
    );
    let (ok, _, err) = with(&["--min-ram", "16Q"]);
    assert!(!ok && err.contains("--min-ram 16Q"), "{err}");

    // A Blender job from the command line: what the add-on computes from the scene is
    // computed as it would be, and said so.
    let render = [
        "submit",
        "simple-blender-render",
        "--name",
        "cli render",
        "--paused",
        "--set",
        "frames=1-3",
        "--set",
        "blendfile=/projects/film/scene.blend",
    ];
    let (ok, _, err) = castanet(&url, &render);
    assert!(
        !ok && err.contains("\"render_output_root\" is required"),
        "without an output root nothing can be computed, and it is named: {err}"
    );
    let mut complete = render.to_vec();
    complete.extend([
        "--set",
        "render_output_root=/renders",
        "--set",
        "add_path_components=1",
    ]);
    let (ok, out, err) = castanet(&url, &complete);
    assert!(ok, "{out}\n{err}");
    assert!(
        err.contains("computed as the Blender add-on would")
            && err.contains("image_file_extension=.png"),
        "{err}"
    );
    let render_id = out
        .lines()
        .find_map(|l| l.strip_prefix("submitted job "))
        .expect("prints the job id")
        .trim();
    let render_job = common::Api::new(&url)
        .get(&format!("/api/v3/jobs/{render_id}"))
        .await;
    let settings = &render_job["settings"];
    assert_eq!(settings["image_file_extension"], ".png", "{render_job}");
    assert_eq!(settings["fps"], 24.0, "{render_job}");
    let output = settings["render_output_path"].as_str().unwrap_or_default();
    assert!(
        output.starts_with("/renders/film/cli render/") && output.ends_with("/######"),
        "{render_job}"
    );

    let (ok, out, err) = with(&[
        "--tag",
        "gpu-nodes",
        "--min-ram",
        "2G",
        "--min-gpus",
        "1",
        "--require-tag",
        "gpu-nodes",
    ]);
    assert!(ok, "{out}\n{err}");
    let job_id = out
        .lines()
        .find_map(|l| l.strip_prefix("submitted job "))
        .expect("prints the job id")
        .trim();
    let job = common::Api::new(&url)
        .get(&format!("/api/v3/jobs/{job_id}"))
        .await;
    assert_eq!(job["worker_tag"], tag["id"], "{job}");
    assert_eq!(
        job["requirements"],
        serde_json::json!({ "min_ram_bytes": 2u64 << 30, "min_gpus": 1, "required_tags": ["gpu-nodes"] }),
        "{job}"
    );
    manager.stop();
}

#[test]
fn tables_fit_long_values_logs_to_files_carry_no_colour_codes_and_scripts_dir_is_made() {
    let dir = tempfile::tempdir().unwrap();
    // The manager's log goes to a file, as with `castanet manager 2>manager.log`.
    let log = dir.path().join("manager.log");
    let mut child = Command::new(BIN)
        .args(["manager", "--config"])
        .arg(dir.path().join("castanet-manager.toml"))
        .args(["--listen", "127.0.0.1:0"])
        .env("CASTANET_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("manager starts");
    let stdout = child.stdout.take().expect("stdout");
    // Read to the end on a thread: a closed pipe must not disturb the manager.
    let (found, address) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("castanet manager listening on ") {
                let _ = found.send(url.trim().to_string());
            }
        }
    });
    let url = address
        .recv_timeout(Duration::from_secs(30))
        .expect("the manager prints its address");
    let long_name = "a job name much longer than the twenty-four characters a column once had";
    let (ok, out, err) = castanet(
        &url,
        &[
            "submit",
            "echo-sleep-test",
            "--name",
            long_name,
            "--set",
            "message=hi",
            "--paused",
        ],
    );
    assert!(ok, "{out}\n{err}");
    let (ok, out, _) = castanet(&url, &["jobs"]);
    assert!(ok, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    let column = |line: &str, word: &str| line.find(word).expect(word);
    assert_eq!(
        column(lines[0], "STATUS"),
        column(lines[1], "paused"),
        "columns line up past a long name:\n{out}"
    );
    common::signal(&child, libc::SIGTERM);
    common::wait_exit(&mut child, Duration::from_secs(20));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("INFO"), "the manager logged: {text}");
    // A first start makes the folder for custom job types the config names.
    assert!(dir.path().join("scripts").is_dir(), "scripts/ was created");
    assert!(
        !text.contains('\u{1b}'),
        "no ANSI escape codes in a log file: {text:?}"
    );
}

#[test]
fn the_demo_runs_its_sample_job_to_completion() {
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("demo");
    let mut child = Command::new(BIN)
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--tasks",
            "3",
            "--exit-when-done",
            "--dir",
        ])
        .arg(&demo_dir)
        .env("CASTANET_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("demo starts");
    let status = common::wait_exit(&mut child, Duration::from_secs(60));
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        use std::io::Read;
        let _ = stdout.read_to_string(&mut out);
    }
    assert!(status.success(), "demo exits 0:\n{out}");
    assert!(out.contains("sample job completed"), "{out}");
    // The dashboard's address is the manager's, with the root path.
    let manager_url = out
        .split_whitespace()
        .find(|word| word.starts_with("http://127.0.0.1:"))
        .expect("the manager's URL is printed");
    assert!(
        out.lines()
            .any(|line| line.trim() == format!("Web:     {manager_url}/")),
        "{out}"
    );
    assert!(demo_dir.join("castanet-manager.toml").exists());
    assert!(demo_dir.join("castanet-manager.sqlite").exists());
}

#[test]
fn jobs_lists_every_job_past_the_manager_s_page_size() {
    let dir = tempfile::tempdir().unwrap();
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let url = manager.url.clone();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    // More jobs than the manager's default page of 100; no worker, so they wait.
    let ids: Vec<String> = runtime.block_on(async {
        let api = common::Api::new(&url);
        let mut ids = Vec::new();
        for _ in 0..105 {
            ids.push(api.submit_echo_sleep(1, 0).await);
        }
        ids
    });
    let (ok, out, err) = castanet(&url, &["jobs"]);
    assert!(ok, "{err}");
    for id in &ids {
        assert!(out.contains(id.as_str()), "job {id} missing from:\n{out}");
    }
}

#[test]
fn a_manager_asked_to_stop_as_soon_as_it_listens_exits_cleanly() {
    // Scripts stop a manager right after reading its address; the handler must already be in place.
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..5 {
        ManagerProcess::start(dir.path(), "127.0.0.1:0").stop();
    }
}
