//! The fence: a worker that has heard nothing from the manager for `fence_after` stops its
//! running tasks. By then the manager may be about to hand them to other workers (its
//! worker timeout), and two live runs of one task must never overlap. The manager
//! announces the time at sign-on (half its worker timeout) and sends heartbeats on the
//! instruction stream, so silence means a lost manager, not an idle farm.
//!
//! The fence counts from the last word heard, not from when the worker noticed the
//! connection was gone, so a half-open connection cannot stretch it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;

use super::tasks::TaskAborter;

/// Watches the time since the manager was last heard and aborts the running tasks when it
/// passes the fence.
pub struct Fence {
    shared: Arc<Shared>,
    _watcher: AbortOnDropHandle<()>,
}

struct Shared {
    clock: Mutex<Clock>,
    /// Wakes the watcher when the last-heard time or the fence changes.
    changed: Notify,
    /// Counts the times the fence fired.
    fired: watch::Sender<u64>,
}

#[derive(Clone, Copy)]
struct Clock {
    last_heard: Instant,
    after: Option<Duration>,
    /// Fired since the manager was last heard (fires once per silence).
    fired: bool,
}

impl Fence {
    /// A fence that is off until [`set_after`](Self::set_after) names a time.
    pub fn new(tasks: TaskAborter) -> Self {
        let shared = Arc::new(Shared {
            clock: Mutex::new(Clock {
                last_heard: Instant::now(),
                after: None,
                fired: false,
            }),
            changed: Notify::new(),
            fired: watch::Sender::new(0),
        });
        let watcher = AbortOnDropHandle::new(tokio::spawn(watch_silence(shared.clone(), tasks)));
        Self {
            shared,
            _watcher: watcher,
        }
    }

    /// The manager said something (a sign-on answer, an instruction, a heartbeat).
    pub fn heard(&self) {
        self.update(|clock| {
            clock.last_heard = Instant::now();
            clock.fired = false;
        });
    }

    /// The fence the manager announced (None: never fence).
    pub fn set_after(&self, after: Option<Duration>) {
        self.update(|clock| clock.after = after);
    }

    /// Follows how often the fence fired; a change while connected means the connection
    /// is silent and should be dropped.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.fired.subscribe()
    }

    fn update(&self, change: impl FnOnce(&mut Clock)) {
        change(&mut self.shared.lock());
        self.shared.changed.notify_one();
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Clock> {
        self.clock.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

async fn watch_silence(shared: Arc<Shared>, tasks: TaskAborter) {
    loop {
        let clock = *shared.lock();
        let deadline = match clock.after {
            Some(after) if !clock.fired => clock.last_heard + after,
            _ => {
                shared.changed.notified().await;
                continue;
            }
        };
        tokio::select! {
            () = shared.changed.notified() => continue,
            () = tokio::time::sleep_until(deadline) => {}
        }
        let silent_for = {
            let mut clock = shared.lock();
            let overdue = clock
                .after
                .is_some_and(|after| clock.last_heard + after <= Instant::now());
            if clock.fired || !overdue {
                continue;
            }
            clock.fired = true;
            clock.last_heard.elapsed()
        };
        let aborted = tasks.abort_all();
        if aborted > 0 {
            tracing::warn!(
                aborted,
                silent_secs = silent_for.as_secs(),
                "no word from the manager: stopping the running tasks before the manager hands them to other workers"
            );
        }
        shared.fired.send_modify(|n| *n += 1);
    }
}
