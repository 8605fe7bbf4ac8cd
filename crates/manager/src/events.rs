//! The in-process event bus: every change of a job, task or worker is published once;
//! the SSE endpoint (and anything else that wants to react) subscribes.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{broadcast, watch};

/// What changed. Subscribers re-read the entity for its current state.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Event {
    Job {
        job_id: String,
    },
    Task {
        job_id: String,
        task_id: String,
    },
    Worker {
        worker_id: String,
    },
    TaskLog {
        job_id: String,
        task_id: String,
    },
    LastRendered {
        job_id: String,
    },
    /// The job and everything of it is gone (sent once its deletion has finished).
    JobDeleted {
        job_id: String,
    },
}

impl Event {
    pub fn job(job_id: &str) -> Self {
        Event::Job {
            job_id: job_id.to_string(),
        }
    }
    pub fn task(job_id: &str, task_id: &str) -> Self {
        Event::Task {
            job_id: job_id.to_string(),
            task_id: task_id.to_string(),
        }
    }
    pub fn worker(worker_id: &str) -> Self {
        Event::Worker {
            worker_id: worker_id.to_string(),
        }
    }
    pub fn task_log(job_id: &str, task_id: &str) -> Self {
        Event::TaskLog {
            job_id: job_id.to_string(),
            task_id: task_id.to_string(),
        }
    }

    /// The task this event concerns, if any.
    pub fn task_id(&self) -> Option<&str> {
        match self {
            Event::Task { task_id, .. } | Event::TaskLog { task_id, .. } => Some(task_id),
            _ => None,
        }
    }

    /// The SSE event name: `job`, `task`, `worker`, `task-log`, `last-rendered`,
    /// `job-deleted`.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Job { .. } => "job",
            Event::Task { .. } => "task",
            Event::Worker { .. } => "worker",
            Event::TaskLog { .. } => "task-log",
            Event::LastRendered { .. } => "last-rendered",
            Event::JobDeleted { .. } => "job-deleted",
        }
    }

    /// The job this event concerns, if any.
    pub fn job_id(&self) -> Option<&str> {
        match self {
            Event::Job { job_id }
            | Event::Task { job_id, .. }
            | Event::TaskLog { job_id, .. }
            | Event::LastRendered { job_id }
            | Event::JobDeleted { job_id } => Some(job_id),
            Event::Worker { .. } => None,
        }
    }
}

/// How long the pacer gathers events after the first of a burst before it ticks. A
/// dashboard batches its re-reads for longer than this anyway; a shorter pace only adds
/// wake-ups of every open stream.
const PACE: Duration = Duration::from_millis(100);

/// An event as subscribers receive it: shared, with its JSON made once on first use
/// (by the first stream that writes it) instead of once per stream.
#[derive(Debug)]
pub struct Published {
    pub event: Event,
    json: std::sync::OnceLock<String>,
}

impl Published {
    pub fn json(&self) -> &str {
        self.json
            .get_or_init(|| serde_json::to_string(&self.event).unwrap_or_default())
    }
}

#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<Published>>,
    /// Cancelled at shutdown, so long-lived subscribers (SSE clients) end their streams.
    closed: tokio_util::sync::CancellationToken,
    /// Bumped once per burst of events (see `paced`).
    ticks: watch::Sender<u64>,
    pacer_started: Arc<AtomicBool>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        // Subscribers that fall this far behind get a `Lagged` error and re-read state.
        let (sender, _) = broadcast::channel(4096);
        Self {
            sender,
            closed: tokio_util::sync::CancellationToken::new(),
            ticks: watch::channel(0).0,
            pacer_started: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn publish(&self, event: Event) {
        if self.sender.receiver_count() == 0 {
            // Nobody is watching: no allocation on the dispatch path.
            return;
        }
        let _ = self.sender.send(Arc::new(Published {
            event,
            json: std::sync::OnceLock::new(),
        }));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Published>> {
        self.sender.subscribe()
    }

    /// A tick that changes once per burst of events, `PACE` after the burst's first event.
    /// Subscribers that wait on it instead of on their receiver are not woken per event:
    /// publishing costs the same however many dashboards are open, and they all catch up
    /// together off the path of the work that caused the events. Must be called from
    /// within the runtime (it starts the pacer on first use).
    pub fn paced(&self) -> watch::Receiver<u64> {
        if !self.pacer_started.swap(true, Ordering::SeqCst) {
            let mut events = self.sender.subscribe();
            let ticks = self.ticks.clone();
            let closed = self.closed.clone();
            tokio::spawn(async move {
                loop {
                    let received = tokio::select! {
                        _ = closed.cancelled() => return,
                        received = events.recv() => received,
                    };
                    if let Err(broadcast::error::RecvError::Closed) = received {
                        return;
                    }
                    tokio::time::sleep(PACE).await;
                    // Everything up to now is covered by this tick; the pacer skips it.
                    events = events.resubscribe();
                    ticks.send_modify(|tick| *tick += 1);
                }
            });
        }
        self.ticks.subscribe()
    }

    /// How many subscribers listen now (SSE clients).
    pub fn subscriber_count(&self) -> usize {
        let pacer = usize::from(self.pacer_started.load(Ordering::SeqCst));
        self.sender.receiver_count().saturating_sub(pacer)
    }

    /// Tells every subscriber the manager is shutting down.
    pub fn close(&self) {
        self.closed.cancel();
    }

    /// A token that is cancelled when the bus closes.
    pub fn closed_token(&self) -> tokio_util::sync::CancellationToken {
        self.closed.clone()
    }
}
