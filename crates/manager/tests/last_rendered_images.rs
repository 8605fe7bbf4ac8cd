//! `GET /api/v3/jobs/last-rendered-images`: the newest preview of many jobs in one answer,
//! fed by real preview uploads over gRPC.
mod common;
mod sim_worker;

use castanet_protocol::v1;
use common::{TestManager, authed, echo_sleep_job};
use serde_json::Value;
use sim_worker::SimWorker;

async fn upload(worker: &mut SimWorker, task: &v1::AssignTask, image: Vec<u8>) {
    let preview = v1::LastRendered {
        task_id: task.task_id.clone(),
        lease_epoch: task.lease_epoch,
        mime_type: "image/jpeg".into(),
        image,
        ..Default::default()
    };
    worker
        .client
        .upload_last_rendered(authed(preview, &worker.id, &worker.token))
        .await
        .expect("preview accepted");
}

async fn submit(m: &TestManager) -> String {
    let (status, job) = m.post("/api/v3/jobs", &echo_sleep_job(1, 0)).await;
    assert_eq!(status, 200, "{job}");
    job["id"].as_str().expect("job id").to_string()
}

fn images(answer: &Value) -> Vec<(String, String, String)> {
    answer["images"]
        .as_array()
        .expect("images array")
        .iter()
        .map(|i| {
            let field = |k: &str| i[k].as_str().expect(k).to_string();
            (field("job_id"), field("image"), field("updated"))
        })
        .collect()
}

/// Waits until the wall clock has passed `instant` (RFC 3339 with milliseconds), so the
/// next stored time is later than it.
async fn clock_past(instant: &str) {
    while chrono::Utc::now()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        .as_str()
        <= instant
    {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn many_jobs_previews_in_one_answer_newest_first() {
    let m = common::start().await;
    let colours = tempfile::tempdir().expect("temp dir");
    let jobs = [submit(&m).await, submit(&m).await, submit(&m).await];
    let ids = jobs.join(",");
    let (status, answer) = m
        .get(&format!("/api/v3/jobs/last-rendered-images?ids={ids}"))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert!(images(&answer).is_empty(), "no previews yet: {answer}");

    let mut worker = SimWorker::connect(&m, "painter").await;
    let first = worker.next_assignment().await;
    let red = common::jpeg(colours.path(), "red", "16x16");
    upload(&mut worker, &first, red.clone()).await;
    let (_, answer) = m
        .get(&format!("/api/v3/jobs/last-rendered-images?ids={ids}"))
        .await;
    let shown = images(&answer);
    assert_eq!(shown.len(), 1, "{answer}");
    let (first_job, image, first_updated) = shown[0].clone();
    assert!(jobs.contains(&first_job));
    assert_eq!(
        image,
        format!(
            "/job-files/job-{}/{first_job}/last-rendered.jpg",
            &first_job[..4]
        )
    );
    let served = m
        .http
        .get(format!("{}{image}", m.url))
        .send()
        .await
        .expect("image served");
    assert_eq!(served.status(), 200);
    assert_eq!(served.bytes().await.expect("body").as_ref(), red.as_slice());

    // A second job's preview comes later and is listed first.
    let mut second = first.clone();
    while second.job_id == first.job_id {
        worker.complete(&second).await;
        second = worker.next_assignment().await;
    }
    clock_past(&first_updated).await;
    upload(
        &mut worker,
        &second,
        common::jpeg(colours.path(), "blue", "16x16"),
    )
    .await;
    let (_, answer) = m
        .get(&format!("/api/v3/jobs/last-rendered-images?ids={ids}"))
        .await;
    let shown = images(&answer);
    assert_eq!(shown.len(), 2, "{answer}");
    assert_ne!(shown[0].0, first_job, "newest first: {answer}");
    assert_eq!(
        shown[1],
        (first_job.clone(), image.clone(), first_updated.clone())
    );
    let (_, newest) = m.get("/api/v3/jobs/last-rendered-images?limit=1").await;
    assert_eq!(images(&newest), vec![shown[0].clone()]);

    // Replacing a job's image moves its `updated`, the client's cache-buster.
    let second_updated = shown[0].2.clone();
    clock_past(&second_updated).await;
    let second_job = shown[0].0.clone();
    upload(
        &mut worker,
        &second,
        common::jpeg(colours.path(), "green", "16x16"),
    )
    .await;
    let (_, answer) = m.get("/api/v3/jobs/last-rendered-images").await;
    let shown = images(&answer);
    assert_eq!(shown.len(), 2, "{answer}");
    assert_eq!(shown[0].0, second_job, "{answer}");
    assert!(shown[0].2 > second_updated, "{answer}");
}

#[tokio::test]
async fn bad_requests_are_named() {
    let m = common::start().await;
    for (query, says) in [
        ("ids=not-a-uuid", "\"not-a-uuid\" is not a UUID"),
        ("limit=0", "limit must be between 1 and 1000"),
        ("limit=1001", "limit must be between 1 and 1000"),
        ("limit=many", "limit"),
        (
            "ids=00000000-0000-0000-0000-000000000000&limit=3",
            "either ids or limit",
        ),
    ] {
        let (status, answer) = m
            .get(&format!("/api/v3/jobs/last-rendered-images?{query}"))
            .await;
        assert_eq!(status, 400, "{query}: {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{query}: {answer}");
    }
    let too_many = (0..1001)
        .map(|i| format!("00000000-0000-0000-0000-{i:012}"))
        .collect::<Vec<_>>()
        .join(",");
    let (status, answer) = m
        .get(&format!("/api/v3/jobs/last-rendered-images?ids={too_many}"))
        .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or_default()
            .contains("at most 1000")
    );
}
