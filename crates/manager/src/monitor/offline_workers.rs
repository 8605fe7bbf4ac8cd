//! Auto-removal of workers that have been away too long (a Flamenco TODO): a worker not
//! connected and not seen for the configured time is deleted as if by an admin — its
//! token stops working, its history stays. If it comes back with the registration
//! secret it registers again as a new worker.
use std::time::Duration;

use crate::AppState;
use crate::ops;
use crate::store::StoreError;

/// Deletes the workers not seen since `now - max_age` and not connected; returns their ids.
pub async fn remove(
    state: &AppState,
    max_age: Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<String>, StoreError> {
    let Ok(max_age) = chrono::Duration::from_std(max_age) else {
        return Ok(Vec::new());
    };
    let cutoff = crate::store::format_time(now - max_age);
    let mut removed = Vec::new();
    for (id, name) in state.store.workers_away_since(&cutoff).await? {
        // Last-seen times are refreshed only while timeouts are on: trust the connection.
        if state.dispatcher.is_connected(&id) {
            continue;
        }
        let reason = "the worker was offline too long and was removed";
        let Some(effects) = ops::worker_sessions::delete_worker(state, &id, reason).await? else {
            continue;
        };
        ops::apply(effects, state).await;
        tracing::info!(worker = %name, "removed worker not seen since before {cutoff}");
        removed.push(id);
    }
    Ok(removed)
}
