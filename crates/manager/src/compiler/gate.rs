//! How many scripts evaluate at once. Each may use the whole memory limit and a core, so
//! without a bound eight large checks took 1.5 GB and ran each other out of time; beyond the
//! bound, evaluations wait in line (not counted against their time limit), for a while.
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::CompileError;

/// How long an evaluation waits for its turn before the request is refused as busy.
pub const MAX_QUEUE_WAIT: Duration = Duration::from_secs(60);

pub(crate) struct ScriptGate {
    free: Mutex<usize>,
    freed: Condvar,
    slots: usize,
    max_wait: Duration,
}

/// One running evaluation; its slot is free again when this is dropped.
pub(crate) struct Slot<'a>(&'a ScriptGate);

impl ScriptGate {
    pub(crate) fn new(slots: usize, max_wait: Duration) -> Self {
        let slots = slots.max(1);
        ScriptGate {
            free: Mutex::new(slots),
            freed: Condvar::new(),
            slots,
            max_wait,
        }
    }

    /// Waits for a free slot (blocking: called on the compile's blocking thread).
    pub(crate) fn enter(&self) -> Result<Slot<'_>, CompileError> {
        let deadline = Instant::now() + self.max_wait;
        // The count is a plain integer: a panicking holder cannot leave it inconsistent.
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        while *free == 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(CompileError::Busy {
                    running: self.slots,
                    waited: self.max_wait,
                });
            }
            free = self
                .freed
                .wait_timeout(free, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *free -= 1;
        Ok(Slot(self))
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut free = self.0.free.lock().unwrap_or_else(PoisonError::into_inner);
        *free += 1;
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn a_full_gate_refuses_after_its_wait_and_admits_once_a_slot_is_free() {
        let gate = ScriptGate::new(1, Duration::from_millis(20));
        let held = gate.enter().expect("first slot");
        let refused = gate.enter().map(|_| ()).expect_err("no free slot");
        assert!(
            matches!(refused, CompileError::Busy { running: 1, .. }),
            "{refused:?}"
        );
        assert!(refused.to_string().contains("try again"), "{refused}");
        drop(held);
        gate.enter().expect("the freed slot");
    }

    #[test]
    fn no_more_than_the_slots_run_at_once_and_every_waiter_gets_its_turn() {
        let gate = Arc::new(ScriptGate::new(2, Duration::from_secs(60)));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (gate, running, most) = (gate.clone(), running.clone(), most.clone());
                std::thread::spawn(move || {
                    let _slot = gate.enter().expect("a turn");
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::yield_now();
                    running.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("thread");
        }
        assert!(most.load(Ordering::SeqCst) <= 2);
    }
}
