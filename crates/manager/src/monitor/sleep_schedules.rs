//! Applies sleep schedules: when a worker's schedule says `asleep` or `awake` (in the
//! manager's local time) and the worker is not in that state, a LAZY status request is
//! issued, so a running render finishes first.
//!
//! Not fighting manual requests: the monitor remembers what it last requested per schedule
//! and only acts when the schedule's answer CHANGES (or the schedule was just saved). An
//! operator who wakes a sleeping worker at night keeps it awake until the schedule's next
//! boundary (the morning's "awake", then the evening's "asleep" again). Workers in `error`
//! are skipped until they recover. The same pass settles lazy requests whose tasks ended
//! without a report (job cancelled, task timed out).
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Clock;
use crate::AppState;
use crate::state::WorkerStatus;
use crate::worker_status::apply_sleep_schedule;

/// What one pass requested: (worker id, status).
#[derive(Clone, Debug, Default)]
pub struct SleepReport {
    pub requested: Vec<(String, WorkerStatus)>,
}

pub struct SleepScheduleMonitor {
    state: AppState,
    clock: Arc<dyn Clock>,
}

impl SleepScheduleMonitor {
    pub fn new(state: AppState, clock: Arc<dyn Clock>) -> Self {
        Self { state, clock }
    }

    /// One pass over every active schedule, at the clock's time.
    pub async fn check_once(&self) -> SleepReport {
        let mut report = SleepReport::default();
        let now = self.clock.now();
        match self.state.store.active_sleep_schedules().await {
            Ok(rows) => {
                for row in rows {
                    match apply_sleep_schedule(&self.state, &row, now).await {
                        Ok(Some(status)) => report.requested.push((row.worker_id, status)),
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(worker_id = %row.worker_id, "cannot apply the sleep schedule: {e}")
                        }
                    }
                }
            }
            Err(e) => tracing::error!("cannot read the sleep schedules: {e}"),
        }
        if let Err(e) = crate::worker_status::settle_waiting(&self.state).await {
            tracing::warn!("cannot settle waiting status requests: {e}");
        }
        report
    }

    /// Checks every `interval` (zero: never) until `shutdown`.
    pub async fn run(self, interval: Duration, shutdown: CancellationToken) {
        if interval.is_zero() {
            tracing::info!("sleep_schedule_check_seconds is 0: sleep schedules are not applied");
            return;
        }
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            self.check_once().await;
        }
    }
}
