//! When one task run reached each step on this worker: assignment received, first process
//! spawned, commands ended, log (and previews) stored, final status acknowledged. Logged once per finished task at
//! debug level under the target `castanet_worker::timings`, which `castanet bench
//! --scenario real-workers` reads to split a task's time into worker overhead and program.
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The steps of one task run, as they happen.
#[derive(Debug)]
pub struct TaskTimings {
    /// Wall clock at assignment, so a record can be lined up with other processes' clocks.
    received_wall: SystemTime,
    received: Instant,
    spawned: OnceLock<Instant>,
    commands_ended: OnceLock<Instant>,
    log_stored: OnceLock<Instant>,
}

impl TaskTimings {
    /// Starts the record: the assignment has just arrived.
    pub fn received_now() -> Self {
        Self {
            received_wall: SystemTime::now(),
            received: Instant::now(),
            spawned: OnceLock::new(),
            commands_ended: OnceLock::new(),
            log_stored: OnceLock::new(),
        }
    }

    /// A program of the task was started (only the first counts).
    pub fn spawned(&self) {
        let _ = self.spawned.set(Instant::now());
    }

    /// The task's commands are done (only the first call counts).
    pub fn commands_ended(&self) {
        let _ = self.commands_ended.set(Instant::now());
    }

    /// Every log line (and the last preview) is stored on the manager.
    pub fn log_stored(&self) {
        let _ = self.log_stored.set(Instant::now());
    }

    /// Logs the record; called once the final status was acknowledged.
    pub fn log_acknowledged(&self, job_id: &str, task_id: &str) {
        let acknowledged = Instant::now();
        let micros = |from: Instant, to: Option<&Instant>| {
            to.map_or(-1, |to| {
                i64::try_from(to.saturating_duration_since(from).as_micros()).unwrap_or(i64::MAX)
            })
        };
        let received_unix_us = self
            .received_wall
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        let ended = self.commands_ended.get();
        tracing::debug!(
            job_id,
            task_id,
            received_unix_us,
            spawn_us = micros(self.received, self.spawned.get()),
            ended_us = micros(self.received, ended),
            log_stored_us = micros(self.received, self.log_stored.get()),
            acknowledged_us = micros(self.received, Some(&acknowledged)),
            "task timings"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_count_once() {
        let timings = TaskTimings::received_now();
        timings.spawned();
        let first = timings.spawned.get().copied();
        timings.spawned();
        assert_eq!(timings.spawned.get().copied(), first);
        assert!(timings.commands_ended.get().is_none());
        timings.commands_ended();
        assert!(timings.commands_ended.get() >= first.as_ref());
    }
}
