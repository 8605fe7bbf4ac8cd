//! Limits a job puts on its own scheduling — units of the farm's counted resource pools
//! (licences, say) held by each running task, and the most workers it may use at once —
//! and the backoff before a failed task is retried. Pure rules; the scheduling query
//! applies them.
use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a job limits about its own scheduling. Stored as JSON on the job (`{}` when
/// nothing, which keeps the scheduler's check to one comparison).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobLimits {
    /// Units of each named pool (`[resources]` in the manager's config) that every running
    /// task of the job holds.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, u32>,
    /// Only tasks of these types hold the resources (empty: every task of the job).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_task_types: Vec<String>,
    /// The most workers that run tasks of the job at the same time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_workers: Option<u32>,
}

impl JobLimits {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Parses the stored JSON. Unreadable limits are an error, never "none": that would
    /// run more licensed tasks than the farm holds.
    pub fn from_stored(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// The JSON stored on the job.
    pub fn to_stored(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// Zero counts dropped; task types sorted, without blanks and duplicates.
    pub fn normalised(mut self) -> Self {
        self.resources.retain(|_, count| *count > 0);
        self.resource_task_types.retain(|t| !t.trim().is_empty());
        self.resource_task_types.sort();
        self.resource_task_types.dedup();
        self
    }

    /// Checks the limits against the configured pools: every named pool exists and holds at
    /// least what one task needs; `max_workers` is at least 1. The message names the problem.
    pub fn check(&self, pools: &BTreeMap<String, u32>) -> Result<(), String> {
        if self.max_workers == Some(0) {
            return Err("limits.max_workers must be at least 1 (leave it out for no limit)".into());
        }
        for (name, &count) in &self.resources {
            match pools.get(name) {
                None => {
                    let known: Vec<&str> = pools.keys().map(String::as_str).collect();
                    return Err(if known.is_empty() {
                        format!(
                            "limits.resources names pool \"{name}\", but the manager's config \
                             has no [resources] pools"
                        )
                    } else {
                        format!(
                            "limits.resources names pool \"{name}\", which is not configured; \
                             configured pools: {}",
                            known.join(", ")
                        )
                    });
                }
                Some(&size) if count > size => {
                    return Err(format!(
                        "limits.resources asks {count} of pool \"{name}\" per task, but the pool \
                         holds only {size}: no task could ever run"
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Whether a task of `task_type` holds the job's resources.
    pub fn holds_resources(&self, task_type: &str) -> bool {
        !self.resources.is_empty()
            && (self.resource_task_types.is_empty()
                || self.resource_task_types.iter().any(|t| t == task_type))
    }
}

impl JobLimits {
    /// Whether none of the job's tasks can go to `worker` now: the job already uses its most
    /// workers (`running_on`, the workers running its tasks) and this is not one of them, or
    /// every task of the job holds resources and a pool has too few free units. (With
    /// `resource_task_types`, other task types may still run, so that is not a whole-job
    /// block.) The scheduler skips such jobs at once instead of walking their tasks.
    pub fn blocks_worker(
        &self,
        running_on: &[String],
        worker: &str,
        free: &BTreeMap<String, u64>,
    ) -> bool {
        let at_most_workers = self.max_workers.is_some_and(|max| {
            running_on.len() >= max as usize && !running_on.iter().any(|w| w == worker)
        });
        let pools_short = self.resource_task_types.is_empty()
            && self
                .resources
                .iter()
                .any(|(pool, &count)| free.get(pool).copied().unwrap_or(0) < u64::from(count));
        at_most_workers || pools_short
    }

    /// The most tasks of `task_type` the job's resource needs let run at once, if they limit
    /// it: per pool, its size over what one task holds (a pool that is gone: none at all).
    pub fn pool_task_limit(&self, pools: &BTreeMap<String, u32>, task_type: &str) -> Option<u64> {
        if !self.holds_resources(task_type) {
            return None;
        }
        self.resources
            .iter()
            .map(|(pool, &count)| {
                let size = pools.get(pool).copied().unwrap_or(0);
                u64::from(size) / u64::from(count.max(1))
            })
            .min()
    }
}

/// How long a task waits before it is handed out again after its `failures`-th failure:
/// `base` doubled for each failure after the first, at most `cap`. Zero `base`: at once.
pub fn retry_delay(failures: u64, base: Duration, cap: Duration) -> Duration {
    if base.is_zero() || failures == 0 {
        return Duration::ZERO;
    }
    let doublings = u32::try_from(failures - 1).unwrap_or(u32::MAX).min(31);
    base.saturating_mul(1u32 << doublings).min(cap.max(base))
}

/// Units of each pool free right now: the pool sizes less what running tasks hold.
pub fn free_resources(
    pools: &BTreeMap<String, u32>,
    held: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    pools
        .iter()
        .map(|(name, &size)| {
            let used = held.get(name).copied().unwrap_or(0);
            (name.clone(), u64::from(size).saturating_sub(used))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pools() -> BTreeMap<String, u32> {
        BTreeMap::from([("redshift-licence".to_string(), 2)])
    }

    #[test]
    fn the_backoff_doubles_per_failure_up_to_the_cap() {
        let s = Duration::from_secs;
        let cases = [
            (0, 10, 300, 0),
            (1, 10, 300, 10),
            (2, 10, 300, 20),
            (3, 10, 300, 40),
            (6, 10, 300, 300),
            (200, 10, 300, 300),
            (3, 0, 300, 0),
            // A cap under the base: the base wins, so a failure never means "at once".
            (1, 10, 5, 10),
        ];
        for (failures, base, cap, expected) in cases {
            assert_eq!(
                retry_delay(failures, s(base), s(cap)),
                s(expected),
                "{failures} failures, base {base}, cap {cap}"
            );
        }
    }

    #[test]
    fn limits_name_configured_pools_that_can_hold_one_task() {
        let limits = |pool: &str, count: u32| JobLimits {
            resources: BTreeMap::from([(pool.to_string(), count)]),
            ..Default::default()
        };
        assert!(limits("redshift-licence", 2).check(&pools()).is_ok());
        let err = limits("redshift-licence", 3).check(&pools()).unwrap_err();
        assert!(err.contains("holds only 2"), "{err}");
        let err = limits("arnold", 1).check(&pools()).unwrap_err();
        assert!(
            err.contains("\"arnold\"") && err.contains("redshift-licence"),
            "{err}"
        );
        let err = limits("arnold", 1).check(&BTreeMap::new()).unwrap_err();
        assert!(err.contains("no [resources] pools"), "{err}");
        let no_workers = JobLimits {
            max_workers: Some(0),
            ..Default::default()
        };
        assert!(
            no_workers
                .check(&pools())
                .unwrap_err()
                .contains("max_workers")
        );
    }

    #[test]
    fn resources_are_held_by_the_named_task_types_or_by_all() {
        let mut limits = limits_with_types(&[]);
        assert!(limits.holds_resources("blender") && limits.holds_resources("ffmpeg"));
        limits = limits_with_types(&["blender"]);
        assert!(limits.holds_resources("blender") && !limits.holds_resources("ffmpeg"));
        assert!(!JobLimits::default().holds_resources("blender"));
    }

    #[test]
    fn pools_limit_how_many_tasks_run_at_once() {
        let mut limits = limits_with_types(&["blender"]);
        assert_eq!(limits.pool_task_limit(&pools(), "blender"), Some(2));
        assert_eq!(limits.pool_task_limit(&pools(), "ffmpeg"), None);
        limits.resources.insert("redshift-licence".into(), 2);
        assert_eq!(limits.pool_task_limit(&pools(), "blender"), Some(1));
        assert_eq!(limits.pool_task_limit(&BTreeMap::new(), "blender"), Some(0));
    }

    #[test]
    fn a_job_at_its_limits_blocks_other_workers_or_everyone() {
        let free = |n: u64| BTreeMap::from([("redshift-licence".to_string(), n)]);
        let running = vec!["w1".to_string()];
        let workers = JobLimits {
            max_workers: Some(1),
            ..Default::default()
        };
        assert!(workers.blocks_worker(&running, "w2", &free(0)));
        assert!(!workers.blocks_worker(&running, "w1", &free(0)));
        assert!(!workers.blocks_worker(&[], "w2", &free(0)));
        let every_task = limits_with_types(&[]);
        assert!(every_task.blocks_worker(&running, "w1", &free(0)));
        assert!(!every_task.blocks_worker(&running, "w1", &free(1)));
        // Only blender tasks hold the licence: its ffmpeg tasks may still run.
        assert!(!limits_with_types(&["blender"]).blocks_worker(&running, "w1", &free(0)));
    }

    fn limits_with_types(types: &[&str]) -> JobLimits {
        JobLimits {
            resources: BTreeMap::from([("redshift-licence".to_string(), 1)]),
            resource_task_types: types.iter().map(|t| t.to_string()).collect(),
            max_workers: None,
        }
    }

    #[test]
    fn stored_forms_round_trip_and_zero_counts_are_dropped() {
        let limits = JobLimits {
            resources: BTreeMap::from([("a".to_string(), 1), ("b".to_string(), 0)]),
            resource_task_types: vec!["x".into(), " ".into(), "x".into()],
            max_workers: Some(3),
        }
        .normalised();
        assert_eq!(limits.resources.len(), 1);
        assert_eq!(limits.resource_task_types, vec!["x".to_string()]);
        assert_eq!(JobLimits::from_stored(&limits.to_stored()).unwrap(), limits);
        assert_eq!(JobLimits::default().to_stored(), "{}");
        assert!(JobLimits::from_stored("{\"max_worker\": 1}").is_err());
        let free = free_resources(&pools(), &BTreeMap::from([("redshift-licence".into(), 1)]));
        assert_eq!(free["redshift-licence"], 1);
    }
}
