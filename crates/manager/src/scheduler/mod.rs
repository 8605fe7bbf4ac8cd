//! Pushes work to connected workers. One dispatcher task wakes on every event that can
//! make work runnable (a job submitted, a task finished, a worker connected) and fills
//! every free worker slot; there is no polling. The store's scheduling query decides
//! *which* task; this module decides *who* is asked and delivers the assignment.
mod connected;
mod effector;
mod feasibility;
mod settings;

pub use connected::ConnectionId;
pub use feasibility::FEASIBILITY_INTERVAL;
pub use settings::{RetryConfig, check_pool_name, resources_commented_toml};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use castanet_protocol::v1::{self, Instruction, instruction::Kind};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::events::{Event, EventBus};
use crate::logs::TaskLogs;
use crate::store::{Assignment, Store, TaskToAbort};
use connected::ConnectedWorker;

/// How soon a dispatch pass that failed (the database refused the write) is tried again;
/// each failure after it doubles the wait, up to `DISPATCH_RETRY_MAX`.
const DISPATCH_RETRY: Duration = Duration::from_secs(1);
const DISPATCH_RETRY_MAX: Duration = Duration::from_secs(30);

/// The sending half of a worker's instruction stream.
pub type InstructionSender = mpsc::UnboundedSender<Result<Instruction, tonic::Status>>;

#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    logs: TaskLogs,
    events: EventBus,
    workers: Mutex<HashMap<String, ConnectedWorker>>,
    wake: Notify,
    next_connection: std::sync::atomic::AtomicU64,
    /// Workers with a lazy status request waiting for their tasks to end.
    lazy_status_pending: Mutex<std::collections::HashSet<String>>,
    /// Wakes the status settler when such a worker lost a task without a report.
    lazy_status_check: Notify,
    /// Wakes the impossible-task check (`feasibility.rs`).
    feasibility: Notify,
    /// What the check was asked to look at since it last ran.
    feasibility_asked: Mutex<crate::store::FeasibilityScope>,
}

/// What the dispatcher needs to know about a worker that opens its stream.
pub struct WorkerSession {
    pub worker_id: String,
    pub name: String,
    pub slots: usize,
    pub task_types: Vec<String>,
    /// Tasks it still runs from before (task id, lease epoch).
    pub running: Vec<(String, i64)>,
    /// Variables expanded for the worker's platform (from its stored worker row).
    pub variables: crate::variables::WorkerVariables,
}

impl Dispatcher {
    pub fn new(store: Store, logs: TaskLogs, events: EventBus) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                logs,
                events,
                workers: Mutex::new(HashMap::new()),
                wake: Notify::new(),
                next_connection: std::sync::atomic::AtomicU64::new(1),
                lazy_status_pending: Mutex::new(std::collections::HashSet::new()),
                lazy_status_check: Notify::new(),
                feasibility: Notify::new(),
                feasibility_asked: Mutex::new(crate::store::FeasibilityScope::Nothing),
            }),
        }
    }

    fn workers(&self) -> MutexGuard<'_, HashMap<String, ConnectedWorker>> {
        // A panic while holding this lock cannot leave the map half-updated (every
        // mutation is a single insert/remove), so a poisoned lock is still usable.
        self.inner
            .workers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Asks the dispatcher to look for work to hand out.
    pub fn kick(&self) {
        self.inner.wake.notify_one();
    }

    /// Registers a worker's freshly opened instruction stream, replacing an older one.
    pub fn connect(&self, session: WorkerSession, sender: InstructionSender) -> ConnectionId {
        let id = ConnectionId(
            self.inner
                .next_connection
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        );
        let mut worker =
            ConnectedWorker::new(id, session.name, session.slots, session.task_types, sender);
        worker.variables = session.variables;
        let worker_id = session.worker_id;
        {
            let mut workers = self.workers();
            let worker = workers.entry(worker_id).insert_entry(worker).into_mut();
            for (task_id, epoch) in session.running {
                worker.hold(task_id, epoch, None);
            }
        }
        self.kick();
        id
    }

    /// Forgets a worker's stream, unless a newer one replaced it already.
    pub fn disconnect(&self, worker_id: &str, connection: ConnectionId) {
        let mut workers = self.workers();
        if workers
            .get(worker_id)
            .is_some_and(|w| w.connection == connection)
        {
            workers.remove(worker_id);
        }
    }

    /// Forgets every stream of a worker (it signed off).
    pub fn disconnect_all(&self, worker_id: &str) {
        self.workers().remove(worker_id);
    }

    /// Ends every instruction stream (manager shutdown).
    pub fn close_all(&self) {
        self.workers().clear();
    }

    /// Free slots of a connected worker; `None` when it is not connected.
    pub fn free_slots(&self, worker_id: &str) -> Option<usize> {
        self.workers().get(worker_id).map(|w| w.free_slots())
    }

    /// (task types, slots) of each worker with an open instruction stream.
    pub fn connected_capacity(&self) -> Vec<(Vec<String>, usize)> {
        self.workers()
            .values()
            .map(|w| (w.task_types.clone(), w.slots))
            .collect()
    }

    /// Ids of the workers with an open instruction stream.
    pub fn connected_worker_ids(&self) -> Vec<String> {
        self.workers().keys().cloned().collect()
    }

    /// The token hash remembered for a connected worker, if checked on this connection.
    pub fn known_token_hash(&self, worker_id: &str) -> Option<String> {
        self.workers()
            .get(worker_id)
            .and_then(|w| w.token_hash.clone())
    }

    /// Remembers a connected worker's checked token hash until its connection ends.
    pub fn remember_token_hash(&self, worker_id: &str, token_hash: String) {
        if let Some(worker) = self.workers().get_mut(worker_id) {
            worker.token_hash = Some(token_hash);
        }
    }

    pub fn is_connected(&self, worker_id: &str) -> bool {
        self.workers().contains_key(worker_id)
    }

    /// Marks (or unmarks) a worker as waiting for its tasks to end before a lazy status
    /// change; a cheap in-memory check on every finished task.
    pub fn set_lazy_status_pending(&self, worker_id: &str, pending: bool) {
        let mut set = self
            .inner
            .lazy_status_pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if pending {
            set.insert(worker_id.to_string());
        } else {
            set.remove(worker_id);
        }
    }

    /// Waits until an abort freed a worker that waits for a lazy status change.
    pub async fn lazy_status_check_requested(&self) {
        self.inner.lazy_status_check.notified().await;
    }

    pub fn is_lazy_status_pending(&self, worker_id: &str) -> bool {
        self.inner
            .lazy_status_pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains(worker_id)
    }

    /// Sends a non-assignment instruction (a status change) down a worker's stream;
    /// false when the worker is not connected.
    pub fn send_to_worker(&self, worker_id: &str, kind: Kind) -> bool {
        self.workers()
            .get(worker_id)
            .is_some_and(|w| w.send(kind).is_ok())
    }

    /// Sends a heartbeat down every open instruction stream every `interval`, so workers
    /// can tell a silent manager from an idle farm (their fence).
    pub async fn run_heartbeats(self, interval: Duration, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            for worker in self.workers().values() {
                // A closed stream is cleaned up by its own connection task.
                let _ = worker.send(Kind::Heartbeat(v1::Heartbeat {}));
            }
        }
    }

    /// The job of `task_id` when the connected worker holds it under lease `epoch` (as far
    /// as the dispatcher knows, which is what it handed out; None: ask the database).
    pub fn held_job(&self, worker_id: &str, task_id: &str, epoch: i64) -> Option<String> {
        let workers = self.workers();
        let worker = workers.get(worker_id)?;
        worker.held_job(task_id, epoch).map(str::to_string)
    }

    /// A worker's task ended (completed, failed, handed back): its slot is free.
    pub fn task_finished(&self, worker_id: &str, task_id: &str) {
        if let Some(worker) = self.workers().get_mut(worker_id) {
            worker.release(task_id);
        }
        self.kick();
    }

    /// Tells the workers running these tasks to stop them, and frees their slots.
    pub fn abort_tasks(&self, tasks: &[TaskToAbort], reason: &str) {
        let mut workers = self.workers();
        for task in tasks {
            let Some(worker) = workers.get_mut(&task.worker_id) else {
                continue;
            };
            worker.release(&task.task_id);
            let abort = Kind::AbortTask(v1::AbortTask {
                task_id: task.task_id.clone(),
                lease_epoch: task.lease_epoch as u64,
                reason: reason.to_string(),
            });
            // A closed stream means the worker is gone; it will not run the task anyway.
            let _ = worker.send(abort);
        }
        drop(workers);
        if tasks
            .iter()
            .any(|t| self.is_lazy_status_pending(&t.worker_id))
        {
            self.inner.lazy_status_check.notify_one();
        }
        self.kick();
    }

    /// Aborts tasks of one job on their workers and announces the tasks' change.
    pub fn abort_and_announce(&self, job_id: &str, tasks: &[TaskToAbort], reason: &str) {
        self.abort_tasks(tasks, reason);
        for task in tasks {
            self.inner
                .events
                .publish(Event::task(job_id, &task.task_id));
        }
        self.inner.events.publish(Event::job(job_id));
    }

    /// Runs the dispatch loop until `shutdown` is cancelled. A pass that failed is tried
    /// again after `DISPATCH_RETRY`, then after waits doubling up to `DISPATCH_RETRY_MAX`
    /// while it keeps failing; one ERROR per spell of failures, not one per try.
    pub async fn run(self, shutdown: CancellationToken) {
        // The wait before the next try while passes fail; None while they succeed.
        let mut retry_after: Option<Duration> = None;
        loop {
            if retry_after.is_none() {
                // A task waiting out its retry backoff becomes runnable without any event.
                let backoff_ends = self.next_backoff_end().await;
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = self.inner.wake.notified() => {}
                    _ = sleep_if_some(backoff_ends) => {}
                }
            }
            match self.dispatch_all().await {
                Ok(()) => {
                    if retry_after.take().is_some() {
                        tracing::info!("dispatching works again");
                    }
                }
                Err(e) => {
                    let wait = match retry_after {
                        None => {
                            tracing::error!(
                                "dispatching tasks failed (trying again in {DISPATCH_RETRY:?}): {e}"
                            );
                            DISPATCH_RETRY
                        }
                        Some(waited) => {
                            let wait = (waited * 2).min(DISPATCH_RETRY_MAX);
                            tracing::debug!(
                                "dispatching tasks failed again (trying again in {wait:?}): {e}"
                            );
                            wait
                        }
                    };
                    retry_after = Some(wait);
                    // The loop tries again by itself: once the cause is gone (a full
                    // database disk) nothing else may wake it, and idle workers would wait
                    // for a submission or a worker to connect. A kick (new work, a worker
                    // connecting) ends a long wait early, but not before `DISPATCH_RETRY`.
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(DISPATCH_RETRY) => {}
                    }
                    let rest = wait.saturating_sub(DISPATCH_RETRY);
                    if !rest.is_zero() {
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            _ = tokio::time::sleep(rest) => {}
                            _ = self.inner.wake.notified() => {}
                        }
                    }
                }
            }
        }
    }

    /// How long until the first task waiting out its retry backoff may run; None when no
    /// task waits (or the database cannot say: the next event wakes the loop anyway).
    async fn next_backoff_end(&self) -> Option<Duration> {
        let at = match self.inner.store.next_retry_at().await {
            Ok(at) => at?,
            Err(e) => {
                tracing::debug!("cannot read the next retry time: {e}");
                return None;
            }
        };
        let wait = (at - chrono::Utc::now()).to_std().unwrap_or_default();
        // Past the stored time, so the scheduling query's `retry_at <= now` holds.
        Some(wait + Duration::from_millis(5))
    }

    /// Fills free slots until a whole pass over the workers assigns nothing.
    async fn dispatch_all(&self) -> Result<(), crate::store::StoreError> {
        // After a round that filled every free slot the queue most likely holds more:
        // the cheap "anything runnable?" read is skipped then.
        let mut check_queue = true;
        loop {
            let round_started = std::time::Instant::now();
            if check_queue && !self.inner.store.has_runnable_tasks().await? {
                return Ok(());
            }
            let candidates: Vec<(String, Vec<String>)> = self
                .workers()
                .iter()
                .filter(|(_, w)| w.free_slots() > 0)
                .map(|(id, w)| (id.clone(), w.task_types.clone()))
                .collect();
            if candidates.is_empty() {
                return Ok(());
            }
            // One transaction per round over all free slots.
            let assignments = self.inner.store.assign_tasks(&candidates).await?;
            let assigned_any = !assignments.is_empty();
            check_queue = assignments.len() < candidates.len();
            for (worker_id, assignment) in assignments {
                let latency = round_started.elapsed();
                self.inner
                    .store
                    .metrics()
                    .task_dispatched(&assignment.task_id, latency);
                self.deliver(&worker_id, assignment).await?;
            }
            if !assigned_any {
                return Ok(());
            }
        }
    }

    async fn deliver(
        &self,
        worker_id: &str,
        assignment: Assignment,
    ) -> Result<(), crate::store::StoreError> {
        let epoch = assignment.lease_epoch;
        let mut too_large = None;
        let (delivered, worker_name) = {
            let mut workers = self.workers();
            match workers.get_mut(worker_id) {
                Some(worker) => {
                    let slot = worker.hold(
                        assignment.task_id.clone(),
                        epoch,
                        Some(assignment.job_id.clone()),
                    );
                    let instruction = to_instruction(&assignment, slot, &worker.variables);
                    // Sent anyway, the worker would refuse to decode it, reconnect and get
                    // the same task again, forever.
                    too_large = oversized(&instruction);
                    let sent =
                        too_large.is_none() && worker.send(Kind::AssignTask(instruction)).is_ok();
                    if !sent {
                        worker.release(&assignment.task_id);
                    }
                    (sent, worker.name.clone())
                }
                None => (false, String::new()),
            }
        };
        if let Some(size) = too_large {
            let reason = format!(
                "its instruction is {size} bytes with variables expanded; a worker receives at most {}",
                castanet_protocol::MAX_INSTRUCTION_BYTES
            );
            tracing::error!(task = %assignment.task_id, "task cannot be handed out: {reason}");
            return self.fail_undeliverable(&assignment, reason).await;
        }
        if !delivered {
            tracing::debug!(worker_id, task = %assignment.task_id, "worker left before the assignment reached it");
            self.inner
                .store
                .unassign_task(&assignment.task_id, epoch)
                .await?;
            return Ok(());
        }
        tracing::debug!(worker = %worker_name, task = %assignment.task_id, "assigned task");
        // Written with the task's first output (or when its log is read): handing out a
        // task must not create a file.
        let line = format!("Task assigned to worker {worker_name} ({worker_id})");
        self.inner
            .logs
            .defer_manager_line(&assignment.task_id, &line);
        // The deferred line is part of the log as read, so log tails hear of it too.
        self.inner
            .events
            .publish(Event::task_log(&assignment.job_id, &assignment.task_id));
        self.inner
            .events
            .publish(Event::task(&assignment.job_id, &assignment.task_id));
        self.inner.events.publish(Event::job(&assignment.job_id));
        Ok(())
    }
}

/// Sleeps for `wait`, or forever when there is nothing to wait for.
async fn sleep_if_some(wait: Option<Duration>) {
    match wait {
        Some(wait) => tokio::time::sleep(wait).await,
        None => std::future::pending().await,
    }
}

/// The encoded size of an assignment (with room for the envelope and gRPC framing) when it is
/// more than a worker decodes.
fn oversized(instruction: &v1::AssignTask) -> Option<usize> {
    use prost::Message;
    let size = instruction.encoded_len() + 16;
    (size > castanet_protocol::MAX_INSTRUCTION_BYTES).then_some(size)
}

/// The assignment as the worker receives it, with variables in its commands expanded for the
/// worker's platform.
fn to_instruction(
    a: &Assignment,
    slot: u32,
    variables: &crate::variables::WorkerVariables,
) -> v1::AssignTask {
    let mut commands: Vec<crate::compiler::AuthoredCommand> =
        serde_json::from_str(&a.commands).unwrap_or_default();
    for command in &mut commands {
        variables.expand_parameters(&mut command.parameters);
    }
    v1::AssignTask {
        task_id: a.task_id.clone(),
        task_name: a.task_name.clone(),
        task_type: a.task_type.clone(),
        job_id: a.job_id.clone(),
        job_name: a.job_name.clone(),
        job_type: a.job_type.clone(),
        job_priority: a.job_priority as i32,
        task_priority: a.task_priority as i32,
        commands: commands
            .into_iter()
            .map(|c| v1::Command {
                name: c.name,
                parameters_json: c.parameters.to_string(),
                total_step_count: c.total_step_count,
            })
            .collect(),
        lease_epoch: a.lease_epoch as u64,
        slot,
        steps_total: a.steps_total as u32,
    }
}
