//! Audit-log retention with a hand-moved clock: entries older than the limit are deleted,
//! newer ones stay, and nothing goes while the rule is off.
mod common;

use std::time::Duration;

use castanet_manager::monitor::{Clock, ManualClock, RetentionSettings, retention};
use common::{TestManager, echo_sleep_job, start};

const DAY: Duration = Duration::from_secs(24 * 3600);

/// Submits a job (an audited change); returns the audit entries, newest first.
async fn audited_change(m: &TestManager) -> Vec<serde_json::Value> {
    let (status, job) = m.post("/api/v3/jobs", &echo_sleep_job(0, 0)).await;
    assert_eq!(status, 200, "{job}");
    audit_entries(m).await
}

async fn audit_entries(m: &TestManager) -> Vec<serde_json::Value> {
    let (status, audit) = m.get("/api/v3/audit").await;
    assert_eq!(status, 200, "{audit}");
    audit["entries"].as_array().unwrap().clone()
}

fn at(entry: &serde_json::Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(entry["at"].as_str().unwrap())
        .unwrap()
        .to_utc()
}

#[tokio::test]
async fn audit_entries_older_than_the_limit_are_deleted_and_newer_ones_stay() {
    let m = start().await;
    let clock = ManualClock::starting_now();
    let first = audited_change(&m).await;
    assert_eq!(first.len(), 1, "{first:?}");
    // The second change must be recorded strictly later (the stored time has milliseconds).
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while castanet_manager::store::now() == first[0]["at"].as_str().unwrap() {
        assert!(std::time::Instant::now() < deadline);
        tokio::task::yield_now().await;
    }
    let both = audited_change(&m).await;
    assert_eq!(both.len(), 2);
    let newest = both[0].clone();

    let off = RetentionSettings::default();
    let next_year = ManualClock::starting_now();
    next_year.advance(365 * DAY);
    let report = retention::check_once(&m.manager.state, &next_year, &off).await;
    assert_eq!(report.audit_entries_deleted, 0);

    // Thirty days after the newest entry was recorded, the older one is past the limit.
    let settings = RetentionSettings {
        audit_log_max_age: Some(30 * DAY),
        ..Default::default()
    };
    let report = retention::check_once(&m.manager.state, &clock, &settings).await;
    assert_eq!(report.audit_entries_deleted, 0);
    let until_newest = (at(&newest) - clock.now()).to_std().unwrap_or_default();
    clock.advance(30 * DAY + until_newest);
    let report = retention::check_once(&m.manager.state, &clock, &settings).await;
    assert_eq!(report.audit_entries_deleted, 1);
    assert_eq!(audit_entries(&m).await, [newest]);
    clock.advance(Duration::from_millis(1));
    let report = retention::check_once(&m.manager.state, &clock, &settings).await;
    assert_eq!(report.audit_entries_deleted, 1);
    assert!(audit_entries(&m).await.is_empty());
}
