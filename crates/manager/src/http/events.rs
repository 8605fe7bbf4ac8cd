//! `GET /api/v3/events[?job=<id>][&task=<id>]`: Server-Sent Events of job, task, worker,
//! task-log and last-rendered changes. The SSE event name is the kind; the data names what
//! changed, and clients re-read it. Each client has a bounded buffer: one that falls behind
//! gets a `resync` event (re-read what you show) instead of slowing the manager down.
use std::convert::Infallible;

use axum::extract::{Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

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

pub async fn event_stream(
    State(state): State<AppState>,
    Query(filter): Query<Filter>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let receiver = state.events.subscribe();
    let closed = state.events.closed_token();
    let initial = (receiver, filter, closed);
    let stream = futures::stream::unfold(initial, |(mut receiver, filter, closed)| async move {
        loop {
            let received = tokio::select! {
                _ = closed.cancelled() => return None,
                received = receiver.recv() => received,
            };
            let event = match received {
                Ok(event) => event,
                Err(RecvError::Lagged(_)) => {
                    let resync = SseEvent::default().event("resync").data("{}");
                    return Some((Ok(resync), (receiver, filter, closed)));
                }
                Err(RecvError::Closed) => return None,
            };
            if !filter.admits(&event) {
                continue;
            }
            let data = serde_json::to_string(&event).unwrap_or_default();
            let sse = SseEvent::default().event(event.kind()).data(data);
            return Some((Ok(sse), (receiver, filter, closed)));
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
