//! `GET /api/v3/events[?job=<id>][&task=<id>]`: Server-Sent Events of job, task, worker,
//! task-log and last-rendered changes. The SSE event name is the kind; the data names what
//! changed, and clients re-read it. Each client has a bounded buffer: one that falls behind
//! gets a `resync` event (re-read what you show) instead of slowing the manager down.
//! Events are written in bursts gathered over 10-40 ms, in the order they happened.
use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::events::Event;

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

/// How long a stream gathers events after the first one before writing them together:
/// one wake-up and one write per client per burst, instead of one per event, keeps many
/// open dashboards off the path of the manager's own work (dashboards batch longer anyway).
/// Each round waits a random time in this range, so the clients' writes after a burst are
/// spread out instead of all landing at once.
const GATHER_MS: std::ops::RangeInclusive<u64> = 10..=40;
/// Most events written in one go; the rest follow in the next round.
const MAX_BATCH: usize = 256;

/// One client's subscription and the events gathered for it, ready to write.
struct Subscription {
    receiver: broadcast::Receiver<Event>,
    filter: Filter,
    closed: CancellationToken,
    ready: VecDeque<SseEvent>,
}

fn gather_time() -> Duration {
    Duration::from_millis(rand::random_range(GATHER_MS))
}

fn resync() -> SseEvent {
    SseEvent::default().event("resync").data("{}")
}

fn to_sse(event: &Event) -> SseEvent {
    let data = serde_json::to_string(event).unwrap_or_default();
    SseEvent::default().event(event.kind()).data(data)
}

impl Subscription {
    /// Waits for the next event the filter admits, then adds what follows within
    /// the gathering time. False when the stream should end (shutdown).
    async fn gather(&mut self) -> bool {
        loop {
            let received = tokio::select! {
                _ = self.closed.cancelled() => return false,
                received = self.receiver.recv() => received,
            };
            match received {
                Ok(event) if self.filter.admits(&event) => {
                    self.ready.push_back(to_sse(&event));
                    break;
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {
                    self.ready.push_back(resync());
                    return true;
                }
                Err(RecvError::Closed) => return false,
            }
        }
        tokio::select! {
            _ = self.closed.cancelled() => return false,
            _ = tokio::time::sleep(gather_time()) => {}
        }
        while self.ready.len() < MAX_BATCH {
            match self.receiver.try_recv() {
                Ok(event) if self.filter.admits(&event) => self.ready.push_back(to_sse(&event)),
                Ok(_) => {}
                // Behind: what was gathered is moot, the client re-reads everything.
                Err(TryRecvError::Lagged(_)) => {
                    self.ready.clear();
                    self.ready.push_back(resync());
                    break;
                }
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
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
