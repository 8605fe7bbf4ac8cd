//! Pages of one job's tasks and farm-wide counts, for the dashboard: a job with 100,000
//! tasks is read a page at a time, and the counts come from the trigger-kept
//! `job_task_counts` table rather than from a scan of the tasks.
use sqlx::QueryBuilder;

use super::rows::TASK_COLUMNS;
use super::{StatusCounts, Store, StoreResult, TaskRow};

impl Store {
    /// Tasks of `job_id` in creation order, `limit` from `offset`, only those in
    /// `statuses` when it is not empty; and how many match in all.
    ///
    /// Cheap on a job of 100,000 tasks while the farm runs: the total comes from the
    /// trigger-kept `job_task_counts`, and the page's first task is found by skipping
    /// `offset` entries of the (job, index) index alone (no table rows read, which on
    /// PostgreSQL means no visibility checks of rows being updated), then `limit` rows read.
    pub async fn job_tasks_page(
        &self,
        job_id: &str,
        statuses: &[String],
        offset: i64,
        limit: i64,
    ) -> StoreResult<(Vec<TaskRow>, i64)> {
        let filter = |builder: &mut QueryBuilder<sqlx::Any>, table: &str| {
            builder.push(format!(" WHERE {table}.job_id = "));
            builder.push_bind(job_id.to_string());
            if !statuses.is_empty() {
                builder.push(format!(" AND {table}.status IN ("));
                let mut list = builder.separated(", ");
                for status in statuses {
                    list.push_bind(status.clone());
                }
                builder.push(")");
            }
        };
        let mut count = QueryBuilder::new(
            "SELECT CAST(COALESCE(SUM(c.n), 0) AS BIGINT) FROM job_task_counts c",
        );
        filter(&mut count, "c");
        let (total,): (i64,) = super::placeholders::query_as(&mut count)?
            .fetch_one(&self.read)
            .await?;
        let mut page = QueryBuilder::new(format!(
            "SELECT {TASK_COLUMNS} FROM tasks t LEFT JOIN workers w ON w.id = t.worker_id"
        ));
        filter(&mut page, "t");
        // Past the end the first index is NULL and the page empty.
        page.push(" AND t.index_in_job >= (SELECT s.index_in_job FROM tasks s");
        filter(&mut page, "s");
        page.push(" ORDER BY s.index_in_job LIMIT 1 OFFSET ");
        page.push_bind(offset);
        page.push(") ORDER BY t.index_in_job LIMIT ");
        page.push_bind(limit);
        let rows = super::placeholders::query_as(&mut page)?
            .fetch_all(&self.read)
            .await?;
        Ok((rows, total))
    }

    /// Task counts per status of one job.
    pub async fn job_task_status_counts(&self, job_id: &str) -> StoreResult<StatusCounts> {
        Ok(sqlx::query_as(
            "SELECT status, n FROM job_task_counts WHERE job_id = $1 AND n > 0 ORDER BY status",
        )
        .bind(job_id)
        .fetch_all(&self.read)
        .await?)
    }

    /// Task counts per status over all jobs. Waiting tasks of a paused (or pausing) job
    /// count as `paused`: nothing will run them until the job is resumed; those of a job
    /// waiting for other jobs as `waiting`. So `queued` is work that can run now.
    pub async fn farm_task_status_counts(&self) -> StoreResult<StatusCounts> {
        Ok(sqlx::query_as(
            "SELECT CASE WHEN c.status NOT IN ('queued', 'soft-failed') THEN c.status
                         WHEN j.status IN ('paused', 'pause-requested') THEN 'paused'
                         WHEN j.status = 'waiting-for-dependencies' THEN 'waiting'
                         ELSE c.status END AS shown, CAST(SUM(c.n) AS BIGINT)
             FROM job_task_counts c JOIN jobs j ON j.id = c.job_id
             GROUP BY shown HAVING SUM(c.n) > 0 ORDER BY shown",
        )
        .fetch_all(&self.read)
        .await?)
    }

    /// Task counts per status of each of `job_ids`: (job id, status, count).
    pub async fn task_counts_of_jobs(
        &self,
        job_ids: &[String],
    ) -> StoreResult<Vec<(String, String, i64)>> {
        if job_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = QueryBuilder::new(
            "SELECT job_id, status, n FROM job_task_counts WHERE n > 0 AND job_id IN (",
        );
        let mut list = query.separated(", ");
        for id in job_ids {
            list.push_bind(id.clone());
        }
        query.push(")");
        Ok(super::placeholders::query_as(&mut query)?
            .fetch_all(&self.read)
            .await?)
    }

    /// Workers running at least one task now.
    pub async fn busy_worker_count(&self) -> StoreResult<i64> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(DISTINCT worker_id) FROM tasks WHERE status = 'active' AND worker_id IS NOT NULL",
        )
        .fetch_one(&self.read)
        .await?;
        Ok(n)
    }
}
