//! The in-process event bus: every change of a job, task or worker is published once;
//! the SSE endpoint (and anything else that wants to react) subscribes.
use serde::Serialize;
use tokio::sync::broadcast;

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

#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Event>,
    /// Cancelled at shutdown, so long-lived subscribers (SSE clients) end their streams.
    closed: tokio_util::sync::CancellationToken,
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
        }
    }

    pub fn publish(&self, event: Event) {
        // No subscribers is fine: nobody is watching.
        let _ = self.sender.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }

    /// How many subscribers listen now (SSE clients).
    pub fn subscriber_count(&self) -> usize {
        self.sender.receiver_count()
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
