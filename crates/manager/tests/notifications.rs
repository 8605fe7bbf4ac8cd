//! Notifications end to end on loopback: real HTTP receivers (one answering 500 twice, one
//! never answering), a restart between attempts, chat shapes, a worker going to error,
//! the rules API, and e-mail over STARTTLS with AUTH to a real SMTP server.
mod common;
mod notify_receivers;
mod sim_worker;

use std::sync::Arc;
use std::time::{Duration, Instant};

use castanet_manager::ManagerConfig;
use castanet_manager::monitor::{ManualClock, Monitor, MonitorSettings};
use castanet_manager::notify::{RuleInput, SmtpSecurity, SmtpSettings};
use castanet_protocol::v1::FaultClass;
use common::{TestManager, echo_sleep_job, start_configured};
use hmac::{Hmac, Mac};
use notify_receivers::{Receiver, SmtpSink};
use serde_json::{Value, json};
use sim_worker::SimWorker;

const LIMIT: Duration = Duration::from_secs(20);

fn webhook(url: &str, secret: &str, events: &[&str]) -> RuleInput {
    RuleInput {
        name: "hook".into(),
        kind: "webhook".into(),
        events: events.iter().map(|e| e.to_string()).collect(),
        url: Some(url.into()),
        secret: Some(secret.into()),
        enabled: true,
        ..Default::default()
    }
}

/// Quick retries so tests do not wait.
fn quick(config: &mut ManagerConfig, rule: RuleInput) {
    config.notify.first_retry_seconds = 0.05;
    config.notifications.push(rule);
}

fn verify(secret: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    hex::decode(hex_sig).is_ok_and(|sig| mac.verify_slice(&sig).is_ok())
}

async fn submit(m: &TestManager, body: &Value) -> String {
    let (status, job) = m.post("/api/v3/jobs", body).await;
    assert_eq!(status, 200, "{job}");
    job["id"].as_str().expect("id").to_string()
}

/// Completes every task of `job` handed to `worker`.
async fn run_to_completion(m: &TestManager, worker: &mut SimWorker, job: &str) {
    loop {
        let (_, now) = m.get(&format!("/api/v3/jobs/{job}")).await;
        if now["status"] == "completed" {
            return;
        }
        let task = worker.next_assignment().await;
        worker.complete(&task).await;
    }
}

/// Polls the delivery log until `done` holds for it, failing after `LIMIT`.
async fn deliveries_until(m: &TestManager, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + LIMIT;
    loop {
        let (status, log) = m.get("/api/v3/notifications/deliveries").await;
        assert_eq!(status, 200, "{log}");
        let deliveries = log["deliveries"].as_array().cloned().unwrap_or_default();
        if done(&deliveries) {
            return deliveries;
        }
        assert!(Instant::now() < deadline, "delivery log: {log:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn all_finished(deliveries: &[Value]) -> bool {
    !deliveries.is_empty() && deliveries.iter().all(|d| d["status"] != "pending")
}

#[tokio::test]
async fn a_webhook_answering_500_twice_gets_exactly_one_signed_delivery() {
    let receiver = Receiver::answering(&[500, 500]).await;
    let url = format!("{}/hook", receiver.url);
    let m = start_configured(tempfile::tempdir().unwrap(), |c| {
        quick(c, webhook(&url, "s3cret", &["job-completed"]))
    })
    .await;
    let mut worker = SimWorker::connect(&m, "w").await;
    let job = submit(&m, &echo_sleep_job(2, 0)).await;
    run_to_completion(&m, &mut worker, &job).await;

    let log = deliveries_until(&m, all_finished).await;
    assert_eq!(log.len(), 1, "one delivery for one transition: {log:?}");
    assert_eq!(log[0]["status"], "delivered");
    assert_eq!(log[0]["attempts"], 3);
    assert_eq!(log[0]["job_id"], job.as_str());

    let requests = receiver.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests.iter().filter(|r| r.answered == 200).count(), 1);
    for request in &requests {
        assert_eq!(request.path, "/hook");
        assert!(verify(
            "s3cret",
            &request.body,
            request.header("X-Castanet-Signature")
        ));
        assert_eq!(request.header("X-Castanet-Event"), "job-completed");
        assert_eq!(
            request.header("X-Castanet-Delivery"),
            log[0]["id"].as_str().unwrap()
        );
        let body = request.json();
        assert_eq!(body["event"], "job-completed");
        assert_eq!(body["job"]["id"], job.as_str());
        assert_eq!(body["job"]["status"], "completed");
        assert_eq!(body["delivery"], log[0]["id"]);
        assert!(
            body["job"]["url"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/jobs/{job}"))
        );
    }
    // A tampered body does not verify.
    assert!(!verify(
        "s3cret",
        b"{}",
        requests[0].header("X-Castanet-Signature")
    ));
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_restart_between_attempts_still_gives_exactly_one_delivery() {
    let receiver = Receiver::answering(&[500, 500]).await;
    let url = receiver.url.clone();
    let rule = webhook(&url, "k", &["job-completed"]);
    // The first manager waits an hour before its retry: nothing more goes out before the stop.
    let first_rule = rule.clone();
    let m = start_configured(tempfile::tempdir().unwrap(), move |c| {
        c.notify.first_retry_seconds = 3600.0;
        c.notifications.push(first_rule);
    })
    .await;
    let mut worker = SimWorker::connect(&m, "w").await;
    let job = submit(&m, &echo_sleep_job(1, 0)).await;
    run_to_completion(&m, &mut worker, &job).await;
    receiver.wait_for(1, LIMIT).await;
    deliveries_until(&m, |d| d.len() == 1 && d[0]["attempts"] == 1).await;
    drop(worker);
    let TestManager { manager, dir, .. } = m;
    manager.shutdown().await.unwrap();
    assert_eq!(receiver.requests().len(), 1, "one attempt before the stop");

    // The hour passes while the manager is down: the retry is due when it starts again.
    let moved = common::execute_on(
        &common::database_in(dir.path()),
        "UPDATE notification_deliveries SET next_attempt_at = '2000-01-01T00:00:00.000Z' \
         WHERE status = 'pending'",
    )
    .await;
    assert_eq!(moved, 1);

    let tweak = move |c: &mut ManagerConfig| quick(c, rule);
    let m = start_configured(dir, tweak).await;
    let log = deliveries_until(&m, all_finished).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["status"], "delivered");
    assert_eq!(log[0]["attempts"], 3);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests.iter().filter(|r| r.answered == 200).count(), 1);
    let ids: Vec<&str> = requests
        .iter()
        .map(|r| r.header("X-Castanet-Delivery"))
        .collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "the same delivery each time"
    );
    assert!(
        requests
            .iter()
            .all(|r| verify("k", &r.body, r.header("X-Castanet-Signature")))
    );
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_receiver_that_never_answers_does_not_hold_up_dispatch() {
    let receiver = Receiver::hanging().await;
    let url = receiver.url.clone();
    let m = start_configured(tempfile::tempdir().unwrap(), |c| {
        c.notify.timeout_seconds = 600;
        c.notify.parallel = 1;
        c.notifications.push(webhook(&url, "", &["job-completed"]));
    })
    .await;
    let mut worker = SimWorker::connect(&m, "w").await;
    let first = submit(&m, &echo_sleep_job(1, 0)).await;
    run_to_completion(&m, &mut worker, &first).await;
    receiver.wait_for(1, LIMIT).await;
    // The receiver holds the only delivery slot; jobs still run and complete.
    let second = submit(&m, &echo_sleep_job(3, 0)).await;
    run_to_completion(&m, &mut worker, &second).await;
    let log = deliveries_until(&m, |d| d.len() == 2).await;
    assert!(
        log.iter()
            .all(|d| d["status"] == "pending" && d["attempts"] == 0),
        "{log:?}"
    );
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn chat_rules_made_over_the_api_and_a_jobs_own_webhook() {
    let receiver = Receiver::answering(&[]).await;
    let m = start_configured(tempfile::tempdir().unwrap(), |c| {
        c.notify.webhook_secret = "meta-key".into();
    })
    .await;
    let mut ids = Vec::new();
    for kind in ["slack", "discord", "mattermost", "matrix"] {
        let rule = json!({
            "name": format!("{kind} channel"), "kind": kind, "events": ["job-failed"],
            "url": format!("{}/{kind}", receiver.url),
        });
        let (status, made) = m.post("/api/v3/notifications/rules", &rule).await;
        assert_eq!(status, 201, "{made}");
        ids.push(made["id"].as_str().unwrap().to_string());
    }
    // Only jobs of this submitter.
    let (status, _) = m
        .post(
            "/api/v3/notifications/rules",
            &json!({ "name": "bob's", "kind": "webhook", "events": ["job-failed"],
                     "url": format!("{}/bob", receiver.url), "submitter": "bob" }),
        )
        .await;
    assert_eq!(status, 201);

    let mut worker = SimWorker::connect(&m, "w").await;
    let mut job = echo_sleep_job(1, 0);
    job["metadata"] =
        json!({ "user.name": "alice", "notify.webhook": format!("{}/own", receiver.url) });
    let job = submit(&m, &job).await;
    let task = worker.next_assignment().await;
    worker.fail(&task, FaultClass::MissingInput).await;
    m.wait_for_job(&job, LIMIT, |j| j["status"] == "failed")
        .await;

    let requests = receiver.wait_for(5, LIMIT).await;
    let by_path = |p: &str| {
        requests
            .iter()
            .find(|r| r.path == p)
            .unwrap_or_else(|| panic!("nothing at {p}"))
            .json()
    };
    let slack = by_path("/slack");
    let text = slack["text"].as_str().unwrap();
    assert!(text.contains("Job “test job” failed"), "{text}");
    assert!(text.contains(&format!("/jobs/{job}")), "{text}");
    assert_eq!(by_path("/mattermost"), slack);
    assert_eq!(by_path("/discord")["content"], slack["text"]);
    let matrix = by_path("/matrix");
    assert_eq!(matrix["text"], slack["text"]);
    assert!(matrix["html"].as_str().unwrap().contains("<a href="));
    let own = requests.iter().find(|r| r.path == "/own").unwrap();
    assert_eq!(own.json()["event"], "job-failed");
    assert!(verify(
        "meta-key",
        &own.body,
        own.header("X-Castanet-Signature")
    ));
    assert!(requests.iter().all(|r| r.path != "/bob"), "not bob's job");

    // A test notification through a rule.
    let (status, sent) = m
        .post(
            &format!("/api/v3/notifications/rules/{}/test", ids[0]),
            &json!({}),
        )
        .await;
    assert_eq!(status, 202, "{sent}");
    let requests = receiver.wait_for(6, LIMIT).await;
    assert!(
        requests[5].json()["text"]
            .as_str()
            .unwrap()
            .contains("Test notification")
    );
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_worker_going_to_error_is_notified() {
    let receiver = Receiver::answering(&[]).await;
    let url = receiver.url.clone();
    let m = start_configured(tempfile::tempdir().unwrap(), |c| {
        quick(c, webhook(&url, "", &["worker-error"]))
    })
    .await;
    let clock = Arc::new(ManualClock::starting_now());
    let monitor = Monitor::new(
        m.manager.state.clone(),
        clock.clone(),
        MonitorSettings {
            task_timeout: Duration::from_secs(600),
            worker_timeout: Duration::from_secs(60),
            startup_grace: Duration::ZERO,
        },
    );
    let worker = SimWorker::connect(&m, "doomed").await;
    let id = worker.id.clone();
    drop(worker);
    let deadline = Instant::now() + LIMIT;
    while m.manager.state.dispatcher.is_connected(&id) {
        assert!(
            Instant::now() < deadline,
            "the manager notices the closed stream"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    clock.advance(Duration::from_secs(120));
    monitor.check_once().await;
    let requests = receiver.wait_for(1, LIMIT).await;
    let body = requests[0].json();
    assert_eq!(body["event"], "worker-error");
    assert_eq!(body["worker"]["id"], id.as_str());
    assert_eq!(body["worker"]["name"], "doomed");
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_rules_api_names_bad_fields_keeps_secrets_and_guards_config_rules() {
    let m = start_configured(tempfile::tempdir().unwrap(), |c| {
        c.notifications.push(webhook(
            "http://127.0.0.1:9/x",
            "file-secret",
            &["job-failed"],
        ))
    })
    .await;
    for (body, field) in [
        (
            json!({ "name": "a", "kind": "webhook", "events": ["job-failed"], "url": "nope" }),
            "url",
        ),
        (
            json!({ "name": "a", "kind": "pager", "events": ["job-failed"], "url": "http://h" }),
            "kind",
        ),
        (
            json!({ "name": "a", "kind": "slack", "events": ["job-done"], "url": "http://h" }),
            "events",
        ),
        (
            json!({ "name": "a", "kind": "email", "events": ["job-failed"], "email_to": ["x@y.z"] }),
            "kind",
        ),
        (
            json!({ "name": "", "kind": "slack", "events": ["job-failed"], "url": "http://h" }),
            "name",
        ),
    ] {
        let (status, answer) = m.post("/api/v3/notifications/rules", &body).await;
        assert_eq!(status, 400, "{answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("{field}:")),
            "{message} names {field}"
        );
    }
    let (_, list) = m.get("/api/v3/notifications/rules").await;
    assert_eq!(
        list["rules"].as_array().unwrap().len(),
        1,
        "nothing stored: {list}"
    );
    let config_rule = &list["rules"][0];
    assert_eq!(config_rule["id"], "config-1");
    assert_eq!(config_rule["read_only"], true);
    assert_eq!(config_rule["secret_set"], true);
    assert!(config_rule.get("secret").is_none());

    let rule = json!({ "name": "r", "kind": "webhook", "events": ["job-completed"],
                       "url": "http://127.0.0.1:9/r", "secret": "hidden" });
    let (status, made) = m.post("/api/v3/notifications/rules", &rule).await;
    assert_eq!(status, 201);
    assert!(
        made.get("secret").is_none() && made["secret_set"] == true,
        "{made}"
    );
    let id = made["id"].as_str().unwrap();
    let path = format!("/api/v3/notifications/rules/{id}");
    let changed = json!({ "name": "renamed", "kind": "webhook", "events": ["job-failed"],
                          "url": "http://127.0.0.1:9/r" });
    let answer = m
        .http
        .put(format!("{}{path}", m.url))
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let (_, got) = m.get(&path).await;
    assert_eq!(got["name"], "renamed");
    assert_eq!(
        got["secret_set"], true,
        "a missing secret keeps the stored one"
    );
    let stored = m
        .manager
        .state
        .store
        .notification_rule(id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.secret, "hidden");

    let answer = m
        .http
        .put(format!("{}/api/v3/notifications/rules/config-1", m.url))
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 409);
    let (status, _) = m.get("/api/v3/notifications/deliveries?status=lost").await;
    assert_eq!(status, 400);
    let answer = m
        .http
        .delete(format!("{}{path}", m.url))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 204);
    let (status, _) = m.get(&path).await;
    assert_eq!(status, 404);
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_email_goes_to_a_real_smtp_server_over_starttls_with_auth() {
    let sink = SmtpSink::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mail-ca.pem"), &sink.cert_pem).unwrap();
    let port = sink.port;
    let m = start_configured(dir, |c| {
        c.notify.smtp = Some(SmtpSettings {
            host: "localhost".into(),
            port,
            security: SmtpSecurity::Starttls,
            username: "farm".into(),
            password: "mail-pass".into(),
            from: "Castanet <farm@example.com>".into(),
            ca_file: Some("mail-ca.pem".into()),
        });
        quick(
            c,
            RuleInput {
                name: "lead".into(),
                kind: "email".into(),
                events: vec!["job-completed".into()],
                email_to: vec!["lead@example.com".into()],
                enabled: true,
                ..Default::default()
            },
        );
    })
    .await;
    let mut worker = SimWorker::connect(&m, "w").await;
    let job = submit(&m, &echo_sleep_job(1, 0)).await;
    run_to_completion(&m, &mut worker, &job).await;
    let mails = sink.wait_for(1, LIMIT).await;
    let mail = &mails[0];
    assert!(mail.tls, "STARTTLS before the mail");
    assert_eq!(mail.auth, Some(("farm".into(), "mail-pass".into())));
    assert_eq!(mail.from, "<farm@example.com>");
    assert_eq!(mail.to, vec!["<lead@example.com>".to_string()]);
    assert!(mail.data.contains("Subject:"), "{}", mail.data);
    assert!(mail.data.contains(&format!("/jobs/{job}")), "{}", mail.data);
    let log = deliveries_until(&m, all_finished).await;
    assert_eq!(log[0]["status"], "delivered", "{log:?}");
    m.manager.shutdown().await.unwrap();
}
