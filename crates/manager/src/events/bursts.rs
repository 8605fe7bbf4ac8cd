//! Events gathered into bursts for the event streams. The pacer collects what is published
//! for a pace after a burst's first event and hands the whole burst to every stream at once,
//! with its SSE text made once: an open dashboard then costs one wake-up and one write per
//! burst, however many events the burst holds and however many dashboards are open. The pace
//! is short after a quiet spell and grows while events keep coming, so a busy farm's streams
//! cost a few writes a second each, however busy it is.
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

use super::{Event, Published};

/// How long the pacer gathers events after the first of a burst that follows a quiet spell.
/// A dashboard batches its re-reads for longer than this anyway; a shorter pace only adds
/// wake-ups of every stream.
const PACE: Duration = Duration::from_millis(100);

/// The longest pace: while bursts follow each other, each pace is twice the one before, up
/// to this. A change then shows on a dashboard within about half a second.
const MAX_PACE: Duration = Duration::from_millis(300);

/// A first event this long after the last burst starts again at `PACE`.
const QUIET: Duration = Duration::from_secs(1);

/// Most events one burst holds. Past it the burst becomes a `resync` (re-read what you
/// show): for a mass change that is cheaper for the client too, and it bounds memory.
pub const MAX_BURST_EVENTS: usize = 4096;

/// Bursts a stream may fall behind (a client that does not read) before it is told to
/// resync; at one burst per `PACE` at most, that is at least 6.4 s of not reading.
const BURSTS_KEPT: usize = 64;

/// The SSE text of a `resync` event.
pub const RESYNC_FRAME: &str = "event: resync\ndata: {}\n\n";

/// What the pacer hands every stream at once.
#[derive(Debug)]
pub struct Burst {
    /// In the order they were published.
    pub events: Vec<Arc<Published>>,
    /// More happened than a burst holds: clients re-read everything instead.
    pub resync: bool,
    /// The SSE text of every event, made by the first unfiltered stream that writes it.
    text: OnceLock<Bytes>,
}

impl Burst {
    pub(crate) fn new(events: Vec<Arc<Published>>, resync: bool) -> Self {
        Self {
            events,
            resync,
            text: OnceLock::new(),
        }
    }

    /// The SSE text of the whole burst, shared by every unfiltered stream.
    pub fn text(&self) -> Bytes {
        self.text.get_or_init(|| self.text_for(|_| true)).clone()
    }

    /// The SSE text of the events `admits` accepts (empty when none is).
    pub fn text_for(&self, admits: impl Fn(&Event) -> bool) -> Bytes {
        if self.resync {
            return Bytes::from_static(RESYNC_FRAME.as_bytes());
        }
        let mut text = String::new();
        for published in self.events.iter().filter(|p| admits(&p.event)) {
            text.push_str(published.frame());
        }
        Bytes::from(text)
    }
}

/// A stream's receiver of bursts; counted as a listener until dropped.
pub struct BurstReceiver {
    receiver: broadcast::Receiver<Arc<Burst>>,
    listeners: Arc<AtomicUsize>,
}

impl BurstReceiver {
    /// `receiver`, counted in `listeners` until dropped.
    pub(crate) fn counted(
        receiver: broadcast::Receiver<Arc<Burst>>,
        listeners: &Arc<AtomicUsize>,
    ) -> Self {
        listeners.fetch_add(1, Ordering::Relaxed);
        Self {
            receiver,
            listeners: Arc::clone(listeners),
        }
    }
}

impl Drop for BurstReceiver {
    fn drop(&mut self) {
        self.listeners.fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::ops::Deref for BurstReceiver {
    type Target = broadcast::Receiver<Arc<Burst>>;
    fn deref(&self) -> &Self::Target {
        &self.receiver
    }
}

impl std::ops::DerefMut for BurstReceiver {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.receiver
    }
}

#[derive(Default)]
struct Pending {
    events: Vec<Arc<Published>>,
    overflowed: bool,
}

/// Streams are split into this many waves; a burst reaches one wave after the other, spread
/// over the burst's pace, so 200 open streams never all wake (and write) at one instant.
const WAVES: usize = 16;

/// The pacer's side of the bus: what has been published since the last burst.
pub struct Bursts {
    pending: Mutex<Pending>,
    /// Wakes the pacer when a burst's first event arrives.
    first_event: Notify,
    waves: Vec<broadcast::Sender<Arc<Burst>>>,
    /// The wave the next stream joins (round robin).
    next_wave: AtomicUsize,
    /// Open receivers, kept by `BurstReceiver`: read on every publish, so one atomic
    /// instead of asking each wave's channel (a lock each).
    listeners: Arc<AtomicUsize>,
    pacer_started: AtomicBool,
    /// Reads the fields events carry; without one they carry ids only.
    details: OnceLock<Arc<dyn super::DetailSource>>,
}

impl Bursts {
    pub fn new() -> Self {
        Self {
            pending: Mutex::default(),
            first_event: Notify::new(),
            waves: (0..WAVES)
                .map(|_| broadcast::channel(BURSTS_KEPT).0)
                .collect(),
            next_wave: AtomicUsize::new(0),
            listeners: Arc::default(),
            pacer_started: AtomicBool::new(false),
            details: OnceLock::new(),
        }
    }

    pub fn set_details(&self, source: Arc<dyn super::DetailSource>) {
        if self.details.set(source).is_err() {
            tracing::warn!("the event details source was set twice; the first one stays");
        }
    }

    /// How many streams listen (with none, publishing gathers nothing for them).
    pub fn listeners(&self) -> usize {
        self.listeners.load(Ordering::Relaxed)
    }

    pub fn add(&self, published: Arc<Published>) {
        let first = {
            let Ok(mut pending) = self.pending.lock() else {
                return;
            };
            let first = pending.events.is_empty() && !pending.overflowed;
            if pending.events.len() >= MAX_BURST_EVENTS {
                // More than a burst holds: it becomes a resync, and nothing more is kept.
                pending.overflowed = true;
                pending.events = Vec::new();
            } else if !pending.overflowed {
                pending.events.push(published);
            }
            first
        };
        if first {
            self.first_event.notify_one();
        }
    }

    /// A receiver of bursts; starts the pacer on first use (so it must be called from
    /// within the runtime).
    pub fn subscribe(self: &Arc<Self>, closed: &CancellationToken) -> BurstReceiver {
        let wave = self.next_wave.fetch_add(1, Ordering::Relaxed) % WAVES;
        let receiver = BurstReceiver::counted(self.waves[wave].subscribe(), &self.listeners);
        if !self.pacer_started.swap(true, Ordering::SeqCst) {
            tokio::spawn(Arc::clone(self).pace(closed.clone()));
        }
        receiver
    }

    async fn pace(self: Arc<Self>, closed: CancellationToken) {
        let mut pace = PACE;
        let mut last_burst: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                _ = closed.cancelled() => return,
                _ = self.first_event.notified() => {}
            }
            pace = match last_burst {
                Some(at) if at.elapsed() < QUIET => (pace * 2).min(MAX_PACE),
                _ => PACE,
            };
            tokio::select! {
                _ = closed.cancelled() => return,
                _ = tokio::time::sleep(pace) => {}
            }
            let taken = match self.pending.lock() {
                Ok(mut pending) => std::mem::take(&mut *pending),
                Err(_) => return,
            };
            if taken.events.is_empty() && !taken.overflowed {
                continue;
            }
            last_burst = Some(tokio::time::Instant::now());
            let events = match self.details.get() {
                Some(source) if !taken.overflowed => {
                    super::details::enrich(source.as_ref(), taken.events).await
                }
                _ => taken.events,
            };
            let burst = Arc::new(Burst::new(events, taken.overflowed));
            // Delivered while the next burst gathers. The next one starts its waves at least
            // one pace later, and its pace is no shorter, so each wave keeps the order.
            tokio::spawn(Arc::clone(&self).deliver(burst, pace, closed.clone()));
        }
    }

    /// Hands `burst` to one wave of streams after the other, over `pace`.
    async fn deliver(
        self: Arc<Self>,
        burst: Arc<Burst>,
        pace: Duration,
        closed: CancellationToken,
    ) {
        let start = tokio::time::Instant::now();
        for (wave, sender) in self.waves.iter().enumerate() {
            if sender.receiver_count() == 0 {
                continue;
            }
            let at = start + pace.mul_f64(wave as f64 / WAVES as f64);
            tokio::select! {
                _ = closed.cancelled() => return,
                _ = tokio::time::sleep_until(at) => {}
            }
            let _ = sender.send(Arc::clone(&burst));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{Event, EventBus};
    use super::*;

    async fn next_burst(bursts: &mut BurstReceiver) -> Arc<Burst> {
        tokio::time::timeout(Duration::from_secs(5), bursts.recv())
            .await
            .expect("a burst within 5 s")
            .expect("the bus is open")
    }

    #[tokio::test]
    async fn events_published_together_arrive_as_one_burst_in_order() {
        let bus = EventBus::new();
        let mut bursts = bus.subscribe_bursts();
        bus.publish(Event::job("j1"));
        bus.publish(Event::task("j1", "t1"));
        bus.publish(Event::worker("w1"));
        let burst = next_burst(&mut bursts).await;
        assert!(!burst.resync);
        let text = String::from_utf8(burst.text().to_vec()).expect("utf-8");
        assert_eq!(
            text,
            "event: job\ndata: {\"type\":\"job\",\"job_id\":\"j1\"}\n\n\
             event: task\ndata: {\"type\":\"task\",\"job_id\":\"j1\",\"task_id\":\"t1\"}\n\n\
             event: worker\ndata: {\"type\":\"worker\",\"worker_id\":\"w1\"}\n\n"
        );
        // Every unfiltered stream writes the very same bytes.
        assert_eq!(burst.text().as_ptr(), burst.text().as_ptr());
        let only_j1_tasks = burst.text_for(|e| e.task_id() == Some("t1"));
        assert_eq!(
            String::from_utf8_lossy(&only_j1_tasks),
            "event: task\ndata: {\"type\":\"task\",\"job_id\":\"j1\",\"task_id\":\"t1\"}\n\n"
        );
        assert!(burst.text_for(|_| false).is_empty());

        // The next event starts the next burst.
        bus.publish(Event::job("j2"));
        let second = next_burst(&mut bursts).await;
        assert_eq!(second.events.len(), 1);
        assert_eq!(second.events[0].event, Event::job("j2"));
    }

    #[tokio::test]
    async fn every_wave_of_streams_gets_the_same_burst() {
        let bus = EventBus::new();
        let mut streams: Vec<_> = (0..WAVES + 1).map(|_| bus.subscribe_bursts()).collect();
        assert_eq!(bus.subscriber_count(), WAVES + 1);
        bus.publish(Event::job("j1"));
        let first = next_burst(&mut streams[0]).await;
        for stream in &mut streams[1..] {
            assert!(
                Arc::ptr_eq(&first, &next_burst(stream).await),
                "one burst, shared"
            );
        }
    }

    #[tokio::test]
    async fn a_burst_larger_than_the_limit_becomes_a_resync() {
        let bus = EventBus::new();
        let mut bursts = bus.subscribe_bursts();
        for i in 0..MAX_BURST_EVENTS + 1 {
            bus.publish(Event::job(&format!("job-{i}")));
        }
        let burst = next_burst(&mut bursts).await;
        assert!(burst.resync);
        assert!(burst.events.is_empty(), "nothing kept past the limit");
        assert_eq!(&burst.text()[..], RESYNC_FRAME.as_bytes());
        assert_eq!(&burst.text_for(|_| true)[..], RESYNC_FRAME.as_bytes());
    }

    #[tokio::test]
    async fn with_no_stream_open_nothing_is_gathered() {
        let bus = EventBus::new();
        bus.publish(Event::job("unseen"));
        assert_eq!(bus.subscriber_count(), 0);
        let mut bursts = bus.subscribe_bursts();
        assert_eq!(bus.subscriber_count(), 1);
        bus.publish(Event::job("seen"));
        let burst = next_burst(&mut bursts).await;
        assert_eq!(burst.events.len(), 1);
        assert_eq!(burst.events[0].event, Event::job("seen"));
    }
}
