//! Runs one assigned task: runs its commands in order while "Started", progress and the log
//! stream to the manager (the commands never wait for them), then waits until the log and
//! those updates are stored and reports the result.
//! An aborted task (or one whose lease was lost) reports nothing more.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use castanet_protocol::v1::{AssignTask, Failure, FaultClass, LogTail, TaskStatus, TaskUpdate};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinError;
use tokio_util::sync::CancellationToken;

use crate::client::ManagerClient;
use crate::commands::{self, CommandContext, CommandError};
use crate::leftovers::ProcessRecords;
use crate::logs::{LogSink, LogSpool, spawn_uploader};
use crate::preview::{PreviewSink, spawn_preview_uploader};
use crate::progress::{Progress, ProgressSink};
use crate::slot_gpus::SlotPin;
use crate::timings::TaskTimings;
use crate::upstream::{UpdateError, Upstream};

/// Lines a task may have queued for the uploader before commands wait for it.
const LOG_QUEUE_LINES: usize = 1024;

/// A task still running after this long says it started; a shorter one only reports its
/// result (a round trip less for the short tasks of a big job).
const STARTED_AFTER: Duration = Duration::from_millis(200);

/// Progress updates are sent at most this often (the newest value always goes out).
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// How long an aborted run waits for its log uploader to park the unsent lines.
const LOG_PARK_WAIT: Duration = Duration::from_secs(2);

/// While the manager asked for no keep-alives, how often to look again (a reconnect may
/// bring a manager that wants them).
const KEEPALIVE_RECHECK: Duration = Duration::from_secs(30);

/// What runners share.
#[derive(Clone)]
pub struct RunnerDeps {
    pub client: ManagerClient,
    pub upstream: Arc<Upstream>,
    pub settings: Arc<CommandSettings>,
    /// Where log lines wait on disk while the manager is unreachable.
    pub log_spool: LogSpool,
}

/// The worker configuration commands need.
#[derive(Debug, Clone)]
pub struct CommandSettings {
    /// A program silent this long is killed as hung.
    pub hung_after: Duration,
    /// Deletes only happen inside these directories.
    pub storage_roots: Arc<Vec<PathBuf>>,
    /// Where file links in the storage roots may point for a copy (see `CommandContext`).
    pub link_roots: Arc<Vec<PathBuf>>,
    /// How long a command may run unless it sets `timeout_seconds` (None: no limit).
    pub command_time_limit: Option<Duration>,
    /// Per slot: the GPUs its processes use (None: unpinned). A task runs in slot
    /// `AssignTask::slot`, which the running-task table sets to a slot free on this worker.
    pub slot_pins: Arc<Vec<Option<Arc<SlotPin>>>>,
    /// Where command process groups are recorded, so a crashed worker's next start can
    /// kill what it left running.
    pub processes: ProcessRecords,
    /// Without shared storage: fetches inputs and uploads outputs around the commands.
    pub transfers: Option<Arc<crate::transfer::Transfers>>,
}

/// How a task run ended, from this worker's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Failed(String),
    /// Aborted by the manager or by shutdown; nothing was reported.
    Aborted,
    /// The manager refused an update (lease lost, unknown worker, rejected); the task stopped.
    Stopped(String),
}

/// Why the commands stopped early.
enum Stop {
    Aborted,
    Failed { fault: FaultClass, message: String },
    Update(UpdateError),
}

/// Runs `task` to its end. `cancel` aborts it; `timings` records its steps.
pub async fn run_task(
    deps: &RunnerDeps,
    task: AssignTask,
    cancel: CancellationToken,
    timings: Arc<TaskTimings>,
) -> Outcome {
    let reporter = Reporter {
        upstream: &deps.upstream,
        task_id: &task.task_id,
        lease_epoch: task.lease_epoch,
        cancel: &cancel,
        last_sent: std::sync::Mutex::new(tokio::time::Instant::now()),
        turn: tokio::sync::Mutex::new(()),
    };
    let (log, lines) = LogSink::channel(LOG_QUEUE_LINES);
    // The log uploader is not stopped by `cancel` itself: an aborted run whose result is
    // kept in the journal parks its unsent lines in the spool instead (below). The guard
    // stops it whenever this function returns.
    let log_cancel = CancellationToken::new();
    let _stop_uploader = log_cancel.clone().drop_guard();
    let log_park = CancellationToken::new();
    let uploader = spawn_uploader(
        deps.client.clone(),
        task.task_id.clone(),
        task.lease_epoch,
        lines,
        &deps.log_spool,
        log_cancel.clone(),
        log_park.clone(),
    );
    let (preview, previews) = spawn_preview_uploader(
        deps.client.clone(),
        task.task_id.clone(),
        task.lease_epoch,
        cancel.child_token(),
    );
    let (progress, progress_rx) = ProgressSink::channel();
    let (milestones, milestones_rx) = mpsc::unbounded_channel();
    let sinks = Sinks {
        progress,
        preview,
        milestones,
    };
    // The commands do not wait for their updates: with the manager unreachable they run on
    // while the updates are retried. A refused update (the lease is gone) stops them.
    let commands_cancel = cancel.child_token();
    let commands_ended = CancellationToken::new();
    let (result, reported) = tokio::join!(
        async {
            let result = run_commands(
                &task,
                &log,
                &commands_cancel,
                &deps.settings,
                sinks,
                &timings,
            )
            .await;
            timings.commands_ended();
            commands_ended.cancel();
            result
        },
        report_while_running(
            &reporter,
            progress_rx,
            milestones_rx,
            &commands_cancel,
            &commands_ended
        ),
    );
    let result = match reported {
        Err(refused) if !matches!(refused, UpdateError::Canceled) => Err(Stop::Update(refused)),
        _ => result,
    };
    let last_lines = log.last_lines();
    drop(log);
    if let Err(Stop::Aborted | Stop::Update(_)) = &result {
        log_cancel.cancel();
    }
    // Every line is stored before the final status (or goes with it), so the log is
    // complete when it shows. Stopped while the manager is unreachable: the unsent lines
    // stay spooled and the final status waits in the journal, both delivered after the
    // next start.
    let uploads = async { (uploader.await, previews.await) };
    tokio::pin!(uploads);
    let log_tail = tokio::select! {
        biased;
        () = cancel.cancelled() => {
            keep_for_restart(deps, &task, &result, last_lines, &log_park, &mut uploads).await;
            return Outcome::Aborted;
        }
        // The newest frame's preview is there when the task shows as done.
        (tail, _) = &mut uploads => {
            timings.log_stored();
            tail.ok().flatten()
        }
    };
    let Some(update) = final_update(&task, &result, last_lines, log_tail) else {
        return match result {
            Err(Stop::Update(e)) => stopped_by(e),
            _ => Outcome::Aborted,
        };
    };
    if cancel.is_cancelled() {
        // Aborted between the uploads and the report: the result still waits for the
        // next start (`Upstream::send` keeps one whose delivery is canceled midway).
        if deps.upstream.keep_for_restart(update).await {
            tracing::info!(task_id = %task.task_id, "the task's result waits for the manager in the journal");
        }
        return Outcome::Aborted;
    }
    if let Err(e) = reporter.deliver(update).await {
        return stopped_by(e);
    }
    timings.log_acknowledged(&task.job_id, &task.task_id);
    match result {
        Err(Stop::Failed { message, .. }) => Outcome::Failed(message),
        _ => Outcome::Completed,
    }
}

/// An aborted run whose commands had ended: its result waits in the journal for the next
/// start, with its log: the unsent lines are parked in the spool (which the session sends
/// before it replays the journal), or go in the update when the uploader had handed them
/// over already.
async fn keep_for_restart(
    deps: &RunnerDeps,
    task: &AssignTask,
    result: &Result<u32, Stop>,
    last_lines: Vec<String>,
    log_park: &CancellationToken,
    uploads: impl Future<Output = (Result<Option<LogTail>, JoinError>, Result<(), JoinError>)>,
) {
    if !deps.upstream.keeps_results() {
        return;
    }
    let Some(mut update) = final_update(task, result, last_lines, None) else {
        return;
    };
    log_park.cancel();
    match tokio::time::timeout(LOG_PARK_WAIT, uploads).await {
        Ok((Ok(Some(tail)), _)) => update.log_tail = Some(tail),
        Ok(_) => {}
        Err(_) => {
            tracing::warn!(task_id = %task.task_id, "the task's log could not be parked in the spool in time");
        }
    }
    if deps.upstream.keep_for_restart(update).await {
        tracing::info!(task_id = %task.task_id, "the task's result waits for the manager in the journal");
    }
}

/// A command finished: the task's activity and steps done so far.
struct Milestone {
    activity: String,
    steps: u32,
}

/// The updates of a running task, in order: "Started" once it ran for [`STARTED_AFTER`],
/// then each milestone and the (throttled) progress the commands publish, until the
/// commands end and all is sent; meanwhile a keep-alive whenever the task sent nothing for
/// the manager's keep-alive interval (a silent render is alive as long as its worker is).
/// A task whose commands end sooner sends none of these: its final status says it all. A
/// refused update cancels `commands` and is returned.
async fn report_while_running(
    reporter: &Reporter<'_>,
    progress: watch::Receiver<Progress>,
    mut milestones: mpsc::UnboundedReceiver<Milestone>,
    commands: &CancellationToken,
    commands_ended: &CancellationToken,
) -> Result<(), UpdateError> {
    tokio::select! {
        () = tokio::time::sleep(STARTED_AFTER) => {}
        () = commands_ended.cancelled() => return Ok(()),
    }
    let stop_commands_on_refusal = |result: Result<(), UpdateError>| {
        if let Err(refused) = &result
            && !matches!(refused, UpdateError::Canceled)
        {
            commands.cancel();
        }
        result
    };
    stop_commands_on_refusal(reporter.send(TaskStatus::Active, "Started", None).await)?;
    let send_milestones = async {
        while let Some(milestone) = milestones.recv().await {
            let sent = reporter
                .send(
                    TaskStatus::Unspecified,
                    &milestone.activity,
                    Some(milestone.steps),
                )
                .await;
            stop_commands_on_refusal(sent)?;
        }
        Ok(())
    };
    let send_progress =
        async { stop_commands_on_refusal(forward_progress(progress, reporter).await) };
    let done = CancellationToken::new();
    let reporting = async {
        let result = tokio::try_join!(send_milestones, send_progress).map(|_| ());
        done.cancel();
        result
    };
    let keep_alive = async { stop_commands_on_refusal(keep_alive(reporter, &done).await) };
    // Not try_join: neither side is dropped in the middle of a send.
    let (reported, kept_alive) = tokio::join!(reporting, keep_alive);
    reported.and(kept_alive)
}

/// Sends a keep-alive whenever the task has sent nothing for the keep-alive interval,
/// until `done`.
async fn keep_alive(reporter: &Reporter<'_>, done: &CancellationToken) -> Result<(), UpdateError> {
    loop {
        let due = match reporter.upstream.keepalive() {
            Some(every) => reporter.last_sent() + every,
            None => tokio::time::Instant::now() + KEEPALIVE_RECHECK,
        };
        tokio::select! {
            () = done.cancelled() => return Ok(()),
            () = tokio::time::sleep_until(due) => {}
        }
        if let Some(every) = reporter.upstream.keepalive()
            && reporter.last_sent().elapsed() >= every
        {
            reporter.send_keepalive().await?;
        }
    }
}

/// Sends what the commands publish on `progress`: at most one update per
/// [`PROGRESS_INTERVAL`], always the newest value, and the last one before returning (when
/// every sink is gone).
async fn forward_progress(
    mut progress: watch::Receiver<Progress>,
    reporter: &Reporter<'_>,
) -> Result<(), UpdateError> {
    let mut sent = Progress::default();
    let mut next_allowed = tokio::time::Instant::now();
    loop {
        let mut closed = progress.changed().await.is_err();
        if !closed {
            // Coalesce until the interval is over; stop waiting as soon as the commands end.
            tokio::select! {
                () = tokio::time::sleep_until(next_allowed) => {}
                () = async { while progress.changed().await.is_ok() {} } => closed = true,
            }
        }
        let current = progress.borrow_and_update().clone();
        if current != sent {
            let activity = current.activity.clone().unwrap_or_default();
            let result = reporter
                .send_with_progress(
                    TaskStatus::Unspecified,
                    &activity,
                    current.steps_completed,
                    current.percent,
                )
                .await;
            result?;
            sent = current;
            next_allowed = tokio::time::Instant::now() + PROGRESS_INTERVAL;
        }
        if closed {
            return Ok(());
        }
    }
}

/// Runs the commands in order; returns the steps completed. Each command's progress is
/// scaled into its share of the task's 0–100 %.
async fn run_commands(
    task: &AssignTask,
    log: &LogSink,
    cancel: &CancellationToken,
    settings: &CommandSettings,
    sinks: Sinks,
    timings: &Arc<TaskTimings>,
) -> Result<u32, Stop> {
    let total = task.commands.len();
    let staged = match &settings.transfers {
        Some(transfers) => Some(
            crate::transfer::stage_in(transfers, task, log, cancel)
                .await
                .map_err(|e| staged_stop(e, FaultClass::MissingInput))?,
        ),
        None => None,
    };
    // An abort (or shutdown) during the check is an abort, not a decline.
    let ready = tokio::select! {
        biased;
        () = cancel.cancelled() => return Err(Stop::Aborted),
        ready = crate::self_check::task_ready(&task.commands, &settings.storage_roots) => ready,
    };
    if let Err(problem) = ready {
        log.line(format!(
            "Declined: this worker's self-check failed: {problem}. It asks to be blocklisted \
             for this job's {} tasks; the task goes back to the queue.",
            task.task_type
        ))
        .await;
        return Err(Stop::Failed {
            fault: FaultClass::SelfCheck,
            message: problem,
        });
    }
    let mut steps = 0u32;
    for (index, command) in task.commands.iter().enumerate() {
        if cancel.is_cancelled() {
            return Err(Stop::Aborted);
        }
        let number = index + 1;
        tracing::debug!(task_id = %task.task_id, command = %command.name, "running command {number}/{total}");
        let ctx = CommandContext {
            task_id: task.task_id.clone(),
            log: log.clone(),
            cancel: cancel.clone(),
            progress: sinks
                .progress
                .share(index, total)
                .counting_steps(steps, command.total_step_count.max(1)),
            preview: sinks.preview.clone(),
            hung_after: settings.hung_after,
            storage_roots: settings.storage_roots.clone(),
            link_roots: settings.link_roots.clone(),
            time_limit: settings.command_time_limit,
            slot_pin: settings
                .slot_pins
                .get(task.slot as usize)
                .cloned()
                .flatten(),
            processes: settings.processes.clone(),
            timings: timings.clone(),
        };
        match commands::run(&ctx, &command.name, &command.parameters_json).await {
            Ok(()) => {}
            Err(CommandError::Canceled) => return Err(Stop::Aborted),
            Err(CommandError::Failed { fault, message }) => {
                let message = format!("command {number}/{total} ({}): {message}", command.name);
                log.line(format!("Failed: {message}")).await;
                return Err(Stop::Failed { fault, message });
            }
        }
        // A command that counts its own steps reports them itself (Blender, later); the
        // others are one step each.
        steps = steps.saturating_add(command.total_step_count.max(1));
        // The last command's steps ride along with the final status.
        if number < total {
            let activity = format!("Finished command {number}/{total}: {}", command.name);
            // Gone only when the reporting stopped on a refusal, which cancels the commands.
            let _ = sinks.milestones.send(Milestone { activity, steps });
        }
    }
    if let (Some(transfers), Some(staged)) = (&settings.transfers, &staged) {
        crate::transfer::stage_out(transfers, task, staged, log, cancel)
            .await
            .map_err(|e| staged_stop(e, FaultClass::OutputUnwritable))?;
    }
    Ok(steps)
}

/// How a failed transfer of a worker without shared storage ends the task.
fn staged_stop(error: crate::transfer::StageError, fault: FaultClass) -> Stop {
    use crate::transfer::StageError;
    match error {
        StageError::Canceled => Stop::Aborted,
        StageError::Declined(message) => Stop::Failed {
            fault: FaultClass::SelfCheck,
            message,
        },
        StageError::Refused(message) | StageError::Local(message) => {
            Stop::Failed { fault, message }
        }
    }
}

/// Where a task's commands publish progress and previews.
struct Sinks {
    progress: ProgressSink,
    preview: PreviewSink,
    milestones: mpsc::UnboundedSender<Milestone>,
}

/// Sends this task lease's updates; nothing once the task is aborted.
struct Reporter<'a> {
    upstream: &'a Upstream,
    task_id: &'a str,
    lease_epoch: u64,
    cancel: &'a CancellationToken,
    /// When an update of this task was last delivered.
    last_sent: std::sync::Mutex<tokio::time::Instant>,
    /// Held while one update is numbered and delivered: a task's updates arrive in order
    /// (the milestones, progress and keep-alives are sent from concurrent loops).
    turn: tokio::sync::Mutex<()>,
}

impl Reporter<'_> {
    fn last_sent(&self) -> tokio::time::Instant {
        *self
            .last_sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// An update that changes nothing: the manager's task timeout starts over.
    async fn send_keepalive(&self) -> Result<(), UpdateError> {
        self.deliver(TaskUpdate {
            task_id: self.task_id.to_string(),
            lease_epoch: self.lease_epoch,
            ..TaskUpdate::default()
        })
        .await
    }

    async fn send(
        &self,
        status: TaskStatus,
        activity: &str,
        steps_completed: Option<u32>,
    ) -> Result<(), UpdateError> {
        self.send_with_progress(status, activity, steps_completed, None)
            .await
    }

    async fn send_with_progress(
        &self,
        status: TaskStatus,
        activity: &str,
        steps_completed: Option<u32>,
        progress_percent: Option<u32>,
    ) -> Result<(), UpdateError> {
        self.deliver(TaskUpdate {
            task_id: self.task_id.to_string(),
            lease_epoch: self.lease_epoch,
            status: status as i32,
            activity: Some(activity.to_string()),
            steps_completed,
            progress_percent: progress_percent.map(|p| p as f32),
            ..TaskUpdate::default()
        })
        .await
    }

    async fn deliver(&self, update: TaskUpdate) -> Result<(), UpdateError> {
        if self.cancel.is_cancelled() {
            return Err(UpdateError::Canceled);
        }
        let _turn = self.turn.lock().await;
        self.upstream.send(update, self.cancel).await?;
        *self
            .last_sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = tokio::time::Instant::now();
        Ok(())
    }
}

/// The final status of a run whose commands ended (completed or failed), with the log
/// lines not uploaded on their own.
fn final_update(
    task: &AssignTask,
    result: &Result<u32, Stop>,
    last_log_lines: Vec<String>,
    log_tail: Option<LogTail>,
) -> Option<TaskUpdate> {
    let mut update = TaskUpdate {
        task_id: task.task_id.clone(),
        lease_epoch: task.lease_epoch,
        log_tail,
        ..TaskUpdate::default()
    };
    match result {
        Ok(steps) => {
            update.status = TaskStatus::Completed as i32;
            update.activity = Some("Completed".into());
            update.steps_completed = Some(*steps);
            update.progress_percent = Some(100.0);
        }
        Err(Stop::Failed { fault, message }) => {
            update.status = TaskStatus::Failed as i32;
            update.activity = Some(if *fault == FaultClass::SelfCheck {
                format!("Declined: {message}")
            } else {
                format!("Failed: {message}")
            });
            update.failure = Some(Failure {
                fault_class: *fault as i32,
                message: message.clone(),
                last_log_lines,
            });
        }
        Err(Stop::Aborted | Stop::Update(_)) => return None,
    }
    Some(update)
}

fn stopped_by(error: UpdateError) -> Outcome {
    match error {
        UpdateError::Canceled => Outcome::Aborted,
        other => Outcome::Stopped(other.to_string()),
    }
}
