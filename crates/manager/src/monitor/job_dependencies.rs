//! Releases jobs waiting for other jobs: when a job changes (or is deleted), the waiting
//! jobs that depend on it are checked again — queued once every dependency has completed,
//! marked "on hold" when one failed, was canceled or deleted. Driven by the event bus, with
//! a full pass at start and every `FULL_PASS` in case an event was missed.
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::events::{Event, Published};

/// How often every waiting job is checked, whatever the events said.
const FULL_PASS: Duration = Duration::from_secs(60);

pub async fn run(state: AppState, shutdown: CancellationToken) {
    let mut events = state.events.subscribe();
    let mut full_pass = tokio::time::interval(FULL_PASS);
    loop {
        let changed: Option<BTreeSet<String>> = tokio::select! {
            () = shutdown.cancelled() => return,
            _ = full_pass.tick() => None,
            received = events.recv() => match received {
                Ok(first) => {
                    let mut ids = BTreeSet::new();
                    note(&first, &mut ids);
                    // Everything already published, in one go.
                    while let Ok(more) = events.try_recv() {
                        note(&more, &mut ids);
                    }
                    if ids.is_empty() {
                        continue;
                    }
                    Some(ids)
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
    if settled.is_empty() {
        return Ok(());
    }
    for job_id in &settled {
        tracing::info!(job = %job_id, "dependencies of the job changed status");
        state.events.publish(Event::job(job_id));
    }
    state.dispatcher.kick();
    state.dispatcher.check_feasibility();
    Ok(())
}
