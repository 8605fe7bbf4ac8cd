//! Full-disk refusals of worker calls, logged once per spell. Every worker retries what
//! was refused, so an ERROR per refused call buried the log while a disk was full: the
//! first refusal of a spell is an ERROR, later ones are counted into a WARN at most once
//! a minute, and the first write that succeeds after them is an INFO.
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often a spell that goes on is mentioned again.
const REMINDER_INTERVAL: Duration = Duration::from_secs(60);

pub(super) struct FullSpell {
    what: &'static str,
    /// Whether a spell is on: the success path, taken by every call, only reads this.
    active: AtomicBool,
    spell: Mutex<Option<Spell>>,
}

struct Spell {
    last_reported: Instant,
    refused_since_report: u64,
    refused_in_all: u64,
}

impl FullSpell {
    pub(super) const fn new(what: &'static str) -> Self {
        Self {
            what,
            active: AtomicBool::new(false),
            spell: Mutex::new(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Spell>> {
        // Only counters live here: a poisoned lock is still usable.
        self.spell.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A worker call was refused because the disk is full.
    pub(super) fn refused(&self, error: &dyn std::fmt::Display) {
        let what = self.what;
        let mut spell = self.lock();
        let Some(on) = spell.as_mut() else {
            tracing::error!(
                "the manager's {what} is full; worker calls that write to it are refused and retried by the workers: {error}"
            );
            *spell = Some(Spell {
                last_reported: Instant::now(),
                refused_since_report: 0,
                refused_in_all: 1,
            });
            self.active.store(true, Ordering::Relaxed);
            return;
        };
        on.refused_since_report += 1;
        on.refused_in_all += 1;
        if on.last_reported.elapsed() >= REMINDER_INTERVAL {
            let refused = on.refused_since_report;
            tracing::warn!(
                "the manager's {what} is still full; {refused} more worker calls refused: {error}"
            );
            on.last_reported = Instant::now();
            on.refused_since_report = 0;
        }
    }

    /// A worker call wrote to the disk: ends a spell, if one is on.
    pub(super) fn stored(&self) {
        if !self.active.load(Ordering::Relaxed) {
            return;
        }
        let ended = self.lock().take();
        self.active.store(false, Ordering::Relaxed);
        if let Some(spell) = ended {
            let what = self.what;
            let refused = spell.refused_in_all;
            tracing::info!(
                "the manager's {what} takes writes again ({refused} worker calls were refused while it was full)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spell_starts_at_the_first_refusal_counts_the_rest_and_ends_at_a_write() {
        let spell = FullSpell::new("test disk");
        spell.stored();
        assert!(!spell.active.load(Ordering::Relaxed));
        for _ in 0..5 {
            spell.refused(&"No space left on device");
        }
        assert!(spell.active.load(Ordering::Relaxed));
        let counted = spell.lock().as_ref().map(|on| on.refused_in_all);
        assert_eq!(counted, Some(5));
        spell.stored();
        assert!(!spell.active.load(Ordering::Relaxed));
        assert!(spell.lock().is_none());
    }
}
