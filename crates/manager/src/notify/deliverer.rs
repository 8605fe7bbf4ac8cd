//! Sends the outbox: due deliveries go out a few at a time (`parallel`), each attempt
//! bounded by the timeout; a failed attempt is retried after a doubling wait until
//! `max_attempts`, then given up. Everything is read from and written to the database,
//! so a restart resumes where the last run stopped.
use std::collections::HashSet;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::send;
use crate::AppState;
use crate::store::{AttemptOutcome, DeliveryRow, format_time, now};

/// How often old deliveries are removed from the log.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// The delivery log keeps at most this many finished deliveries.
const KEEP_FINISHED: i64 = 10_000;
/// The wait after a database error, before the outbox is read again.
const AFTER_STORE_ERROR: Duration = Duration::from_secs(5);
/// The longest sleep with nothing due (a wake-up comes with anything new).
const IDLE: Duration = Duration::from_secs(3600);

pub async fn run(state: AppState, shutdown: CancellationToken) {
    let parallel = state.notifier.settings().parallel.max(1);
    let mut in_flight: JoinSet<String> = JoinSet::new();
    let mut flying: HashSet<String> = HashSet::new();
    let mut pruned_at: Option<Instant> = None;
    loop {
        if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            prune(&state).await;
            pruned_at = Some(Instant::now());
        }
        let time = now();
        let mut wait = IDLE;
        if flying.len() < parallel {
            match state
                .store
                .due_deliveries(&time, (parallel + flying.len()) as i64)
                .await
            {
                Ok(due) => {
                    for row in due {
                        if flying.len() >= parallel {
                            break;
                        }
                        if flying.contains(&row.id) {
                            continue;
                        }
                        flying.insert(row.id.clone());
                        in_flight.spawn(deliver(state.clone(), row));
                    }
                }
                Err(e) => {
                    tracing::warn!("notifications: cannot read the outbox: {e}");
                    wait = AFTER_STORE_ERROR;
                }
            }
        }
        if wait == IDLE {
            match state.store.next_delivery_due_after(&time).await {
                Ok(Some(next)) => wait = until(&next),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!("notifications: cannot read the outbox: {e}");
                    wait = AFTER_STORE_ERROR;
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => {
                // Unfinished attempts are not recorded: they go out again after a restart.
                in_flight.abort_all();
                return;
            }
            () = state.notifier.woken() => {}
            () = tokio::time::sleep(wait) => {}
            Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                if let Ok(id) = done {
                    flying.remove(&id);
                } else {
                    // A panicked attempt: forget them all and read the outbox afresh.
                    flying.retain(|_| false);
                    in_flight.abort_all();
                }
            }
        }
    }
}

/// How long until the stored time `at` (a little after, so it is due when read again).
fn until(at: &str) -> Duration {
    match chrono::DateTime::parse_from_rfc3339(at) {
        Ok(at) => {
            (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
                .to_std()
                .unwrap_or_default()
                + Duration::from_millis(2)
        }
        Err(_) => AFTER_STORE_ERROR,
    }
}

/// One attempt at `row`, recorded; returns its id.
async fn deliver(state: AppState, row: DeliveryRow) -> String {
    let notifier = &state.notifier;
    let settings = notifier.settings();
    let attempts = u32::try_from(row.attempts)
        .unwrap_or(u32::MAX)
        .saturating_add(1);
    let result = match notifier.secret_for(&state.store, &row.rule_id).await {
        Ok(Some(secret)) => send::attempt(notifier.http(), settings, &row, &secret).await,
        Ok(None) => {
            record(
                &state,
                &row,
                AttemptOutcome::Failed {
                    error: "its rule was removed",
                },
            )
            .await;
            return row.id;
        }
        Err(e) => Err(format!("cannot read the rule: {e}")),
    };
    match result {
        Ok(()) => {
            tracing::info!(delivery = %row.id, event = %row.event, target = %row.target, attempts, "notification delivered");
            record(&state, &row, AttemptOutcome::Delivered).await;
        }
        Err(error) if attempts >= settings.max_attempts => {
            tracing::warn!(delivery = %row.id, target = %row.target, attempts, "notification given up: {error}");
            record(&state, &row, AttemptOutcome::Failed { error: &error }).await;
        }
        Err(error) => {
            let next = chrono::Utc::now()
                + chrono::TimeDelta::from_std(settings.backoff(attempts)).unwrap_or_default();
            tracing::info!(delivery = %row.id, target = %row.target, attempts, "notification failed, will retry: {error}");
            let next_attempt_at = format_time(next);
            record(
                &state,
                &row,
                AttemptOutcome::Retry {
                    next_attempt_at: &next_attempt_at,
                    error: &error,
                },
            )
            .await;
        }
    }
    row.id
}

async fn record(state: &AppState, row: &DeliveryRow, outcome: AttemptOutcome<'_>) {
    if let Err(e) = state.store.record_delivery_attempt(&row.id, outcome).await {
        tracing::warn!(delivery = %row.id, "notifications: cannot record an attempt: {e}");
    }
}

async fn prune(state: &AppState) {
    let days = i64::try_from(state.notifier.settings().keep_days).unwrap_or(i64::MAX / 2);
    let cutoff = chrono::Utc::now() - chrono::TimeDelta::try_days(days).unwrap_or_default();
    match state
        .store
        .prune_notifications(&format_time(cutoff), KEEP_FINISHED)
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!("notifications: removed {n} old deliveries from the log"),
        Err(e) => tracing::warn!("notifications: cannot prune the delivery log: {e}"),
    }
}
