//! `GET /api/v3/events[?job=<id>]`: Server-Sent Events of job, task, worker and task-log
//! changes. Each event names what changed; clients re-read it.
use std::convert::Infallible;

use axum::extract::{Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::AppState;

#[derive(Deserialize)]
pub struct Filter {
    job: Option<String>,
}

pub async fn event_stream(
    State(state): State<AppState>,
    Query(filter): Query<Filter>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let receiver = state.events.subscribe();
    let stream =
        futures::stream::unfold((receiver, filter.job), |(mut receiver, job)| async move {
            loop {
                let event = match receiver.recv().await {
                    Ok(event) => event,
                    // Fell behind: tell the client to re-read what it shows.
                    Err(RecvError::Lagged(_)) => {
                        let resync = SseEvent::default().event("resync").data("{}");
                        return Some((Ok(resync), (receiver, job)));
                    }
                    Err(RecvError::Closed) => return None,
                };
                if job.as_deref().is_some_and(|j| event.job_id() != Some(j)) {
                    continue;
                }
                let data = serde_json::to_string(&event).unwrap_or_default();
                return Some((Ok(SseEvent::default().data(data)), (receiver, job)));
            }
        });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
