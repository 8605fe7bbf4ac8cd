//! `GET /api/v3/events[?job=<id>][&task=<id>]`: Server-Sent Events of job, task, worker,
//! task-log and last-rendered changes. The SSE event name is the kind; the data names what
//! changed and carries its current fields (`events/details.rs`), so clients need not re-read it.
//! Events arrive in bursts (`EventBus::subscribe_bursts`: 100 ms after the first event of a
//! quiet spell, up to 300 ms apart while events keep coming; handed to the streams in waves
//! spread over that time): a stream wakes once per burst and writes it in one piece.
//! Unfiltered streams all write the same shared text.
//! A client that falls behind by more than the bus keeps gets a `resync` event (re-read
//! what you show) instead of slowing the manager down.
use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::error::{ApiError, parse_uuid};
use crate::AppState;
use crate::events::{Burst, BurstReceiver, Event, RESYNC_FRAME};

#[derive(Clone, Deserialize, Default)]
pub struct Filter {
    job: Option<String>,
    task: Option<String>,
}

impl Filter {
    fn is_empty(&self) -> bool {
        self.job.is_none() && self.task.is_none()
    }

    /// The filter with its ids checked to be UUIDs (normalised); empty ones mean no filter.
    fn checked(self) -> Result<Self, ApiError> {
        let id = |what: &str, value: Option<String>| {
            value
                .filter(|value| !value.is_empty())
                .map(|value| parse_uuid(what, &value))
                .transpose()
        };
        Ok(Filter {
            job: id("job id", self.job)?,
            task: id("task id", self.task)?,
        })
    }

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

    /// This stream's text of a burst (empty when nothing in it is admitted).
    fn text(&self, burst: &Burst) -> Bytes {
        if self.is_empty() {
            burst.text()
        } else {
            burst.text_for(|event| self.admits(event))
        }
    }
}

/// A quiet stream gets a comment line within twice this, so proxies do not close it.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

const KEEP_ALIVE_FRAME: &str = ":\n\n";

/// One client's subscription.
struct Subscription {
    bursts: BurstReceiver,
    filter: Filter,
    closed: CancellationToken,
    last_write: Instant,
    /// Ticks every `KEEP_ALIVE`; a tick writes a comment only if nothing else was written
    /// since the one before (one timer for the stream's life, not one per write).
    keep_alive: tokio::time::Interval,
}

impl Subscription {
    /// The next piece of text to write; None when the stream should end (shutdown).
    async fn next_text(&mut self) -> Option<Bytes> {
        loop {
            let received = tokio::select! {
                _ = self.closed.cancelled() => return None,
                tick = self.keep_alive.tick() => {
                    if tick.duration_since(self.last_write) < KEEP_ALIVE {
                        continue;
                    }
                    self.last_write = Instant::now();
                    return Some(Bytes::from_static(KEEP_ALIVE_FRAME.as_bytes()));
                }
                received = self.bursts.recv() => received,
            };
            let text = match received {
                Ok(burst) => self.with_waiting_bursts(self.filter.text(&burst)),
                // Behind: the client re-reads everything, then goes on from here.
                Err(RecvError::Lagged(_)) => Bytes::from_static(RESYNC_FRAME.as_bytes()),
                Err(RecvError::Closed) => return None,
            };
            if !text.is_empty() {
                self.last_write = Instant::now();
                return Some(text);
            }
        }
    }

    /// `text` followed by the text of any bursts that arrived meanwhile (after a stall), so
    /// a stream that is behind catches up in one write instead of one offset per burst.
    fn with_waiting_bursts(&mut self, text: Bytes) -> Bytes {
        let mut joined: Option<Vec<u8>> = None;
        loop {
            let more = match self.bursts.try_recv() {
                Ok(burst) => self.filter.text(&burst),
                Err(broadcast::error::TryRecvError::Lagged(_)) => {
                    // What was gathered is moot: the client re-reads everything.
                    return Bytes::from_static(RESYNC_FRAME.as_bytes());
                }
                Err(_) => break,
            };
            joined
                .get_or_insert_with(|| text.to_vec())
                .extend_from_slice(&more);
        }
        joined.map_or(text, Bytes::from)
    }
}

fn keep_alive_ticks() -> tokio::time::Interval {
    let mut ticks = tokio::time::interval_at(Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks
}

pub async fn event_stream(
    State(state): State<AppState>,
    Query(filter): Query<Filter>,
) -> Result<Response, ApiError> {
    let subscription = Subscription {
        bursts: state.events.subscribe_bursts(),
        filter: filter.checked()?,
        closed: state.events.closed_token(),
        last_write: Instant::now(),
        keep_alive: keep_alive_ticks(),
    };
    let stream = futures::stream::unfold(subscription, |mut subscription| async move {
        let text = subscription.next_text().await?;
        Some((Ok::<_, Infallible>(text), subscription))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::events::Published;

    fn burst(jobs: &[&str]) -> Arc<Burst> {
        let events = jobs
            .iter()
            .map(|job| Arc::new(Published::new(Event::job(job))))
            .collect();
        Arc::new(Burst::new(events, false))
    }

    fn subscription(
        capacity: usize,
        filter: Filter,
    ) -> (broadcast::Sender<Arc<Burst>>, Subscription) {
        let (sender, bursts) = broadcast::channel(capacity);
        let subscription = Subscription {
            bursts: BurstReceiver::counted(bursts, &Arc::default()),
            filter,
            closed: CancellationToken::new(),
            last_write: Instant::now(),
            keep_alive: keep_alive_ticks(),
        };
        (sender, subscription)
    }

    fn text(bytes: &Bytes) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    #[tokio::test]
    async fn bursts_that_waited_are_written_in_one_piece_and_filtered() {
        let only_b = Filter {
            job: Some("b".into()),
            task: None,
        };
        let (sender, mut stream) = subscription(8, only_b);
        for jobs in [&["a", "b"][..], &["c"], &["b", "d"]] {
            sender.send(burst(jobs)).expect("a subscriber");
        }
        let written = stream.next_text().await.expect("text");
        let frame = "event: job\ndata: {\"type\":\"job\",\"job_id\":\"b\"}\n\n";
        assert_eq!(text(&written), format!("{frame}{frame}"));
    }

    #[tokio::test]
    async fn a_stream_behind_by_more_than_the_bus_keeps_gets_one_resync() {
        let (sender, mut stream) = subscription(2, Filter::default());
        for i in 0..5 {
            sender
                .send(burst(&[&format!("job-{i}")]))
                .expect("a subscriber");
        }
        assert_eq!(text(&stream.next_text().await.expect("text")), RESYNC_FRAME);
        // Then it goes on with what the bus still holds.
        let next = text(&stream.next_text().await.expect("text"));
        assert!(next.contains("job-3") && next.contains("job-4"), "{next}");
    }

    #[tokio::test]
    async fn a_closed_bus_ends_the_stream() {
        let (sender, mut stream) = subscription(2, Filter::default());
        drop(sender);
        assert!(stream.next_text().await.is_none());
    }
}
