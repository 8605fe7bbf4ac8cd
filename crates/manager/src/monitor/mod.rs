//! Background checks that need time to pass: task and worker timeouts (with a grace
//! period after start so reconnecting workers keep their tasks). Time comes from a
//! `Clock`, so tests move it forward instead of sleeping.
//! `run` also starts the sleep-schedule monitor and the settler of lazy status requests.
mod clock;
pub mod job_dependencies;
mod offline_workers;
pub mod rechunker;
pub mod retention;
mod sleep_schedules;
mod timeouts;

pub use clock::{Clock, ManualClock, SystemClock};
pub use retention::{RetentionConfig, RetentionReport, RetentionSettings};
pub use sleep_schedules::{SleepReport, SleepScheduleMonitor};
pub use timeouts::TimeoutReport;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::AppState;

/// Monitor limits, from the config.
#[derive(Clone, Copy, Debug)]
pub struct MonitorSettings {
    /// Zero disables task and worker timeouts (as upstream).
    pub task_timeout: Duration,
    pub worker_timeout: Duration,
    pub startup_grace: Duration,
}

impl MonitorSettings {
    pub fn from_config(config: &crate::ManagerConfig) -> Self {
        Self {
            task_timeout: Duration::from_secs(config.task_timeout_seconds),
            worker_timeout: Duration::from_secs(config.worker_timeout_seconds),
            startup_grace: Duration::from_secs(config.startup_grace_seconds),
        }
    }

    pub fn enabled(&self) -> bool {
        !self.task_timeout.is_zero()
    }

    /// How often to check: a quarter of the shortest timeout, between 100 ms and 30 s.
    pub fn interval(&self) -> Duration {
        let shortest = self.task_timeout.min(self.worker_timeout);
        (shortest / 4).clamp(Duration::from_millis(100), Duration::from_secs(30))
    }

    /// How often a running task's worker says it still runs when nothing else changes
    /// (zero: never): three times per task timeout, so one late keep-alive is no timeout.
    pub fn task_keepalive(&self) -> Duration {
        if !self.enabled() {
            return Duration::ZERO;
        }
        (self.task_timeout / 3).max(Duration::from_millis(100))
    }

    /// After how long without a word from the manager a worker stops its tasks (zero:
    /// never). Half the worker timeout, so the worker stops them well before this manager
    /// hands them to others; at least 1 s, so a busy moment does not stop tasks.
    pub fn fence_after(&self) -> Duration {
        if !self.enabled() {
            return Duration::ZERO;
        }
        (self.worker_timeout / 2).max(Duration::from_secs(1))
    }

    /// How often every open instruction stream gets a heartbeat: four per fence time.
    pub fn heartbeat_interval(&self) -> Duration {
        (self.fence_after() / 4).max(Duration::from_millis(100))
    }
}

pub struct Monitor {
    state: AppState,
    clock: Arc<dyn Clock>,
    settings: MonitorSettings,
    started: chrono::DateTime<chrono::Utc>,
}

impl Monitor {
    pub fn new(state: AppState, clock: Arc<dyn Clock>, settings: MonitorSettings) -> Self {
        let started = clock.now();
        Self {
            state,
            clock,
            settings,
            started,
        }
    }

    /// Whether the startup grace period is over.
    pub fn grace_over(&self) -> bool {
        let grace = chrono::Duration::from_std(self.settings.startup_grace)
            .unwrap_or(chrono::Duration::MAX);
        self.clock.now() >= self.started + grace
    }

    /// One pass of every check.
    pub async fn check_once(&self) -> TimeoutReport {
        let mut report = TimeoutReport::default();
        if !self.settings.enabled() {
            return report;
        }
        let now = self.clock.now();
        if let Err(e) = self.touch_connected(now).await {
            tracing::warn!("cannot mark connected workers as seen: {e}");
        }
        if !self.grace_over() {
            return report;
        }
        if let Err(e) = timeouts::check(&self.state, &self.settings, now, &mut report).await {
            tracing::error!("timeout check failed: {e}");
        }
        report
    }

    async fn touch_connected(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), crate::store::StoreError> {
        let connected = self.state.dispatcher.connected_worker_ids();
        self.state.store.touch_workers(&connected, now).await
    }

    /// Checks every `interval` until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let sleep_check = Duration::from_secs(self.state.config.sleep_schedule_check_seconds);
        let sleep_monitor = SleepScheduleMonitor::new(self.state.clone(), self.clock.clone());
        self.state
            .background
            .spawn(sleep_monitor.run(sleep_check, shutdown.clone()));
        let retention = RetentionSettings::from_config(&self.state.config.retention);
        self.state.background.spawn(retention::run(
            self.state.clone(),
            self.clock.clone(),
            retention,
            shutdown.clone(),
        ));
        self.state
            .background
            .spawn(crate::worker_status::run_settler(
                self.state.clone(),
                shutdown.clone(),
            ));
        self.state.background.spawn(
            self.state
                .dispatcher
                .clone()
                .run_feasibility_checks(crate::scheduler::FEASIBILITY_INTERVAL, shutdown.clone()),
        );
        if !self.settings.enabled() {
            tracing::info!("task_timeout_seconds is 0: task and worker timeouts are off");
            return;
        }
        self.state.background.spawn(
            self.state
                .dispatcher
                .clone()
                .run_heartbeats(self.settings.heartbeat_interval(), shutdown.clone()),
        );
        let mut ticks = tokio::time::interval(self.settings.interval());
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
