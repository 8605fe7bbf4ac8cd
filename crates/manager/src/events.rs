//! The in-process event bus: every change of a job, task or worker is published once;
//! the SSE endpoint (and anything else that wants to react) subscribes.
use serde::Serialize;
use tokio::sync::broadcast;

/// What changed. Subscribers re-read the entity for its current state.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Event {
    Job { job_id: String },
    Task { job_id: String, task_id: String },
    Worker { worker_id: String },
    TaskLog { job_id: String, task_id: String },
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

    /// The job this event concerns, if any.
    pub fn job_id(&self) -> Option<&str> {
        match self {
            Event::Job { job_id } | Event::Task { job_id, .. } | Event::TaskLog { job_id, .. } => {
                Some(job_id)
            }
            Event::Worker { .. } => None,
        }
    }
}

#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Event>,
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
        Self { sender }
    }

    pub fn publish(&self, event: Event) {
        // No subscribers is fine: nobody is watching.
        let _ = self.sender.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }
}
