//! Estimated completion times: per unfinished job and for the whole farm, from the measured
//! durations of completed tasks, the slots that can run each job and the work queued ahead
//! of it. A fluid model — every slot works on the queue in scheduling order — with a range
//! from the spread of the task durations. Pure; the store gathers the numbers.

/// Completed tasks needed before a trend along the job's range is trusted.
const MIN_FOR_TREND: usize = 10;

/// The durations of a job's completed tasks, in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DurationSample {
    pub count: u64,
    pub mean: f64,
    pub std_dev: f64,
    /// The standard error of `mean` as a prediction for the tasks left (None: that of a plain
    /// mean, `std_dev / √count`).
    pub mean_error: Option<f64>,
}

impl DurationSample {
    /// The expected duration of the tasks still to run, from completed tasks' (index in job,
    /// seconds): a straight line through them when there are enough (frames of a shot often
    /// get heavier or lighter along the range), read at the mean index of the tasks left;
    /// their plain mean otherwise. The spread is what the line leaves unexplained.
    pub fn predicted(completed: &[(f64, f64)], remaining_mean_index: Option<f64>) -> Self {
        let durations: Vec<f64> = completed.iter().map(|(_, d)| *d).collect();
        let plain = Self::of(&durations);
        let Some(at) = remaining_mean_index else {
            return plain;
        };
        let n = completed.len() as f64;
        let mean_index = completed.iter().map(|(i, _)| i).sum::<f64>() / n.max(1.0);
        let spread: f64 = completed
            .iter()
            .map(|(i, _)| (i - mean_index).powi(2))
            .sum();
        if completed.len() < MIN_FOR_TREND || spread <= 0.0 {
            return plain;
        }
        let slope = completed
            .iter()
            .map(|(i, d)| (i - mean_index) * (d - plain.mean))
            .sum::<f64>()
            / spread;
        let line = |index: f64| plain.mean + slope * (index - mean_index);
        let residual = (completed
            .iter()
            .map(|(i, d)| (d - line(*i)).powi(2))
            .sum::<f64>()
            / n)
            .sqrt();
        // Never below half the fastest or above twice the slowest task seen.
        let (fastest, slowest) = durations
            .iter()
            .fold((f64::MAX, 0.0f64), |(lo, hi), d| (lo.min(*d), hi.max(*d)));
        // Reading the line far from the tasks it went through is less sure than near them.
        let mean_error = residual * (1.0 / n + (at - mean_index).powi(2) / spread).sqrt();
        Self {
            count: plain.count,
            mean: line(at).clamp(fastest / 2.0, slowest * 2.0),
            std_dev: residual,
            mean_error: Some(mean_error),
        }
    }

    pub fn of(durations: &[f64]) -> Self {
        let count = durations.len() as u64;
        if count == 0 {
            return Self::default();
        }
        let mean = durations.iter().sum::<f64>() / count as f64;
        let variance = durations.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / count as f64;
        Self {
            count,
            mean,
            std_dev: variance.sqrt(),
            mean_error: None,
        }
    }
}

/// One unfinished job, in scheduling order, as the estimate sees it.
#[derive(Clone, Debug, Default)]
pub struct JobLoad {
    pub job_id: String,
    /// Queued and soft-failed tasks.
    pub waiting_tasks: u64,
    /// Tasks running now (each counted as half a task still to do).
    pub running_tasks: u64,
    pub sample: DurationSample,
    /// Slots of connected workers that can run the job's next task.
    pub slots: u64,
    /// The job's `max_workers` in slots, if it has one.
    pub slot_limit: Option<u64>,
    /// Paused or waiting for other jobs: it does not run now, so it gets no estimate and
    /// holds up nothing behind it.
    pub held: bool,
}

impl JobLoad {
    pub fn remaining_tasks(&self) -> u64 {
        self.waiting_tasks + self.running_tasks
    }
}

/// Seconds from now until something is done, with a range.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    pub seconds: f64,
    pub earliest: f64,
    pub latest: f64,
}

/// The estimate for one job (None: none can be made), and why.
#[derive(Clone, Debug, PartialEq)]
pub struct JobEstimate {
    pub job_id: String,
    pub remaining_tasks: u64,
    pub estimate: Option<Estimate>,
    pub basis: String,
}

/// Estimates every job of `jobs` (in scheduling order) on a farm of `farm_slots` connected
/// slots, and the farm as a whole (when every estimate-able job is done). A job whose own
/// tasks have not completed yet is estimated with the mean of the farm's other samples.
pub fn estimate(jobs: &[JobLoad], farm_slots: u64) -> (Vec<JobEstimate>, Option<Estimate>) {
    let fallback = pooled(jobs.iter().map(|j| j.sample));
    let mut ahead = 0.0; // Task-seconds queued ahead of the current job (and its own).
    let mut ahead_spread = 0.0; // The same with every duration at its upper bound, less the mean.
    let mut estimates = Vec::with_capacity(jobs.len());
    let mut farm = None;
    for job in jobs {
        let remaining = job.remaining_tasks();
        let (sample, borrowed) = if job.sample.count > 0 {
            (job.sample, false)
        } else {
            (fallback, true)
        };
        let reason = if job.held {
            Some("it does not run now (paused or waiting for other jobs)".to_string())
        } else if remaining == 0 {
            Some("nothing left to run".to_string())
        } else if sample.count == 0 {
            Some("no task of the job has completed yet, nor of any other job".to_string())
        } else if job.slots == 0 {
            Some("no connected worker can run its tasks".to_string())
        } else {
            None
        };
        if let Some(basis) = reason {
            estimates.push(JobEstimate {
                job_id: job.job_id.clone(),
                remaining_tasks: remaining,
                estimate: None,
                basis,
            });
            continue;
        }
        let work = (job.waiting_tasks as f64 + job.running_tasks as f64 / 2.0) * sample.mean;
        let spread = relative_spread(sample, remaining, borrowed) * work;
        ahead += work;
        ahead_spread += spread;
        let own_slots = job
            .slot_limit
            .map_or(job.slots, |limit| limit.min(job.slots))
            .max(1) as f64;
        let farm_slots = farm_slots.max(1) as f64;
        // Done when the queue up to it is worked off, and not before its own slots finish it;
        // plus half a task, as its last tasks do not all end together. The range is at least
        // one task either way: the model knows nothing finer.
        let (seconds, range) = if ahead / farm_slots >= work / own_slots {
            (ahead / farm_slots, ahead_spread / farm_slots)
        } else {
            (work / own_slots, spread / own_slots)
        };
        let tail = sample.mean / 2.0;
        let range = range.max(sample.mean);
        let estimate = Estimate {
            seconds: seconds + tail,
            earliest: (seconds + tail - range).max(0.0),
            latest: seconds + tail + range,
        };
        let farm_seconds = ahead / farm_slots + tail;
        let farm_range = (ahead_spread / farm_slots).max(sample.mean);
        farm = Some(Estimate {
            seconds: farm_seconds,
            earliest: (farm_seconds - farm_range).max(0.0),
            latest: farm_seconds + farm_range,
        });
        let basis = if borrowed {
            format!(
                "no task of the job has completed yet; from {} task(s) of other jobs, mean {:.1} s",
                sample.count, sample.mean
            )
        } else {
            format!(
                "from {} completed task(s), mean {:.1} s (± {:.1} s)",
                sample.count, sample.mean, sample.std_dev
            )
        };
        estimates.push(JobEstimate {
            job_id: job.job_id.clone(),
            remaining_tasks: remaining,
            estimate: Some(estimate),
            basis,
        });
    }
    (estimates, farm)
}

/// How far the remaining work may be off, as a share of it (95 %): the uncertainty of the
/// mean from `sample.count` durations, and the spread of a sum of `remaining` durations.
/// Borrowed samples (another job's tasks) count as at least ±50 %.
fn relative_spread(sample: DurationSample, remaining: u64, borrowed: bool) -> f64 {
    if sample.mean <= 0.0 {
        return 1.0;
    }
    let variation = sample.std_dev / sample.mean;
    let of_mean = sample.mean_error.map_or_else(
        || variation / (sample.count.max(1) as f64).sqrt(),
        |error| error / sample.mean,
    );
    let of_sum = variation / (remaining.max(1) as f64).sqrt();
    let spread = (1.96 * (of_mean * of_mean + of_sum * of_sum).sqrt()).min(1.0);
    if borrowed { spread.max(0.5) } else { spread }
}

/// All samples together, as one.
fn pooled(samples: impl Iterator<Item = DurationSample>) -> DurationSample {
    let (mut count, mut sum, mut squares) = (0u64, 0.0, 0.0);
    for s in samples.filter(|s| s.count > 0) {
        count += s.count;
        sum += s.mean * s.count as f64;
        squares += (s.std_dev.powi(2) + s.mean.powi(2)) * s.count as f64;
    }
    if count == 0 {
        return DurationSample::default();
    }
    let mean = sum / count as f64;
    DurationSample {
        count,
        mean,
        std_dev: (squares / count as f64 - mean * mean).max(0.0).sqrt(),
        mean_error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, waiting: u64, mean: f64, slots: u64) -> JobLoad {
        JobLoad {
            job_id: id.into(),
            waiting_tasks: waiting,
            sample: DurationSample {
                count: if mean > 0.0 { 100 } else { 0 },
                mean,
                std_dev: mean / 10.0,
                mean_error: None,
            },
            slots,
            ..Default::default()
        }
    }

    #[test]
    fn a_job_alone_takes_its_work_over_its_slots() {
        let (jobs, farm) = estimate(&[job("a", 100, 10.0, 4)], 4);
        let e = jobs[0].estimate.clone().expect("an estimate");
        // 100 tasks of 10 s on 4 slots, and half a task for the last ones to end.
        assert!((e.seconds - 255.0).abs() < 1e-9, "{e:?}");
        assert!(e.earliest < e.seconds && e.latest > e.seconds);
        assert_eq!(farm.expect("farm").seconds, e.seconds);
    }

    #[test]
    fn jobs_behind_wait_for_the_work_ahead_of_them() {
        let (jobs, farm) = estimate(&[job("a", 100, 10.0, 4), job("b", 40, 5.0, 4)], 4);
        let a = jobs[0].estimate.clone().expect("a");
        let b = jobs[1].estimate.clone().expect("b");
        assert!(
            (b.seconds - ((1000.0 + 200.0) / 4.0 + 2.5)).abs() < 1e-9,
            "{b:?}"
        );
        assert!(b.seconds > a.seconds);
        assert!((farm.expect("farm").seconds - b.seconds).abs() < 1e-9);
    }

    #[test]
    fn few_slots_or_a_worker_limit_bound_a_job_from_below() {
        // Only 1 of the farm's 10 slots can run b: its own work sets its time.
        let (jobs, _) = estimate(&[job("b", 10, 10.0, 1)], 10);
        assert_eq!(jobs[0].estimate.as_ref().map(|e| e.seconds), Some(105.0));
        let mut limited = job("c", 10, 10.0, 10);
        limited.slot_limit = Some(2);
        let (jobs, _) = estimate(&[limited], 10);
        assert_eq!(jobs[0].estimate.as_ref().map(|e| e.seconds), Some(55.0));
    }

    #[test]
    fn no_estimate_without_samples_slots_or_while_held_and_borrowed_samples_are_wide() {
        let (jobs, farm) = estimate(&[job("a", 10, 0.0, 4)], 4);
        assert!(jobs[0].estimate.is_none() && farm.is_none());
        assert!(jobs[0].basis.contains("no task"), "{}", jobs[0].basis);
        let (jobs, _) = estimate(&[job("a", 10, 5.0, 0)], 4);
        assert!(jobs[0].basis.contains("no connected worker"));
        let mut held = job("a", 10, 5.0, 4);
        held.held = true;
        let (jobs, farm) = estimate(&[held, job("b", 10, 0.0, 4)], 4);
        assert!(jobs[0].estimate.is_none() && farm.is_some());
        let b = jobs[1].estimate.clone().expect("borrowed from a");
        assert!(jobs[1].basis.contains("other jobs"), "{}", jobs[1].basis);
        // 10 tasks of 5 s on 4 slots: 12.5 s of work, known to ±50 % at best.
        assert!(b.latest - b.seconds >= 0.5 * 12.5 - 1e-9, "{b:?}");
    }

    #[test]
    fn a_trend_along_the_range_predicts_the_tasks_left() {
        // Tasks get 1 s heavier per 10 frames: 1..=20 done, the rest average index 30.
        let done: Vec<(f64, f64)> = (1..=20)
            .map(|i| (i as f64, 1.0 + i as f64 / 10.0))
            .collect();
        let s = DurationSample::predicted(&done, Some(30.0));
        assert!((s.mean - 4.0).abs() < 1e-9, "{s:?}");
        assert!(s.std_dev < 1e-9);
        // Too few tasks, or nothing left: the plain mean.
        let plain = DurationSample::predicted(&done[..5], Some(30.0));
        assert!((plain.mean - 1.3).abs() < 1e-9, "{plain:?}");
        assert_eq!(
            DurationSample::predicted(&done, None).mean,
            DurationSample::of(&done.iter().map(|(_, d)| *d).collect::<Vec<_>>()).mean
        );
        // A steep line stays within twice the slowest task seen.
        let capped = DurationSample::predicted(&done, Some(10_000.0));
        assert!((capped.mean - 6.0).abs() < 1e-9, "{capped:?}");
    }

    #[test]
    fn running_tasks_count_half_and_samples_summarise_durations() {
        let mut running = job("a", 0, 10.0, 2);
        running.running_tasks = 2;
        let (jobs, _) = estimate(&[running], 2);
        assert_eq!(jobs[0].estimate.as_ref().map(|e| e.seconds), Some(10.0));
        let s = DurationSample::of(&[1.0, 3.0]);
        assert_eq!((s.count, s.mean, s.std_dev), (2, 2.0, 1.0));
    }
}
