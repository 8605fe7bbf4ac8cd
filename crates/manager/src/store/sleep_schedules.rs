//! Stored sleep schedules (one per worker) and the mark of what the schedule monitor last
//! requested, so a manual request is not overruled until the schedule changes its mind.
use super::{Store, StoreResult, now};

/// A schedule as stored: the text fields are already validated and normalised.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct SleepScheduleRow {
    pub worker_id: String,
    #[sqlx(try_from = "super::Flag")]
    pub is_active: bool,
    /// Two-letter days, space separated; empty = every day.
    pub days_of_week: String,
    /// `HH:MM`, empty = from midnight.
    pub start_time: String,
    /// `HH:MM`, empty = until midnight.
    pub end_time: String,
    /// The status the monitor last requested from this schedule ("" = none yet).
    pub last_applied: String,
}

impl Store {
    pub async fn sleep_schedule(&self, worker_id: &str) -> StoreResult<Option<SleepScheduleRow>> {
        Ok(sqlx::query_as(
            "SELECT worker_id, is_active, days_of_week, start_time, end_time, last_applied
             FROM sleep_schedules WHERE worker_id = $1",
        )
        .bind(worker_id)
        .fetch_optional(&self.read)
        .await?)
    }

    /// Creates or replaces a worker's schedule. `last_applied` starts over, so the new
    /// schedule is applied at the monitor's next pass.
    pub async fn set_sleep_schedule(&self, row: &SleepScheduleRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sleep_schedules
                (worker_id, is_active, days_of_week, start_time, end_time, last_applied, updated_at)
             VALUES ($1, $2, $3, $4, $5, '', $6)
             ON CONFLICT (worker_id) DO UPDATE SET is_active = $2, days_of_week = $3,
                start_time = $4, end_time = $5, last_applied = '', updated_at = $6",
        )
        .bind(&row.worker_id)
        .bind(i64::from(row.is_active))
        .bind(&row.days_of_week)
        .bind(&row.start_time)
        .bind(&row.end_time)
        .bind(now())
        .execute(self.writer()?)
        .await?;
        Ok(())
    }

    /// Active schedules of workers that are not deleted.
    pub async fn active_sleep_schedules(&self) -> StoreResult<Vec<SleepScheduleRow>> {
        Ok(sqlx::query_as(
            "SELECT s.worker_id, s.is_active, s.days_of_week, s.start_time, s.end_time,
                    s.last_applied
             FROM sleep_schedules s JOIN workers w ON w.id = s.worker_id
             WHERE s.is_active = 1 AND w.deleted_at IS NULL",
        )
        .fetch_all(&self.read)
        .await?)
    }

    /// Forgets what the monitor last requested, so the schedule is applied again.
    pub async fn reset_sleep_schedule_applied(&self, worker_id: &str) -> StoreResult<()> {
        self.mark_sleep_schedule_applied(worker_id, "").await
    }

    /// Records that the monitor requested `status` from this worker's schedule.
    pub async fn mark_sleep_schedule_applied(
        &self,
        worker_id: &str,
        status: &str,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE sleep_schedules SET last_applied = $1 WHERE worker_id = $2")
            .bind(status)
            .bind(worker_id)
            .execute(self.writer()?)
            .await?;
        Ok(())
    }
}
