//! `GET /api/v3/events[?job=<id>][&task=<id>]`: Server-Sent Events of job, task, worker,
//! task-log and last-rendered changes. The SSE event name is the kind; the data names what
//! changed, and clients re-read it. Each client has a bounded buffer: one that falls behind
//! gets a `resync` event (re-read what you show) instead of slowing the manager down.
//! Events are written in bursts: every client wakes once per burst (`EventBus::paced`,
//! about 100 ms after its first event, plus its own 0-100 ms offset) and writes what it
//! gathered, in order. Each event's JSON is made once for all streams.
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::TryRecvError;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::events::{Event, Published};

#[derive(Clone, Deserialize, Default)]
pub struct Filter {
    job: Option<String>,
    task: Option<String>,
}

impl Filter {
    fn admits(&self, event: &Event) -> bool {
        let job_ok = self
            .job
            .as_deref()
            .is_none_or(|j| event.job_id() == Some(j));
        let task_ok = self
            .task
            .as_deref()
            .is_none_or(|t| event.task_id() == Some(t));
        job_ok && task_ok
    }
}

/// Most events written in one go; the rest follow in the next round.
const MAX_BATCH: usize = 256;

/// One client's subscription and the events gathered for it, ready to write.
struct Subscription {
    receiver: broadcast::Receiver<Arc<Published>>,
    /// Changes once per burst of events (`EventBus::paced`): the client wakes then and
    /// takes what its receiver holds, instead of waking for every event.
    ticks: watch::Receiver<u64>,
    filter: Filter,
    closed: CancellationToken,
    ready: VecDeque<SseEvent>,
    /// This stream's wait after each tick (see `STAGGER_MS`).
    stagger: Duration,
}

fn resync() -> SseEvent {
    SseEvent::default().event("resync").data("{}")
}

fn to_sse(published: &Published) -> SseEvent {
    SseEvent::default()
        .event(published.event.kind())
        .data(published.json())
}

/// Longest a stream waits after a tick before it takes its events. Each stream has its own
/// offset in this range, so after a burst the streams write one after another instead of
/// all at the same instant (which would hold both cores for a moment).
const STAGGER_MS: u64 = 100;

impl Subscription {
    /// Waits for bursts until one holds an event the filter admits and queues what it
    /// holds (in order). False when the stream should end (shutdown).
    async fn gather(&mut self) -> bool {
        while self.ready.is_empty() {
            tokio::select! {
                _ = self.closed.cancelled() => return false,
                changed = self.ticks.changed() => {
                    if changed.is_err() {
                        return false;
                    }
                }
            }
            tokio::select! {
                _ = self.closed.cancelled() => return false,
                _ = tokio::time::sleep(self.stagger) => {}
            }
            loop {
                if self.ready.len() >= MAX_BATCH {
                    // The rest waits in the receiver; the next round takes it.
                    self.ticks.mark_changed();
                    break;
                }
                match self.receiver.try_recv() {
                    Ok(published) if self.filter.admits(&published.event) => {
                        self.ready.push_back(to_sse(&published))
                    }
                    Ok(_) => {}
                    // Behind: what was gathered is moot, the client re-reads everything.
                    Err(TryRecvError::Lagged(_)) => {
                        self.ready.clear();
                        self.ready.push_back(resync());
                        break;
                    }
                    Err(TryRecvError::Closed) => return false,
                    Err(TryRecvError::Empty) => break,
                }
            }
        }
        true
    }
}

pub async fn event_stream(
    State(state): State<AppState>,
    Query(filter): Query<Filter>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let subscription = Subscription {
        receiver: state.events.subscribe(),
        ticks: state.events.paced(),
        stagger: Duration::from_millis(rand::random_range(0..=STAGGER_MS)),
        filter,
        closed: state.events.closed_token(),
        ready: VecDeque::new(),
    };
    let stream = futures::stream::unfold(subscription, |mut subscription| async move {
        if subscription.ready.is_empty() && !subscription.gather().await {
            return None;
        }
        let next = subscription.ready.pop_front()?;
        Some((Ok(next), subscription))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
