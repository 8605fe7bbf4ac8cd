//! `/why`'s rules (`state::blockers`) and the scheduling query (`Store::assign_tasks`) must
//! agree on which worker may take which task. Generated farms — workers with different
//! task types, RAM, GPUs and tags; jobs with worker tags, requirements and priorities;
//! failures that leave failed-by marks and blocklist entries — are checked pair by pair:
//! for every worker, the tasks the scheduling query hands it are exactly the tasks for
//! which `/why`, shown only that worker (awake, a free slot), finds no blocker other than
//! the queue order.
mod common;

use std::collections::BTreeSet;

use castanet_manager::http::why::{task_view, worker_views};
use castanet_manager::state::{TaskStatus, blockers};
use castanet_manager::store::WorkerTaskUpdate;
use common::{TestManager, authed, echo_sleep_job, start_configured};
use serde_json::{Value, json};

const GIB: u64 = 1 << 30;

/// A small deterministic generator (xorshift), so a failing farm can be rebuilt from its seed.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % sides
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.roll(100) < percent
    }
}

struct FarmWorker {
    id: String,
    task_types: Vec<String>,
}

const TAGS: [&str; 2] = ["gpu-room", "fast-disk"];

async fn register_worker(
    m: &TestManager,
    dice: &mut Dice,
    n: usize,
    tag_ids: &[String],
) -> FarmWorker {
    let name = format!("worker-{n}");
    let (id, token) = m.register(&name).await;
    let task_types: Vec<String> = match dice.roll(4) {
        0 => vec!["blender".into()],
        1 => vec!["misc".into(), "blender".into()],
        _ => vec!["misc".into()],
    };
    let gpus = dice.roll(3) as u32;
    let types: Vec<&str> = task_types.iter().map(String::as_str).collect();
    let sign_on = common::sized_sign_on(&name, &types, [8, 32, 64][dice.roll(3) as usize], gpus);
    m.grpc()
        .await
        .sign_on(authed(sign_on, &id, &token))
        .await
        .expect("signs on");
    let tags: Vec<&String> = tag_ids.iter().filter(|_| dice.chance(40)).collect();
    let (status, answer) = m
        .post(
            &format!("/api/v3/worker-mgt/workers/{id}/settags"),
            &json!({ "tag_ids": tags }),
        )
        .await;
    assert!(status < 300, "{answer}");
    FarmWorker { id, task_types }
}

fn generated_job(dice: &mut Dice, n: usize, tag_ids: &[String]) -> Value {
    let mut job = echo_sleep_job(1 + dice.roll(2) as i64, 0);
    job["name"] = json!(format!("job-{n}"));
    job["priority"] = json!(dice.roll(3) * 25);
    if dice.chance(25) {
        job["worker_tag"] = json!(tag_ids[dice.roll(tag_ids.len() as u64) as usize]);
    }
    let mut requirements = serde_json::Map::new();
    if dice.chance(30) {
        requirements.insert("min_ram_bytes".into(), json!(32 * GIB));
    }
    if dice.chance(30) {
        requirements.insert("min_gpus".into(), json!(1 + dice.roll(2)));
    }
    if dice.chance(30) {
        requirements.insert("required_tags".into(), json!([TAGS[dice.roll(2) as usize]]));
    }
    if !requirements.is_empty() {
        job["requirements"] = Value::Object(requirements);
    }
    job
}

/// Hands `worker` a task through the scheduling query and finishes it: completed (which
/// frees the tasks that depend on it) or failed (a failed-by mark and, past the threshold,
/// a blocklist entry).
async fn run_one_task(m: &TestManager, worker: &FarmWorker, outcome: TaskStatus) {
    let store = &m.manager.state.store;
    let Some(task) = store
        .assign_next_task(&worker.id, &worker.task_types)
        .await
        .expect("scheduling query")
    else {
        return;
    };
    let failed = WorkerTaskUpdate {
        worker_id: worker.id.clone(),
        task_id: task.task_id.clone(),
        lease_epoch: task.lease_epoch,
        sequence: 1,
        status: Some(outcome),
        activity: Some(format!("{outcome}")),
        steps_completed: None,
        progress: None,
        fault_class: (outcome == TaskStatus::Failed).then(|| "nonzero-exit".into()),
        failure_message: String::new(),
    };
    store
        .apply_worker_task_update(&failed)
        .await
        .expect("update applied");
}

/// Every task of every job on the farm.
async fn all_tasks(m: &TestManager) -> Vec<String> {
    let (_, jobs) = m.get("/api/v3/jobs").await;
    let mut tasks = Vec::new();
    for job in jobs["jobs"].as_array().expect("jobs") {
        let (_, answer) = m
            .get(&format!(
                "/api/v3/jobs/{}/tasks",
                job["id"].as_str().unwrap()
            ))
            .await;
        for task in answer["tasks"].as_array().expect("tasks") {
            tasks.push(task["id"].as_str().unwrap().to_string());
        }
    }
    tasks
}

/// The tasks `/why` says `worker` alone could take now.
async fn eligible_per_why(
    m: &TestManager,
    worker: &FarmWorker,
    tasks: &[String],
) -> BTreeSet<String> {
    let state = &m.manager.state;
    let mut alone = worker_views(state).await.expect("workers");
    alone.retain(|w| w.id == worker.id);
    for w in &mut alone {
        w.status = "awake".into();
        w.free_slots = Some(1);
    }
    let mut eligible = BTreeSet::new();
    for id in tasks {
        let task = state
            .store
            .get_task(id)
            .await
            .expect("task read")
            .expect("task");
        let job = state
            .store
            .get_job(&task.job_id)
            .await
            .expect("job read")
            .expect("job");
        let view = task_view(state, &task, &job).await.expect("task view");
        let found = blockers(&view, &alone);
        if found.iter().all(|b| b.rule == "queue-order") {
            eligible.insert(id.clone());
        }
    }
    eligible
}

/// The tasks the scheduling query hands `worker`, one after the other; handed back after.
async fn assigned_per_query(m: &TestManager, worker: &FarmWorker) -> BTreeSet<String> {
    let store = &m.manager.state.store;
    let mut held = Vec::new();
    while let Some(task) = store
        .assign_next_task(&worker.id, &worker.task_types)
        .await
        .expect("scheduling query")
    {
        held.push((task.task_id, task.lease_epoch));
    }
    for (task_id, epoch) in &held {
        store
            .unassign_task(task_id, *epoch)
            .await
            .expect("handed back");
    }
    held.into_iter().map(|(id, _)| id).collect()
}

async fn check_farm(seed: u64) {
    let mut dice = Dice(seed);
    let blocklist_threshold = 1 + dice.roll(2);
    let dir = tempfile::tempdir().expect("temp dir");
    let m = start_configured(dir, |config| {
        config.blocklist_threshold = blocklist_threshold;
        config.task_fail_after_softfail_count = 3;
        config.job_fail_percent = 100;
    })
    .await;
    let mut tag_ids = Vec::new();
    for name in TAGS {
        let (_, tag) = m
            .post("/api/v3/worker-mgt/tags", &json!({ "name": name }))
            .await;
        tag_ids.push(tag["id"].as_str().expect("tag id").to_string());
    }
    let mut workers = Vec::new();
    for n in 0..6 {
        workers.push(register_worker(&m, &mut dice, n, &tag_ids).await);
    }
    for n in 0..8 {
        let (status, answer) = m
            .post("/api/v3/jobs", &generated_job(&mut dice, n, &tag_ids))
            .await;
        assert_eq!(status, 200, "seed {seed}: {answer}");
    }
    for _ in 0..14 {
        let worker = &workers[dice.roll(workers.len() as u64) as usize];
        let outcome = if dice.chance(50) {
            TaskStatus::Failed
        } else {
            TaskStatus::Completed
        };
        run_one_task(&m, worker, outcome).await;
    }
    // Settle what the impossible-task check would change, so both sides read one state.
    m.manager
        .state
        .dispatcher
        .fail_impossible_tasks(&castanet_manager::store::FeasibilityScope::Farm)
        .await
        .expect("impossible-task check");
    let tasks = all_tasks(&m).await;
    let mut agreed = 0;
    for worker in &workers {
        let why = eligible_per_why(&m, worker, &tasks).await;
        let query = assigned_per_query(&m, worker).await;
        assert_eq!(
            why, query,
            "seed {seed}, worker {} ({:?}): /why says it may take the left set, the scheduling query gave it the right",
            worker.id, worker.task_types
        );
        agreed += query.len();
    }
    m.manager.shutdown().await.expect("manager stops");
    eprintln!(
        "seed {seed}: {} tasks, {agreed} worker-task pairs runnable, all agreed",
        tasks.len()
    );
}

#[tokio::test]
async fn why_and_the_scheduling_query_agree_on_generated_farms() {
    for seed in [
        0x9e37_79b9_7f4a_7c15,
        0xdead_beef_cafe_f00d,
        0x1234_5678_9abc_def1,
        0x0bad_5eed_0bad_5eed,
    ] {
        check_farm(seed).await;
    }
}
