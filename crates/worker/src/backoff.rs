//! Capped exponential backoff for retrying calls to the manager (100 ms doubling up to 5 s).

use std::time::Duration;

/// First retry delay.
pub const INITIAL_DELAY: Duration = Duration::from_millis(100);
/// Longest delay between attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(5);

/// Hands out growing delays; `reset` after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(INITIAL_DELAY, MAX_DELAY)
    }
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            next: initial,
        }
    }

    /// The delay to wait now; the following one is twice as long, up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut backoff = Backoff::default();
        let delays: Vec<u64> = (0..9)
            .map(|_| backoff.next_delay().as_millis() as u64)
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), INITIAL_DELAY);
    }
}
