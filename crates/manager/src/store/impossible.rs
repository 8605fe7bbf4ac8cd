//! Impossible tasks: waiting tasks that no registered worker could ever run — none
//! supports the task type, is in the job's tag, meets the job's requirements, is not
//! blocklisted for it, or has not failed it already. Such a task fails at once with the
//! rule that excluded the last worker, and its job fails (it can never complete), instead
//! of waiting forever.
//!
//! A job whose tasks hold units of a resource pool that was removed from the config, or
//! shrunk below what one task holds, is impossible too (rule `resource-pool`).
//!
//! Two kinds of emptiness mean "still being set up", not "impossible": a farm where no
//! worker has signed on yet, and a worker tag without members.
use std::collections::{BTreeMap, BTreeSet, HashMap};

use sqlx::{Any, Transaction};

use super::eligibility::{Candidate, blocklisted, candidates, parse_requirements};
use super::insert_task_status_events;
use super::job_status::{JobChange, enter_job_status};
use super::{Store, StoreResult, now};
use crate::state::{
    Exclusion, JobLimits, JobStatus, TaskFacts, TaskStatus, exclusion, unmet_requirements,
};

/// A task that cannot run anywhere, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImpossibleTask {
    pub task_id: String,
    pub job_id: String,
    /// The rule that excluded the last worker: `task-type`, `worker-tag`,
    /// `requirements`, `blocklist`, `failed-by` or `resource-pool` (the names of the "why"
    /// answer).
    pub rule: &'static str,
    pub reason: String,
}

/// A job failed because of impossible tasks.
#[derive(Clone, Debug)]
pub struct ImpossibleJob {
    pub job_id: String,
    pub tasks: Vec<ImpossibleTask>,
    pub change: Option<JobChange>,
}

/// Which waiting tasks the impossible-task check looks at. A submission, a job released by
/// its dependencies or a blocklisting can only make that job's tasks impossible; fewer
/// workers (or the periodic check) can make any task impossible. Checking only the jobs
/// named keeps a submission from costing a read of every waiting task on the farm.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum FeasibilityScope {
    /// Nothing to check.
    #[default]
    Nothing,
    Jobs(BTreeSet<String>),
    Farm,
}

impl FeasibilityScope {
    /// Widens this scope by `other`.
    pub fn merge(&mut self, other: FeasibilityScope) {
        match (&mut *self, other) {
            (_, FeasibilityScope::Nothing) | (FeasibilityScope::Farm, _) => {}
            (FeasibilityScope::Jobs(mine), FeasibilityScope::Jobs(theirs)) => mine.extend(theirs),
            (_, other) => *self = other,
        }
    }

    /// Adds `job_id` (a farm-wide scope already holds it).
    pub fn add_job(&mut self, job_id: &str) {
        self.merge(FeasibilityScope::Jobs(BTreeSet::from([job_id.to_string()])));
    }

    pub fn is_nothing(&self) -> bool {
        *self == FeasibilityScope::Nothing
    }
}

/// Waiting tasks grouped by (job, task type): the verdict is the same for the whole
/// group except for tasks with a failure list.
#[derive(sqlx::FromRow)]
struct Group {
    job_id: String,
    task_type: String,
    worker_tag_id: Option<String>,
    requirements: String,
    limits: String,
}

/// Tasks that wait to be handed out (`tasks t JOIN jobs j`). Queries of one group say
/// `t.task_type || ''`: the expression keeps SQLite from walking `tasks_runnable_by_type`, a
/// whole task type's waiting tasks (a million on a big farm), instead of the job's own.
macro_rules! waiting {
    () => {
        "t.status IN ('queued', 'soft-failed') AND j.status IN ('queued', 'active')"
    };
}

impl Store {
    /// Finds impossible tasks in `scope` without writing (cheap enough to run often).
    pub async fn find_impossible_tasks(
        &self,
        scope: &FeasibilityScope,
    ) -> StoreResult<Vec<ImpossibleTask>> {
        let mut conn = self.read.acquire().await?;
        find(&mut conn, &self.pools, scope).await
    }

    /// Fails every impossible task in `scope` and its job, in one transaction (the search
    /// is repeated inside it, so a worker signing on meanwhile is taken into account).
    pub async fn fail_impossible_tasks(
        &self,
        scope: &FeasibilityScope,
    ) -> StoreResult<Vec<ImpossibleJob>> {
        if self.find_impossible_tasks(scope).await?.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        let found = find(&mut tx, &self.pools, scope).await?;
        let failed = fail(&mut tx, found).await?;
        tx.commit().await?;
        Ok(failed)
    }

    /// Fails a waiting task that no worker can receive (rule `too-large`), and its job.
    pub async fn fail_undeliverable_task(
        &self,
        task_id: &str,
        job_id: &str,
        reason: String,
    ) -> StoreResult<Vec<ImpossibleJob>> {
        let task = ImpossibleTask {
            task_id: task_id.to_owned(),
            job_id: job_id.to_owned(),
            rule: "too-large",
            reason,
        };
        let mut tx = self.begin().await?;
        let failed = fail(&mut tx, vec![task]).await?;
        tx.commit().await?;
        Ok(failed)
    }
}

async fn find(
    conn: &mut sqlx::AnyConnection,
    pools: &BTreeMap<String, u32>,
    scope: &FeasibilityScope,
) -> StoreResult<Vec<ImpossibleTask>> {
    if scope.is_nothing() {
        return Ok(Vec::new());
    }
    let workers = candidates(conn).await?;
    if workers.is_empty() {
        return Ok(Vec::new());
    }
    let groups: Vec<Group> = match scope {
        FeasibilityScope::Nothing => Vec::new(),
        FeasibilityScope::Farm => {
            sqlx::query_as(concat!(
                "SELECT t.job_id, t.task_type, j.worker_tag_id, j.requirements, j.limits
                 FROM tasks t JOIN jobs j ON j.id = t.job_id WHERE ",
                waiting!(),
                " GROUP BY t.job_id, t.task_type, j.worker_tag_id, j.requirements, j.limits"
            ))
            .fetch_all(&mut *conn)
            .await?
        }
        FeasibilityScope::Jobs(jobs) => {
            let ids = serde_json::to_string(jobs)
                .map_err(|e| super::StoreError::Corrupt(format!("job ids as JSON: {e}")))?;
            // From the ids on: SQLite keeps the CROSS JOIN order, so it reads only these
            // jobs' tasks rather than every waiting job's, filtered.
            sqlx::query_as(concat!(
                "SELECT t.job_id, t.task_type, j.worker_tag_id, j.requirements, j.limits
                 FROM json_each($1) ids CROSS JOIN jobs j CROSS JOIN tasks t
                 WHERE j.id = ids.value AND t.job_id = j.id AND ",
                waiting!(),
                " GROUP BY t.job_id, t.task_type, j.worker_tag_id, j.requirements, j.limits"
            ))
            .bind(ids)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    let mut found = Vec::new();
    for group in groups {
        let verdict = match pool_verdict(&group, pools)? {
            Some(nobody) => nobody,
            None => group_verdict(conn, &group, &workers).await?,
        };
        match verdict {
            Verdict::Nobody { rule, reason } => {
                let ids: Vec<(String,)> = sqlx::query_as(concat!(
                    "SELECT t.id FROM tasks t JOIN jobs j ON j.id = t.job_id WHERE ",
                    waiting!(),
                    " AND t.job_id = $1 AND t.task_type || '' = $2"
                ))
                .bind(&group.job_id)
                .bind(&group.task_type)
                .fetch_all(&mut *conn)
                .await?;
                found.extend(ids.into_iter().map(|(task_id,)| ImpossibleTask {
                    task_id,
                    job_id: group.job_id.clone(),
                    rule,
                    reason: reason.clone(),
                }));
            }
            Verdict::Some(able) => {
                found.extend(failed_by_all(conn, &group, &able).await?);
            }
            Verdict::SettingUp => {}
        }
    }
    Ok(found)
}

enum Verdict {
    /// Worker tag without members: wait.
    SettingUp,
    Nobody {
        rule: &'static str,
        reason: String,
    },
    /// Ids of the workers that may run the group's tasks (before failure lists).
    Some(Vec<String>),
}

/// A group whose tasks hold resources of a pool the config no longer has, or no longer has
/// enough of (it was removed or shrunk after the job was submitted): no worker could ever
/// run them.
fn pool_verdict(group: &Group, pools: &BTreeMap<String, u32>) -> StoreResult<Option<Verdict>> {
    let limits = JobLimits::from_stored(&group.limits)
        .map_err(|e| super::StoreError::Corrupt(format!("limits of job {}: {e}", group.job_id)))?;
    if !limits.holds_resources(&group.task_type) {
        return Ok(None);
    }
    Ok(limits.check(pools).err().map(|why| Verdict::Nobody {
        rule: "resource-pool",
        reason: format!(
            "tasks of type \"{}\" cannot run with the manager's current resource pools: {why}",
            group.task_type
        ),
    }))
}

async fn group_verdict(
    conn: &mut sqlx::AnyConnection,
    group: &Group,
    workers: &[Candidate],
) -> StoreResult<Verdict> {
    if let Some(tag) = &group.worker_tag_id
        && !workers.iter().any(|w| w.tag_ids.contains(tag))
    {
        return Ok(Verdict::SettingUp);
    }
    let requirements = parse_requirements(&group.job_id, &group.requirements)?;
    let blocked = blocklisted(conn, &group.job_id, &group.task_type).await?;
    let task = TaskFacts {
        task_type: &group.task_type,
        requirements: &requirements,
        blocklisted: &blocked,
        failed_by: &[],
    };
    // Each worker's first broken rule; when every worker breaks one, the group fails with
    // the rule that got furthest (the one that excluded the last worker).
    let mut able = Vec::new();
    let mut furthest: Option<(Exclusion, &Candidate)> = None;
    for worker in workers {
        match exclusion(&worker.facts(group.worker_tag_id.as_deref()), &task) {
            None => able.push(worker.id.clone()),
            Some(rule) if furthest.is_none_or(|(f, _)| rule > f) => {
                furthest = Some((rule, worker));
            }
            Some(_) => {}
        }
    }
    if !able.is_empty() {
        return Ok(Verdict::Some(able));
    }
    let task_type = &group.task_type;
    let (rule, reason) = match furthest {
        None | Some((Exclusion::TaskType, _)) => (
            Exclusion::TaskType,
            format!("no registered worker supports task type \"{task_type}\""),
        ),
        Some((Exclusion::WorkerTag, _)) => (
            Exclusion::WorkerTag,
            format!("no worker in the job's tag supports task type \"{task_type}\""),
        ),
        Some((Exclusion::Requirements, example)) => {
            let example = unmet_requirements(&requirements, &example.capabilities).join("; ");
            (
                Exclusion::Requirements,
                format!(
                    "no worker that supports task type \"{task_type}\" meets the job's \
                     requirements (for example: {example})"
                ),
            )
        }
        Some((rule, _)) => (
            rule,
            format!(
                "every worker that may run task type \"{task_type}\" is blocklisted for this job"
            ),
        ),
    };
    Ok(Verdict::Nobody {
        rule: rule.rule(),
        reason,
    })
}

/// Tasks of the group whose failure list holds every worker still able to run them.
async fn failed_by_all(
    conn: &mut sqlx::AnyConnection,
    group: &Group,
    able: &[String],
) -> StoreResult<Vec<ImpossibleTask>> {
    let rows: Vec<(String, String)> = sqlx::query_as(concat!(
        "SELECT f.task_id, f.worker_id FROM task_failures f
         JOIN tasks t ON t.id = f.task_id JOIN jobs j ON j.id = t.job_id WHERE ",
        waiting!(),
        " AND t.job_id = $1 AND t.task_type || '' = $2"
    ))
    .bind(&group.job_id)
    .bind(&group.task_type)
    .fetch_all(&mut *conn)
    .await?;
    let mut failed_by: HashMap<String, Vec<String>> = HashMap::new();
    for (task, worker) in rows {
        failed_by.entry(task).or_default().push(worker);
    }
    Ok(failed_by
        .into_iter()
        .filter(|(_, workers)| able.iter().all(|w| workers.contains(w)))
        .map(|(task_id, _)| ImpossibleTask {
            task_id,
            job_id: group.job_id.clone(),
            rule: "failed-by",
            reason: format!(
                "every worker that may run task type \"{}\" has failed this task",
                group.task_type
            ),
        })
        .collect())
}

/// Fails the tasks (those still waiting) and then their jobs.
async fn fail(
    tx: &mut Transaction<'static, Any>,
    found: Vec<ImpossibleTask>,
) -> StoreResult<Vec<ImpossibleJob>> {
    let now = now();
    let mut jobs: Vec<ImpossibleJob> = Vec::new();
    let mut history = Vec::new();
    for task in found {
        let activity = format!(
            "Task failed: it can never run ({}): {}",
            task.rule, task.reason
        );
        let old: Option<(String,)> = sqlx::query_as(
            "SELECT status FROM tasks WHERE id = $1 AND status IN ('queued', 'soft-failed')",
        )
        .bind(&task.task_id)
        .fetch_optional(&mut **tx)
        .await?;
        let Some((old,)) = old else { continue };
        sqlx::query(
            "UPDATE tasks SET status = 'failed', activity = $1, progress = NULL, updated_at = $2
             WHERE id = $3",
        )
        .bind(&activity)
        .bind(&now)
        .bind(&task.task_id)
        .execute(&mut **tx)
        .await?;
        let old = if old == TaskStatus::SoftFailed.as_str() {
            TaskStatus::SoftFailed
        } else {
            TaskStatus::Queued
        };
        history.push((
            task.task_id.clone(),
            old.as_str(),
            TaskStatus::Failed.as_str(),
            activity,
            now.clone(),
        ));
        match jobs.iter_mut().find(|j| j.job_id == task.job_id) {
            Some(job) => job.tasks.push(task),
            None => jobs.push(ImpossibleJob {
                job_id: task.job_id.clone(),
                tasks: vec![task],
                change: None,
            }),
        }
    }
    insert_task_status_events(tx, &history).await?;
    for job in &mut jobs {
        let first = &job.tasks[0];
        let reason = format!(
            "task {} can never run ({}): {}",
            first.task_id, first.rule, first.reason
        );
        if super::job_status(tx, &job.job_id).await? != JobStatus::Failed {
            job.change = Some(enter_job_status(tx, &job.job_id, JobStatus::Failed, &reason).await?);
        }
    }
    Ok(jobs)
}
