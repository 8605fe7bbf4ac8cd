//! Requests about workers from the REST API and the sleep schedules: worker tags, status
//! requests and sleep schedules. Each makes one store call and returns what follows it as
//! [`Effects`]; delivering a status request to the worker is `worker_status::settle`'s.
use super::Effects;
use crate::AppState;
use crate::store::{SleepScheduleRow, Store, StoreError};

/// The worker's tags decide which tagged jobs it may run: the dispatcher looks again.
pub async fn set_worker_tags(
    store: &Store,
    worker_id: &str,
    tag_ids: &[String],
) -> Result<Effects, StoreError> {
    store.set_worker_tags(worker_id, tag_ids).await?;
    Ok(worker_may_take_work(worker_id))
}

/// Drops the worker's pending status request; it may take work again.
pub async fn clear_status_request(
    state: &AppState,
    worker_id: &str,
) -> Result<Effects, StoreError> {
    state.store.clear_worker_status_request(worker_id).await?;
    state.dispatcher.set_lazy_status_pending(worker_id, false);
    Ok(worker_may_take_work(worker_id))
}

/// Stores a status request for the worker (delivered by `worker_status::settle`). `None`:
/// no such worker.
pub async fn request_status(
    store: &Store,
    worker_id: &str,
    status: &str,
    is_lazy: bool,
) -> Result<Option<Effects>, StoreError> {
    if !store
        .request_worker_status(worker_id, status, is_lazy)
        .await?
    {
        return Ok(None);
    }
    let mut effects = Effects::new();
    effects.worker_changed(worker_id);
    Ok(Some(effects))
}

/// Stores the worker's sleep schedule (applied by `worker_status::apply_saved_sleep_schedule`).
pub async fn set_sleep_schedule(
    store: &Store,
    row: &SleepScheduleRow,
) -> Result<Effects, StoreError> {
    store.set_sleep_schedule(row).await?;
    let mut effects = Effects::new();
    effects.worker_changed(&row.worker_id);
    Ok(effects)
}

/// A status change reached the worker: it shows, and an awake worker takes work.
pub fn status_delivered(worker_id: &str) -> Effects {
    worker_may_take_work(worker_id)
}

fn worker_may_take_work(worker_id: &str) -> Effects {
    let mut effects = Effects::new();
    effects.worker_changed(worker_id).kick();
    effects
}
