//! Notification rules made over the API, the outbox of deliveries (which is also the
//! delivery log) and the last status the notifier saw of each job and worker.
use sqlx::FromRow;

use super::{Store, StoreResult, now};

#[derive(Clone, Debug, FromRow)]
pub struct NotificationRuleRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    /// JSON array of event names.
    pub events: String,
    pub submitter: Option<String>,
    pub url: String,
    pub secret: String,
    /// Comma-separated addresses.
    pub email_to: String,
    #[sqlx(try_from = "super::Flag")]
    pub enabled: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// A delivery to enqueue. Its unique key is `dedupe_base` plus the subject's transition
/// number (or `dedupe_base` alone for deliveries not caused by a transition).
#[derive(Clone, Debug)]
pub struct NewDelivery {
    pub id: String,
    pub dedupe_base: String,
    pub rule_id: String,
    pub rule_name: String,
    pub kind: String,
    pub target: String,
    pub event: String,
    pub job_id: Option<String>,
    pub worker_id: Option<String>,
    pub payload: String,
}

#[derive(Clone, Debug, FromRow)]
pub struct DeliveryRow {
    pub id: String,
    pub rule_id: String,
    pub rule_name: String,
    pub kind: String,
    pub target: String,
    pub event: String,
    pub job_id: Option<String>,
    pub worker_id: Option<String>,
    pub payload: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub last_error: String,
    pub created_at: String,
    pub updated_at: String,
}

const DELIVERY_COLUMNS: &str = "id, rule_id, rule_name, kind, target, event, job_id, worker_id, \
     payload, status, attempts, next_attempt_at, last_error, created_at, updated_at";

/// How an attempt ended.
pub enum AttemptOutcome<'a> {
    Delivered,
    /// Tried again at `next_attempt_at`.
    Retry {
        next_attempt_at: &'a str,
        error: &'a str,
    },
    /// Given up.
    Failed {
        error: &'a str,
    },
}

impl Store {
    pub async fn notification_rules(&self) -> StoreResult<Vec<NotificationRuleRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM notification_rules ORDER BY created_at, id")
                .fetch_all(&self.read)
                .await?,
        )
    }

    pub async fn notification_rule(&self, id: &str) -> StoreResult<Option<NotificationRuleRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM notification_rules WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.read)
                .await?,
        )
    }

    /// Inserts the rule, or replaces the one with its id; `created_at` is kept on replace.
    pub async fn save_notification_rule(&self, rule: &NotificationRuleRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO notification_rules \
             (id, name, kind, events, submitter, url, secret, email_to, enabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT(id) DO UPDATE SET name = excluded.name, kind = excluded.kind, \
             events = excluded.events, submitter = excluded.submitter, url = excluded.url, \
             secret = excluded.secret, email_to = excluded.email_to, enabled = excluded.enabled, \
             updated_at = excluded.updated_at",
        )
        .bind(&rule.id)
        .bind(&rule.name)
        .bind(&rule.kind)
        .bind(&rule.events)
        .bind(&rule.submitter)
        .bind(&rule.url)
        .bind(&rule.secret)
        .bind(&rule.email_to)
        .bind(i64::from(rule.enabled))
        .bind(&rule.created_at)
        .bind(&rule.updated_at)
        .execute(self.writer()?)
        .await?;
        Ok(())
    }

    /// Whether a rule was there to delete. Its pending deliveries stay and fail.
    pub async fn delete_notification_rule(&self, id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM notification_rules WHERE id = $1")
            .bind(id)
            .execute(self.writer()?)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The status last recorded for `subject` (`job:<id>`, `worker:<id>`).
    pub async fn notification_subject_status(&self, subject: &str) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT status FROM notification_subjects WHERE subject = $1")
                .bind(subject)
                .fetch_optional(&self.read)
                .await?,
        )
    }

    /// Records that `subject` is now in `status`. When that is a change into a notifying
    /// status, enqueues `deliveries` keyed by the transition's number, in the same
    /// transaction: each transition is enqueued once, however often it is looked at.
    /// Returns how many deliveries were enqueued.
    pub async fn record_notification_transition(
        &self,
        subject: &str,
        status: &str,
        notifying: bool,
        deliveries: &[NewDelivery],
    ) -> StoreResult<usize> {
        let mut tx = self.begin().await?;
        let seen: Option<(String, i64)> = sqlx::query_as(
            "SELECT status, transitions FROM notification_subjects WHERE subject = $1",
        )
        .bind(subject)
        .fetch_optional(&mut *tx)
        .await?;
        if seen.as_ref().is_some_and(|(old, _)| old == status) {
            return Ok(0);
        }
        let transitions = seen.map_or(0, |(_, n)| n) + i64::from(notifying);
        let time = now();
        sqlx::query(
            "INSERT INTO notification_subjects (subject, status, transitions, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT(subject) DO UPDATE SET status = excluded.status, \
             transitions = excluded.transitions, updated_at = excluded.updated_at",
        )
        .bind(subject)
        .bind(status)
        .bind(transitions)
        .bind(&time)
        .execute(&mut *tx)
        .await?;
        let mut enqueued = 0;
        if notifying {
            for delivery in deliveries {
                let key = format!("{}#{transitions}", delivery.dedupe_base);
                enqueued += insert_delivery(&mut tx, delivery, &key, &time).await?;
            }
        }
        tx.commit().await?;
        Ok(enqueued)
    }

    /// Enqueues one delivery (a test notification); false when its key was taken.
    pub async fn enqueue_delivery(&self, delivery: &NewDelivery) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let added = insert_delivery(&mut tx, delivery, &delivery.dedupe_base, &now()).await?;
        tx.commit().await?;
        Ok(added > 0)
    }

    /// Pending deliveries due at `time`, earliest first.
    pub async fn due_deliveries(&self, time: &str, limit: i64) -> StoreResult<Vec<DeliveryRow>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM notification_deliveries \
             WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2"
        )))
        .bind(time)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// When the earliest pending delivery due after `time` is due.
    pub async fn next_delivery_due_after(&self, time: &str) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM notification_deliveries \
             WHERE status = 'pending' AND next_attempt_at > $1",
        )
        .bind(time)
        .fetch_one(&self.read)
        .await?)
    }

    /// Records an attempt: the attempt count goes up by one.
    pub async fn record_delivery_attempt(
        &self,
        id: &str,
        outcome: AttemptOutcome<'_>,
    ) -> StoreResult<()> {
        let time = now();
        let (status, next, error) = match outcome {
            AttemptOutcome::Delivered => ("delivered", time.as_str(), ""),
            AttemptOutcome::Retry {
                next_attempt_at,
                error,
            } => ("pending", next_attempt_at, error),
            AttemptOutcome::Failed { error } => ("failed", time.as_str(), error),
        };
        sqlx::query(
            "UPDATE notification_deliveries SET status = $1, attempts = attempts + 1, \
             next_attempt_at = $2, last_error = $3, updated_at = $4 WHERE id = $5",
        )
        .bind(status)
        .bind(next)
        .bind(error)
        .bind(&time)
        .bind(id)
        .execute(self.writer()?)
        .await?;
        Ok(())
    }

    /// The delivery log, newest first.
    pub async fn list_deliveries(
        &self,
        status: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<DeliveryRow>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM notification_deliveries \
             WHERE $1 IS NULL OR status = $1 ORDER BY created_at DESC, id LIMIT $2"
        )))
        .bind(status)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// Removes finished deliveries created before `cutoff` or beyond the newest `keep`,
    /// and the seen statuses of jobs and workers that no longer exist. Returns the
    /// deliveries removed.
    pub async fn prune_notifications(&self, cutoff: &str, keep: i64) -> StoreResult<u64> {
        let removed = sqlx::query(
            "DELETE FROM notification_deliveries WHERE status != 'pending' AND (created_at < $1 \
             OR id NOT IN (SELECT id FROM notification_deliveries ORDER BY created_at DESC LIMIT $2))",
        )
        .bind(cutoff)
        .bind(keep)
        .execute(self.writer()?)
        .await?
        .rows_affected();
        sqlx::query(
            "DELETE FROM notification_subjects WHERE \
             (subject LIKE 'job:%' AND substr(subject, 5) NOT IN (SELECT id FROM jobs)) OR \
             (subject LIKE 'worker:%' AND substr(subject, 8) NOT IN (SELECT id FROM workers))",
        )
        .execute(self.writer()?)
        .await?;
        Ok(removed)
    }

    /// Jobs updated since `since` whose status differs from the one the notifier last
    /// recorded (for catching up on events missed at a restart or when lagging behind).
    pub async fn jobs_with_unseen_status(&self, since: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT j.id FROM jobs j LEFT JOIN notification_subjects s ON s.subject = 'job:' || j.id \
             WHERE j.updated_at >= $1 AND (s.status IS NULL OR s.status != j.status)",
        )
        .bind(since)
        .fetch_all(&self.read)
        .await?)
    }

    /// Workers whose status differs from the one the notifier last recorded.
    pub async fn workers_with_unseen_status(&self) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT w.id FROM workers w LEFT JOIN notification_subjects s \
             ON s.subject = 'worker:' || w.id \
             WHERE w.deleted_at IS NULL AND (s.status IS NULL OR s.status != w.status)",
        )
        .fetch_all(&self.read)
        .await?)
    }
}

async fn insert_delivery(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    delivery: &NewDelivery,
    key: &str,
    time: &str,
) -> StoreResult<usize> {
    let done = sqlx::query(
        "INSERT INTO notification_deliveries \
         (id, dedupe_key, rule_id, rule_name, kind, target, event, job_id, worker_id, payload, \
          status, attempts, next_attempt_at, last_error, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', 0, $11, '', $12, $13) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&delivery.id)
    .bind(key)
    .bind(&delivery.rule_id)
    .bind(&delivery.rule_name)
    .bind(&delivery.kind)
    .bind(&delivery.target)
    .bind(&delivery.event)
    .bind(&delivery.job_id)
    .bind(&delivery.worker_id)
    .bind(&delivery.payload)
    .bind(time)
    .bind(time)
    .bind(time)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() as usize)
}
