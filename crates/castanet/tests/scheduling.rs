//! Scheduling limits through the real binaries: a manager with a licence pool, three worker
//! processes with two slots each, jobs submitted and changed with the `castanet` CLI. A
//! licence job never runs more than the pool holds; a job that depends on it starts only
//! once it completed; the CLI shows pools, why a task waits, and completion estimates.
mod common;

use std::time::{Duration, Instant};

use common::{Api, ManagerProcess, WorkerProcess};
use serde_json::Value;

use common::cli as castanet;

fn submitted_id(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("submitted job "))
        .expect("prints the job id")
        .trim()
        .to_string()
}

fn count(tasks: &[Value], status: &str) -> usize {
    tasks.iter().filter(|t| t["status"] == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_licence_pool_and_a_job_dependency_hold_with_real_workers() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("castanet-manager.toml"),
        "registration_secret = \"scheduling\"\n[resources]\nlicence = 2\n",
    )
    .expect("config");
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let url = manager.url.clone();
    let api = Api::new(&url);
    let workers: Vec<WorkerProcess> = (1..=3)
        .map(|n| {
            let name = format!("worker-{n}");
            WorkerProcess::start(&manager, &dir.path().join(&name), &name, 2)
        })
        .collect();
    api.wait_connected(3, Duration::from_secs(30)).await;

    let (ok, out, err) = castanet(&url, &["resources"]);
    assert!(
        ok && out.contains("licence") && out.contains('2'),
        "{out}{err}"
    );
    // An unknown pool is refused, naming it; nothing is stored.
    let (ok, _, err) = castanet(
        &url,
        &[
            "submit",
            "echo-sleep-test",
            "--set",
            "message=x",
            "--resource",
            "arnold",
        ],
    );
    assert!(!ok && err.contains("arnold"), "{err}");

    let (ok, out, err) = castanet(
        &url,
        &[
            "submit",
            "echo-sleep-test",
            "--name",
            "licensed",
            "--set",
            "message=licensed",
            "--set",
            "sleep_repeats=6",
            "--set",
            "sleep_duration_seconds=1",
            "--resource",
            "licence=1",
        ],
    );
    assert!(ok, "{out}{err}");
    let licensed = submitted_id(&out);
    let (ok, out, err) = castanet(
        &url,
        &[
            "submit",
            "echo-sleep-test",
            "--name",
            "after",
            "--set",
            "message=after",
            "--set",
            "sleep_repeats=2",
            "--set",
            "sleep_duration_seconds=0",
            "--depends-on",
            &licensed,
            "--max-workers",
            "1",
        ],
    );
    assert!(ok, "{out}{err}");
    let after = submitted_id(&out);
    let job = api.get(&format!("/api/v3/jobs/{after}")).await;
    assert_eq!(job["status"], "waiting-for-dependencies", "{job}");
    let waiting_task = api.tasks(&after).await[0]["id"]
        .as_str()
        .expect("task id")
        .to_string();
    let (ok, out, _) = castanet(&url, &["why", &waiting_task]);
    assert!(
        ok && out.contains("[job-dependency]") && out.contains(&licensed),
        "{out}"
    );

    // Watch until both are done: never more than 2 licence tasks at once, nothing of the
    // dependent job before the first completed, and an estimate once tasks have finished.
    let deadline = Instant::now() + Duration::from_secs(90);
    let (mut most, mut estimated) = (0, false);
    loop {
        let first = api.tasks(&licensed).await;
        let running = count(&first, "active");
        most = most.max(running);
        assert!(running <= 2, "{running} licence tasks at once");
        let in_use = api.get("/api/v3/resources").await["pools"][0]["in_use"]
            .as_u64()
            .unwrap_or(99);
        assert!(in_use <= 2, "{in_use} licences in use");
        let first_done = count(&first, "completed") == first.len();
        let second = api.tasks(&after).await;
        let started = second.len() - count(&second, "queued");
        assert!(
            first_done || started == 0,
            "the dependent job started before its dependency completed"
        );
        if !first_done && count(&first, "completed") > 0 && !estimated {
            let (ok, out, _) = castanet(&url, &["jobs"]);
            let line = out.lines().find(|l| l.contains(&licensed)).unwrap_or("");
            estimated = ok && !line.trim_end().ends_with('—') && out.contains("farm done ≈");
        }
        if count(&second, "completed") == second.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "jobs did not finish: {first:?} {second:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(most, 2, "the pool's two licences were used");
    assert!(
        estimated,
        "`castanet jobs` showed an estimate while the job ran"
    );
    // Changing the dependencies of a finished job is refused with the reason.
    let (ok, _, err) = castanet(&url, &["job", "depend", &after, "--on", &licensed]);
    assert!(
        !ok && err.contains("409") && err.contains("completed"),
        "{err}"
    );

    for worker in workers {
        worker.stop();
    }
    manager.stop();
}
