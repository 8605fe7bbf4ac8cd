//! Turns job and worker changes into deliveries. Job events fire on every change of a job
//! (progress too), so this reads the status from the store and acts only on transitions:
//! a job into completed, failed or awaiting-approval, a worker into error. The transition
//! and its deliveries commit together, keyed by the subject's transition number, so a
//! transition looked at twice (a restart, a catch-up pass) is enqueued once.
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_util::sync::CancellationToken;

use super::payload::{job_metadata, job_payload, worker_payload};
use super::rules::{EventKind, rules_from_metadata};
use crate::AppState;
use crate::events::Event;
use crate::store::{NewDelivery, StoreResult};

/// How long events are gathered before their jobs and workers are looked at.
const GATHER: Duration = Duration::from_millis(100);
/// Jobs changed this recently are checked for missed transitions (at start, after lag).
const CATCH_UP_WINDOW: chrono::TimeDelta = chrono::TimeDelta::hours(1);
/// The cache of last seen statuses is dropped (and rebuilt from the store) beyond this.
const MAX_CACHED: usize = 50_000;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Subject {
    Job(String),
    Worker(String),
}

pub async fn run(state: AppState, shutdown: CancellationToken) {
    let mut events = state.events.subscribe();
    let mut seen: HashMap<String, String> = HashMap::new();
    catch_up(&state, &mut seen).await;
    loop {
        let changed = tokio::select! {
            () = shutdown.cancelled() => return,
            received = events.recv() => match received {
                Ok(first) => {
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(GATHER) => {}
                    }
                    let mut subjects = BTreeSet::new();
                    note(&first.event, &mut subjects, &mut seen);
                    let mut lagged = false;
                    loop {
                        match events.try_recv() {
                            Ok(more) => note(&more.event, &mut subjects, &mut seen),
                            Err(TryRecvError::Lagged(_)) => { lagged = true; break; }
                            Err(_) => break,
                        }
                    }
                    (!lagged).then_some(subjects)
                }
                Err(RecvError::Lagged(_)) => None,
                Err(RecvError::Closed) => return,
            },
        };
        match changed {
            Some(subjects) => {
                for subject in subjects {
                    if let Err(e) = look_at(&state, &subject, &mut seen).await {
                        tracing::warn!("notifications: cannot look at {subject:?}: {e}");
                    }
                }
            }
            None => catch_up(&state, &mut seen).await,
        }
        if seen.len() > MAX_CACHED {
            seen.clear();
        }
    }
}

fn note(event: &Event, subjects: &mut BTreeSet<Subject>, seen: &mut HashMap<String, String>) {
    match event {
        Event::Job { job_id } => {
            subjects.insert(Subject::Job(job_id.clone()));
        }
        Event::Worker { worker_id } => {
            subjects.insert(Subject::Worker(worker_id.clone()));
        }
        Event::JobDeleted { job_id } => {
            seen.remove(&format!("job:{job_id}"));
        }
        _ => {}
    }
}

/// Looks at every recently changed job and every worker whose status the notifier has
/// not recorded: catches transitions whose events were missed.
async fn catch_up(state: &AppState, seen: &mut HashMap<String, String>) {
    let since = crate::store::format_time(chrono::Utc::now() - CATCH_UP_WINDOW);
    let jobs = state.store.jobs_with_unseen_status(&since).await;
    let workers = state.store.workers_with_unseen_status().await;
    let subjects = match (jobs, workers) {
        (Ok(jobs), Ok(workers)) => jobs
            .into_iter()
            .map(Subject::Job)
            .chain(workers.into_iter().map(Subject::Worker)),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!("notifications: cannot catch up on missed changes: {e}");
            return;
        }
    };
    seen.clear();
    for subject in subjects.collect::<Vec<_>>() {
        if let Err(e) = look_at(state, &subject, seen).await {
            tracing::warn!("notifications: cannot look at {subject:?}: {e}");
        }
    }
}

async fn look_at(
    state: &AppState,
    subject: &Subject,
    seen: &mut HashMap<String, String>,
) -> StoreResult<()> {
    let notifier = &state.notifier;
    let (key, status, event, deliveries) = match subject {
        Subject::Job(id) => {
            let key = format!("job:{id}");
            let Some(job) = state.store.get_job(id).await? else {
                seen.remove(&key);
                return Ok(());
            };
            if seen.get(&key) == Some(&job.status) {
                return Ok(());
            }
            let event = EventKind::of_job_status(&job.status);
            let mut deliveries = Vec::new();
            if let Some(event) = event {
                let metadata = job_metadata(&job);
                let mut rules = notifier.rules(&state.store).await?;
                if notifier.settings().metadata_rules {
                    rules.extend(rules_from_metadata(
                        id,
                        &metadata,
                        &notifier.settings().webhook_secret,
                        notifier.email_possible(),
                    ));
                }
                let origin = notifier.origin();
                let time = crate::store::now();
                for rule in rules.iter().filter(|r| r.wants_job(event, &metadata)) {
                    let delivery_id = uuid::Uuid::new_v4().to_string();
                    let body = job_payload(&origin, &delivery_id, event, &job, &time);
                    deliveries.push(new_delivery(delivery_id, rule, event, &key, body));
                }
                for d in &mut deliveries {
                    d.job_id = Some(id.clone());
                }
            }
            (key, job.status, event, deliveries)
        }
        Subject::Worker(id) => {
            let key = format!("worker:{id}");
            let Some(worker) = state.store.get_worker(id).await? else {
                seen.remove(&key);
                return Ok(());
            };
            if seen.get(&key) == Some(&worker.status) {
                return Ok(());
            }
            let event = EventKind::of_worker_status(&worker.status);
            let mut deliveries = Vec::new();
            if let Some(event) = event {
                let origin = notifier.origin();
                let time = crate::store::now();
                for rule in notifier.rules(&state.store).await?.iter() {
                    if rule.wants_worker(event) {
                        let delivery_id = uuid::Uuid::new_v4().to_string();
                        let body = worker_payload(&origin, &delivery_id, event, &worker, &time);
                        let mut d = new_delivery(delivery_id, rule, event, &key, body);
                        d.worker_id = Some(id.clone());
                        deliveries.push(d);
                    }
                }
            }
            (key, worker.status, event, deliveries)
        }
    };
    let enqueued = state
        .store
        .record_notification_transition(&key, &status, event.is_some(), &deliveries)
        .await?;
    if enqueued > 0 {
        tracing::debug!(subject = %key, status, enqueued, "notifications enqueued");
        notifier.wake();
    }
    seen.insert(key, status);
    Ok(())
}

fn new_delivery(
    id: String,
    rule: &super::Rule,
    event: EventKind,
    subject: &str,
    body: serde_json::Value,
) -> NewDelivery {
    NewDelivery {
        id,
        dedupe_base: format!("{}:{}:{subject}", rule.id, event.as_str()),
        rule_id: rule.id.clone(),
        rule_name: rule.name.clone(),
        kind: rule.kind.as_str().into(),
        target: rule.target(),
        event: event.as_str().into(),
        job_id: None,
        worker_id: None,
        payload: body.to_string(),
    }
}
