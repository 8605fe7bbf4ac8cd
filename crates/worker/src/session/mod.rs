//! The worker's main loop: register (once), sign on, open the instruction stream and act
//! on it; when the stream breaks, keep the tasks running and reconnect with capped
//! backoff; on shutdown abort the tasks and sign off.

mod exit;
mod fence;
mod identity;
mod slots;
mod tasks;

pub use exit::{RESTART_EXIT_CODE, WorkerExit};

use std::sync::Arc;
use std::time::Duration;

use castanet_protocol::v1::instruction::Kind;
use castanet_protocol::v1::{
    Capabilities, ChangeStatus, ConnectRequest, Instruction, SignOffRequest, WorkerStatus,
};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tonic::{Code, Status};

use crate::backoff::Backoff;
use crate::client::{CALL_TIMEOUT, ManagerClient, is_transient, unary};
use crate::config::WorkerConfig;
use crate::credentials::Credentials;
use crate::error::WorkerError;
use crate::journal::UpdateJournal;
use crate::leftovers::ProcessRecords;
use crate::logs::{LogSpool, SpooledLog, send_spooled};
use crate::runner::{CommandSettings, RunnerDeps};
use crate::transfer::Transfers;
use crate::upstream::Upstream;
use crate::{slot_gpus, system};
use fence::Fence;
use tasks::RunningTasks;

/// How long SignOff may take at shutdown.
const SIGN_OFF_TIMEOUT: Duration = Duration::from_secs(3);
/// How long aborted tasks get to end (their processes are killed at once).
const TASK_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the worker until `shutdown` fires (or the manager sends it offline).
pub async fn run(config: WorkerConfig, shutdown: CancellationToken) -> Result<(), WorkerError> {
    run_to_exit(config, shutdown).await.map(|_| ())
}

/// Like [`run`], and says why the worker stopped (offline and restart requests differ).
pub async fn run_to_exit(
    config: WorkerConfig,
    shutdown: CancellationToken,
) -> Result<WorkerExit, WorkerError> {
    let config = config.validated()?;
    // Before anything else: no task may be handed to this worker again while a run of it
    // from the worker's previous life still goes on.
    let processes = ProcessRecords::in_data_dir(&config.data_dir);
    let sweep = processes.clone();
    match tokio::task::spawn_blocking(move || sweep.kill_leftovers()).await {
        Ok(killed) if !killed.is_empty() => {
            tracing::warn!(
                groups = killed.len(),
                "killed command processes the previous worker run left behind"
            );
        }
        Ok(_) => {}
        Err(e) => tracing::error!("cannot check for leftover command processes: {e}"),
    }
    let client = ManagerClient::with_trust(&config.manager_url, identity::manager_trust(&config)?)?;
    tracing::info!(manager = %config.manager_url, name = %config.name, slots = config.slots, "worker starting");
    let capabilities = system::capabilities().await;
    let slot_pins = slot_gpus::resolve(&config.slot_gpus, config.slots, &capabilities.gpus)?;
    slot_gpus::log_pins(&config.slot_gpus, &slot_pins, &capabilities.gpus);
    let journal = UpdateJournal::open(&config.data_dir);
    let upstream = Arc::new(Upstream::with_journal(client.clone(), journal));
    let log_spool = LogSpool::new(&config.data_dir);
    // Files present now are from an earlier run; the running tasks' files are their own.
    let spooled_logs = log_spool.leftovers();
    let spool = log_spool.clone();
    let tasks = RunningTasks::new(
        RunnerDeps {
            client: client.clone(),
            upstream: upstream.clone(),
            settings: Arc::new(CommandSettings {
                hung_after: config.hung_after,
                storage_roots: Arc::new(config.storage_roots.clone()),
                link_roots: Arc::new(
                    config
                        .no_shared_storage
                        .iter()
                        .map(|storage| storage.cache_dir.clone())
                        .collect(),
                ),
                command_time_limit: config.command_time_limit,
                slot_pins: Arc::new(slot_pins.into_iter().map(|p| p.map(Arc::new)).collect()),
                processes,
                transfers: config
                    .no_shared_storage
                    .as_ref()
                    .map(|storage| Arc::new(Transfers::new(client.clone(), storage))),
            }),
            log_spool,
        },
        config.slots,
    );
    let fence = Fence::new(tasks.aborter());
    let mut session = Session {
        fence,
        log_spool: spool,
        config,
        client,
        upstream,
        tasks,
        capabilities,
        spooled_logs,
        stop: shutdown.child_token(),
        task_root: CancellationToken::new(),
        signed_on: false,
        just_registered: false,
        lazy_offline: None,
        asleep: false,
        exit: WorkerExit::Stopped,
    };
    let result = session.run_loop().await;
    session.shut_down().await;
    result.map(|()| session.exit)
}

struct Session {
    /// Stops the running tasks when the manager has been silent too long.
    fence: Fence,
    config: WorkerConfig,
    client: ManagerClient,
    upstream: Arc<Upstream>,
    tasks: RunningTasks,
    capabilities: Capabilities,
    /// Task log text an earlier run could not deliver, sent after the next sign-on.
    spooled_logs: Vec<SpooledLog>,
    /// Where runs park log text the manager has not stored.
    log_spool: LogSpool,
    /// Fires on shutdown or when the manager sends the worker offline.
    stop: CancellationToken,
    /// Aborts the running tasks; separate from `stop` so they can finish during the
    /// shutdown grace period.
    task_root: CancellationToken,
    signed_on: bool,
    /// Registered but not signed on yet: sequence numbers start over, and being refused
    /// now means the manager rejects the credentials it just issued.
    just_registered: bool,
    /// Stops the worker once idle (a lazy "offline" or "restart" request).
    lazy_offline: Option<AbortOnDropHandle<()>>,
    /// The manager put the worker to sleep: it stays connected and expects no tasks.
    asleep: bool,
    /// What the run ends as (set by an offline or restart request).
    exit: WorkerExit,
}

/// Why one connection cycle ended.
enum CycleEnd {
    Stopped,
    /// The manager no longer knows this worker.
    Unauthenticated,
    /// The manager is unreachable or the stream broke.
    Lost {
        reason: String,
        was_connected: bool,
    },
}

impl Session {
    async fn run_loop(&mut self) -> Result<(), WorkerError> {
        match identity::load(&self.config)? {
            Some(creds) => self.adopt(&creds)?,
            None => {
                if !self.register().await? {
                    return Ok(());
                }
            }
        }
        let mut backoff = Backoff::default();
        let mut failures = 0u32;
        loop {
            match self.cycle().await? {
                CycleEnd::Stopped => return Ok(()),
                CycleEnd::Unauthenticated if self.just_registered => {
                    return Err(WorkerError::rejected(
                        "SignOn",
                        Status::unauthenticated(
                            "the manager refused the credentials it just issued",
                        ),
                    ));
                }
                CycleEnd::Unauthenticated => {
                    tracing::warn!("the manager no longer knows this worker; registering again");
                    // The running tasks belonged to the old identity.
                    self.tasks.abort_all();
                    identity::forget(&self.config)?;
                    if !self.register().await? {
                        return Ok(());
                    }
                    backoff.reset();
                    failures = 0;
                }
                CycleEnd::Lost {
                    reason,
                    was_connected,
                } => {
                    // A refused certificate stays refused: stop and say why.
                    if let Some(refusal) = self.client.take_tls_refusal() {
                        return Err(WorkerError::ManagerCertificate(refusal));
                    }
                    if was_connected {
                        tracing::warn!(%reason, running = self.tasks.len(), "lost the connection to the manager; reconnecting");
                        backoff.reset();
                        failures = 0;
                    } else if failures == 0 {
                        tracing::warn!(manager = %self.client.manager_url(), %reason, "cannot reach the manager; retrying");
                    }
                    // With several managers (sharing one database), the next may be the active one.
                    if let Some(next) = self.client.next_manager() {
                        tracing::info!(manager = %next, "trying the next manager of the list");
                    }
                    failures += 1;
                    let delay = backoff.next_delay();
                    tracing::debug!(attempt = failures, ?delay, %reason, "reconnecting to the manager");
                    tokio::select! {
                        biased;
                        () = self.stop.cancelled() => return Ok(()),
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// Registers anew and uses the new credentials; false when stopped first.
    async fn register(&mut self) -> Result<bool, WorkerError> {
        match identity::register(&self.config, &self.client, &self.stop).await? {
            Some(creds) => {
                self.adopt(&creds)?;
                self.just_registered = true;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn adopt(&mut self, creds: &Credentials) -> Result<(), WorkerError> {
        self.client.set_credentials(creds)?;
        tracing::debug!(worker_id = %creds.worker_id, "using credentials");
        Ok(())
    }

    /// Signs on, opens the instruction stream and serves it until it ends.
    async fn cycle(&mut self) -> Result<CycleEnd, WorkerError> {
        let mut sign_on = identity::sign_on_request(&self.config, &self.capabilities);
        sign_on.self_check_problems = crate::self_check::sign_on_problems(&self.config).await;
        let request = unary(sign_on);
        let mut api = self.client.api();
        let result = tokio::select! {
            biased;
            () = self.stop.cancelled() => return Ok(CycleEnd::Stopped),
            result = api.sign_on(request) => result,
        };
        let signed_on = match result {
            Ok(response) => response.into_inner(),
            Err(status) => return classify(status, "SignOn"),
        };
        self.fence.heard();
        self.fence.set_after(millis(signed_on.fence_after_ms));
        self.upstream
            .set_keepalive(millis(signed_on.task_keepalive_ms));
        if self.just_registered {
            self.upstream.restart_after(signed_on.last_update_sequence);
            self.drop_spooled_logs();
        } else {
            self.upstream.continue_after(signed_on.last_update_sequence);
            // Aborted runs (the fence, a lost identity) first put what they still hold into
            // the spool and the journal.
            if !self.tasks.wait_for_aborted(TASK_STOP_TIMEOUT).await {
                tracing::warn!("aborted tasks did not stop in time; their results may be lost");
            }
            self.adopt_parked_logs();
            // Logs first, so a task's log is complete when its replayed final status
            // arrives; both before the stream opens, while the manager still counts the
            // tasks as this worker's.
            let spooled = std::mem::take(&mut self.spooled_logs);
            self.spooled_logs = send_spooled(&self.client, spooled, &self.stop).await;
            // Before new work: what could not be delivered before a restart goes first.
            self.upstream.replay(&self.stop).await;
        }
        self.signed_on = true;
        self.just_registered = false;
        identity::remember_pin(&self.config, &self.client);
        let requested =
            WorkerStatus::try_from(signed_on.requested_status).unwrap_or(WorkerStatus::Unspecified);
        // The manager also sends the request down the stream; until then, expect no work.
        self.asleep = requested == WorkerStatus::Asleep;
        tracing::info!(name = %self.config.name, requested_status = requested.api_name(), "signed on");

        // The stream lives as long as the connection, so no deadline on the call itself;
        // only the answer to opening it is bounded.
        let request = ConnectRequest {
            running_tasks: self.tasks.leases(),
        };
        let result = tokio::select! {
            biased;
            () = self.stop.cancelled() => return Ok(CycleEnd::Stopped),
            result = tokio::time::timeout(CALL_TIMEOUT, api.connect_worker(request)) => result,
        };
        let mut stream = match result {
            Ok(Ok(response)) => response.into_inner(),
            Ok(Err(status)) => return classify(status, "ConnectWorker"),
            Err(_) => {
                return classify(
                    Status::deadline_exceeded("opening the instruction stream timed out"),
                    "ConnectWorker",
                );
            }
        };
        tracing::info!(running = self.tasks.len(), "connected to manager");
        self.fence.heard();
        let mut fenced = self.fence.subscribe();
        fenced.borrow_and_update();

        loop {
            tokio::select! {
                biased;
                () = self.stop.cancelled() => return Ok(CycleEnd::Stopped),
                // The manager went silent on an open stream (it hangs, or the connection
                // is half-open): the tasks were stopped; connect anew.
                _ = fenced.changed() => {
                    return Ok(CycleEnd::Lost {
                        reason: "no word from the manager within the fence time".into(),
                        was_connected: true,
                    });
                }
                // Sign on again: that tells a forgotten worker (register anew) from a
                // stale signal left from before the last registration (carry on).
                () = self.upstream.unauthenticated() => {
                    return Ok(CycleEnd::Lost {
                        reason: "the manager refused a task update as unauthenticated".into(),
                        was_connected: true,
                    });
                }
                message = stream.message() => match message {
                    Ok(Some(instruction)) => {
                        self.fence.heard();
                        self.handle(instruction);
                    }
                    Ok(None) => {
                        return Ok(CycleEnd::Lost {
                            reason: "the manager closed the instruction stream".into(),
                            was_connected: true,
                        });
                    }
                    Err(status) if status.code() == Code::Unauthenticated => return Ok(CycleEnd::Unauthenticated),
                    Err(status) => {
                        return Ok(CycleEnd::Lost {
                            reason: status.to_string(),
                            was_connected: true,
                        });
                    }
                },
            }
        }
    }

    fn handle(&mut self, instruction: Instruction) {
        match instruction.kind {
            Some(Kind::AssignTask(task)) => {
                // The manager frees a slot as soon as it has applied a task's final update,
                // so the next assignment can arrive before that task's runner has cleaned up
                // here. The manager's count is the authoritative one.
                if self.asleep {
                    tracing::warn!(task_id = %task.task_id, "assigned a task while asleep; running it (the manager decides)");
                }
                if self.tasks.len() >= self.config.slots as usize {
                    tracing::debug!(task_id = %task.task_id, slots = self.config.slots, "assignment arrived while a finished task is still cleaning up");
                }
                self.tasks.start(task, &self.task_root);
            }
            Some(Kind::AbortTask(abort)) => {
                if self.tasks.abort(&abort.task_id, abort.lease_epoch) {
                    tracing::info!(task_id = %abort.task_id, reason = %abort.reason, "aborting task");
                } else {
                    tracing::debug!(task_id = %abort.task_id, lease_epoch = abort.lease_epoch, "abort for a task lease not running here");
                }
            }
            Some(Kind::ChangeStatus(change)) => self.change_status(change),
            // Only proof of life (noted by the caller).
            Some(Kind::Heartbeat(_)) => {}
            None => tracing::debug!("ignoring an empty instruction"),
        }
    }

    /// Acts on a status the manager requests. `awake`/`asleep` only change what the worker
    /// expects (the manager decides what to send it); a forced `asleep` stops the running
    /// tasks at once (the manager already handed them back). `offline` and `restart` stop
    /// the worker — lazily once idle, or now — and sign off; `restart` ends the process
    /// with [`RESTART_EXIT_CODE`]. Other statuses mean asleep, as upstream.
    fn change_status(&mut self, change: ChangeStatus) {
        let status = WorkerStatus::try_from(change.status).unwrap_or(WorkerStatus::Unspecified);
        tracing::info!(
            status = status.api_name(),
            lazy = change.lazy,
            "the manager requests a status change"
        );
        // A new request replaces one still waiting for the tasks to end.
        self.lazy_offline = None;
        self.exit = WorkerExit::Stopped;
        let exit = match status {
            WorkerStatus::Awake => {
                self.asleep = false;
                tracing::info!("awake: taking tasks");
                return;
            }
            WorkerStatus::Offline => WorkerExit::Offline,
            WorkerStatus::Restart => WorkerExit::Restart,
            _ => {
                self.asleep = true;
                if !change.lazy && self.tasks.len() > 0 {
                    tracing::info!(
                        running = self.tasks.len(),
                        "going to sleep now: stopping the running tasks"
                    );
                    self.tasks.abort_all();
                }
                tracing::info!("asleep: staying connected, taking no tasks");
                return;
            }
        };
        self.exit = exit;
        let what = if exit == WorkerExit::Restart {
            "restarting"
        } else {
            "going offline"
        };
        if !change.lazy {
            tracing::info!("{what} as the manager requested");
            self.stop.cancel();
            return;
        }
        let mut count = self.tasks.watch_count();
        let stop = self.stop.clone();
        self.lazy_offline = Some(AbortOnDropHandle::new(tokio::spawn(async move {
            if count.wait_for(|running| *running == 0).await.is_ok() {
                tracing::info!("tasks finished; {what} as the manager requested");
                stop.cancel();
            }
        })));
    }

    /// Lets the running tasks go on for the grace period (the instruction stream is closed
    /// already, so no new work arrives), aborts what still runs (no reports) and signs off:
    /// the manager hands those tasks back.
    async fn shut_down(&mut self) {
        self.stop.cancel();
        self.lazy_offline = None;
        self.let_tasks_finish().await;
        self.task_root.cancel();
        if !self.tasks.wait_all(TASK_STOP_TIMEOUT).await {
            tracing::warn!("some tasks did not stop in time");
        }
        if !self.signed_on {
            return;
        }
        let mut request = unary(SignOffRequest {
            reason: "worker shutting down".into(),
        });
        request.set_timeout(SIGN_OFF_TIMEOUT);
        match tokio::time::timeout(SIGN_OFF_TIMEOUT, self.client.api().sign_off(request)).await {
            Ok(Ok(_)) => tracing::info!("signed off"),
            Ok(Err(status)) => tracing::warn!(%status, "sign-off failed"),
            Err(_) => tracing::warn!("sign-off timed out"),
        }
    }
}

impl Session {
    /// Adds the spool files of runs that ended in this process (aborted with their result
    /// kept for the manager) to the logs sent after sign-on. Running tasks' files belong
    /// to their own uploaders.
    fn adopt_parked_logs(&mut self) {
        let running = self.tasks.leases();
        for log in self.log_spool.leftovers() {
            let is_running = running
                .iter()
                .any(|l| l.task_id == log.task_id && l.lease_epoch == log.lease_epoch);
            let known = self.spooled_logs.iter().any(|s| s.path == log.path);
            if !is_running && !known {
                self.spooled_logs.push(log);
            }
        }
    }

    /// A new identity cannot deliver the old one's logs.
    fn drop_spooled_logs(&mut self) {
        for log in self.spooled_logs.drain(..) {
            tracing::warn!(task_id = %log.task_id, "dropping a task log spooled under the previous worker identity");
            if let Err(e) = std::fs::remove_file(&log.path) {
                tracing::warn!(path = %log.path.display(), error = %e, "cannot remove a spooled task log");
            }
        }
    }

    /// Waits for the running tasks per the shutdown settings.
    async fn let_tasks_finish(&self) {
        let grace = self.config.shutdown_grace;
        let finish = self.config.finish_tasks_on_shutdown;
        let running = self.tasks.len();
        if running == 0 || (grace.is_zero() && !finish) {
            return;
        }
        if finish {
            tracing::info!(
                running,
                "shutting down: waiting for the running tasks to finish"
            );
        } else {
            tracing::info!(
                running,
                ?grace,
                "shutting down: running tasks get a grace period"
            );
        }
        let mut count = self.tasks.watch_count();
        let idle = count.wait_for(|running| *running == 0);
        if finish {
            let _ = idle.await;
        } else if tokio::time::timeout(grace, idle).await.is_err() {
            tracing::info!(
                running = self.tasks.len(),
                "grace period over; aborting the running tasks and handing them back"
            );
        }
    }
}

/// A number of milliseconds from the manager; 0 means "off".
fn millis(value: u32) -> Option<Duration> {
    (value > 0).then(|| Duration::from_millis(u64::from(value)))
}

/// A failed SignOn or ConnectWorker: unknown worker, retry later, or give up.
fn classify(status: Status, call: &'static str) -> Result<CycleEnd, WorkerError> {
    if status.code() == Code::Unauthenticated {
        Ok(CycleEnd::Unauthenticated)
    } else if is_transient(&status) {
        Ok(CycleEnd::Lost {
            reason: status.to_string(),
            was_connected: false,
        })
    } else {
        Err(WorkerError::rejected(call, status))
    }
}
