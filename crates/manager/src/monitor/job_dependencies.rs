//! Releases jobs waiting for other jobs: when a job changes (or is deleted), the waiting
//! jobs that depend on it are checked again — queued once every dependency has completed,
//! marked "on hold" when one failed, was canceled or deleted. Driven by the event bus, with
//! a full pass at start and every `FULL_PASS` in case an event was missed.
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::events::{Event, Published};

/// How often every waiting job is checked, whatever the events said.
const FULL_PASS: Duration = Duration::from_secs(60);
/// How long events are gathered before their jobs' dependents are checked.
const GATHER: Duration = Duration::from_millis(100);

pub async fn run(state: AppState, shutdown: CancellationToken) {
    let mut events = state.events.subscribe();
    let mut full_pass = tokio::time::interval(FULL_PASS);
    loop {
        // The jobs that changed; None: look at every waiting job.
        let changed: Option<BTreeSet<String>> = tokio::select! {
            () = shutdown.cancelled() => return,
            _ = full_pass.tick() => None,
            received = events.recv() => match received {
                Ok(first) => {
                    // A busy farm publishes thousands of events a second: gather a little
                    // while, then look at them together (one query, not one per event).
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(GATHER) => {}
                    }
                    match gathered(&first, &mut events) {
                        Some(ids) if ids.is_empty() => continue,
                        other => other,
                    }
                }
                Err(RecvError::Lagged(_)) => None,
                Err(RecvError::Closed) => return,
            },
        };
        if let Err(e) = settle(&state, changed).await {
            tracing::warn!("cannot check the jobs waiting for other jobs: {e}");
        }
    }
}

/// The jobs of `first` and of every event already waiting behind it; None when events were
/// missed (the receiver lagged behind).
fn gathered(
    first: &Arc<Published>,
    events: &mut broadcast::Receiver<Arc<Published>>,
) -> Option<BTreeSet<String>> {
    let mut ids = BTreeSet::new();
    note(first, &mut ids);
    loop {
        match events.try_recv() {
            Ok(more) => note(&more, &mut ids),
            Err(TryRecvError::Lagged(_)) => return None,
            Err(_) => return Some(ids),
        }
    }
}

/// Remembers the job of a job event (a change of status may release its dependents).
fn note(published: &Arc<Published>, ids: &mut BTreeSet<String>) {
    match &published.event {
        Event::Job { job_id } | Event::JobDeleted { job_id } => {
            ids.insert(job_id.clone());
        }
        _ => {}
    }
}

/// Settles the dependents of the `changed` jobs (every waiting job when None), announces the
/// ones that changed and lets the dispatcher look at the released ones.
async fn settle(
    state: &AppState,
    changed: Option<BTreeSet<String>>,
) -> Result<(), crate::store::StoreError> {
    let mut settled = Vec::new();
    match changed {
        None => settled.extend(state.store.settle_dependents(None).await?),
        Some(ids) => {
            let ids: Vec<String> = ids.into_iter().collect();
            for id in state.store.jobs_with_waiting_dependents(&ids).await? {
                settled.extend(state.store.settle_dependents(Some(&id)).await?);
            }
        }
    }
    for job_id in &settled {
        tracing::info!(job = %job_id, "dependencies of the job changed status");
    }
    let effects = crate::ops::job_actions::dependencies_settled(&settled);
    crate::ops::apply(effects, state).await;
    Ok(())
}
