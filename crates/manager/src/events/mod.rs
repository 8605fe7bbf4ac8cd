//! The in-process event bus: every change of a job, task or worker is published once;
//! the SSE endpoint (and anything else that wants to react) subscribes.
mod bursts;
mod details;

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::broadcast;

pub use bursts::{Burst, BurstReceiver, MAX_BURST_EVENTS, RESYNC_FRAME};
pub use details::{DetailSource, Fields, Reading, Snapshot, Wanted};

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
    /// A new preview image of the job; `task_id` and `frame` name the frame it shows when
    /// the worker numbered it (it is then also one of the job's rendered frames).
    LastRendered {
        job_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        task_id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        frame: Option<i64>,
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
            | Event::LastRendered { job_id, .. }
            | Event::JobDeleted { job_id } => Some(job_id),
            Event::Worker { .. } => None,
        }
    }
}

/// An event as subscribers receive it: shared, with its SSE text made once on first use
/// (by the first stream that writes it) instead of once per stream.
#[derive(Debug)]
pub struct Published {
    pub event: Event,
    frame: std::sync::OnceLock<String>,
}

impl Published {
    pub(crate) fn new(event: Event) -> Self {
        Self {
            event,
            frame: std::sync::OnceLock::new(),
        }
    }

    /// `event` whose SSE data also carries `fields` (see `details.rs`).
    pub(crate) fn with_fields(event: Event, fields: &Fields) -> Self {
        let frame = format!(
            "event: {}\ndata: {}\n\n",
            event.kind(),
            details::data_with(&event, fields)
        );
        Self {
            event,
            frame: std::sync::OnceLock::from(frame),
        }
    }

    /// `event: <kind>\ndata: <json>\n\n` (the JSON has no line breaks).
    pub fn frame(&self) -> &str {
        self.frame.get_or_init(|| {
            let json = serde_json::to_string(&self.event).unwrap_or_else(|_| "{}".into());
            format!("event: {}\ndata: {json}\n\n", self.event.kind())
        })
    }
}

#[derive(Clone)]
pub struct EventBus {
    /// Every event, one by one, for in-process subscribers.
    sender: broadcast::Sender<Arc<Published>>,
    /// The same events in bursts, for the event streams.
    bursts: Arc<bursts::Bursts>,
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
        // In-process subscribers that fall this far behind get a `Lagged` error.
        let (sender, _) = broadcast::channel(4096);
        Self {
            sender,
            bursts: Arc::new(bursts::Bursts::new()),
            closed: tokio_util::sync::CancellationToken::new(),
        }
    }

    pub fn publish(&self, event: Event) {
        let to_streams = self.bursts.listeners() > 0;
        let in_process = self.sender.receiver_count() > 0;
        if !to_streams && !in_process {
            // Nobody is watching: no allocation on the dispatch path.
            return;
        }
        let published = Arc::new(Published::new(event));
        if to_streams {
            self.bursts.add(Arc::clone(&published));
        }
        if in_process {
            let _ = self.sender.send(published);
        }
    }

    /// Where the event streams' events get the fields of what changed (once per burst).
    pub fn set_details(&self, source: Arc<dyn DetailSource>) {
        self.bursts.set_details(source);
    }

    /// Every event, one at a time, as it is published.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Published>> {
        self.sender.subscribe()
    }

    /// Events in bursts: one burst 100 ms after the first event of a quiet spell, then up
    /// to 300 ms apart while events keep coming, each holding everything published
    /// meanwhile, in order; a burst reaches the streams in waves spread over that time
    /// (see bursts.rs). Streams that wait on
    /// bursts instead of single events are not woken per event: publishing costs the same
    /// however many dashboards are open, and they catch up off the path of the work that
    /// caused the events. Must be called from within the runtime (it starts the pacer).
    pub fn subscribe_bursts(&self) -> BurstReceiver {
        self.bursts.subscribe(&self.closed)
    }

    /// How many event streams are open.
    pub fn subscriber_count(&self) -> usize {
        self.bursts.listeners()
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
