//! Log chunks stored once. A worker retries a chunk it got no answer for, and the manager
//! may have stored it already (the answer was lost: the connection broke, or the manager
//! was killed right after writing). Each chunk says where in its task lease's log it
//! starts; the ledger remembers how far each lease's log is stored and the part already
//! there is dropped. For a lease the ledger does not know (after a manager restart, or
//! text of unknown position from a worker's spool), the end of the log file is compared
//! with the chunk's first lines instead.
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Leases remembered at most; the oldest are forgotten first (they fall back to the
/// comparison with the file).
const MAX_LEASES: usize = 100_000;

type Lease = (String, u64);

#[derive(Debug, Default)]
pub struct LogLedger {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Lease → bytes of its log stored so far.
    stored: HashMap<Lease, u64>,
    order: VecDeque<Lease>,
}

impl LogLedger {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every change is one insert or removal: a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many leading bytes of a chunk of `len` bytes at `offset` of the lease's log are
    /// stored already; None when the ledger cannot tell.
    pub fn already_stored(
        &self,
        task_id: &str,
        lease_epoch: u64,
        offset: Option<u64>,
        len: usize,
    ) -> Option<usize> {
        let offset = offset?;
        let lease = (task_id.to_string(), lease_epoch);
        match self.lock().stored.get(&lease) {
            Some(&end) => {
                Some(usize::try_from(end.saturating_sub(offset)).map_or(len, |n| n.min(len)))
            }
            None if offset == 0 => Some(0),
            None => None,
        }
    }

    /// The lease's log is now stored up to `end` (None: up to an unknown point). A chunk
    /// that ends before what is stored (an old stream's, overtaken by its retry) leaves it.
    pub fn record(&self, task_id: &str, lease_epoch: u64, end: Option<u64>) {
        let lease = (task_id.to_string(), lease_epoch);
        let mut inner = self.lock();
        let Some(end) = end else {
            inner.stored.remove(&lease);
            return;
        };
        match inner.stored.get_mut(&lease) {
            Some(stored) => *stored = (*stored).max(end),
            None => {
                inner.stored.insert(lease.clone(), end);
                inner.order.push_back(lease);
            }
        }
        while inner.order.len() > MAX_LEASES {
            if let Some(oldest) = inner.order.pop_front() {
                inner.stored.remove(&oldest);
            }
        }
    }
}

/// The longest beginning of `chunk`, in whole lines, that the stored log ends with (`tail`
/// is the end of the stored log, at least as long as `chunk`). A run that repeats the
/// very lines it printed last can lose them here; this is only asked when the ledger
/// cannot tell.
pub fn overlap_with_tail(tail: &str, chunk: &str) -> usize {
    chunk
        .match_indices('\n')
        .map(|(i, _)| i + 1)
        .rev()
        .find(|&k| {
            let before = tail.len().wrapping_sub(k);
            tail.ends_with(&chunk[..k]) && (before == 0 || tail[..before].ends_with('\n'))
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retried_chunk_is_stored_once_and_its_new_lines_are_kept() {
        let ledger = LogLedger::default();
        assert_eq!(ledger.already_stored("t", 1, Some(0), 10), Some(0));
        ledger.record("t", 1, Some(10));
        // The same chunk again: all of it is there.
        assert_eq!(ledger.already_stored("t", 1, Some(0), 10), Some(10));
        // Retried with more lines after it: only the first 10 bytes are there.
        assert_eq!(ledger.already_stored("t", 1, Some(0), 25), Some(10));
        // The next chunk: nothing of it is there.
        assert_eq!(ledger.already_stored("t", 1, Some(10), 5), Some(0));
        // Another lease of the task starts fresh.
        assert_eq!(ledger.already_stored("t", 2, Some(0), 5), Some(0));
        // An old stream's chunk that is all there does not take the stored end back.
        ledger.record("t", 1, Some(5));
        assert_eq!(ledger.already_stored("t", 1, Some(5), 5), Some(5));
    }

    #[test]
    fn unknown_positions_and_leases_are_unknown() {
        let ledger = LogLedger::default();
        assert_eq!(ledger.already_stored("t", 1, None, 5), None);
        assert_eq!(ledger.already_stored("t", 1, Some(40), 5), None);
        ledger.record("t", 1, Some(45));
        ledger.record("t", 1, None);
        assert_eq!(ledger.already_stored("t", 1, Some(45), 5), None);
    }

    #[test]
    fn the_file_end_tells_what_is_stored_in_whole_lines() {
        let tail = "manager line\nb 1\nb 2\n";
        assert_eq!(overlap_with_tail(tail, "b 1\nb 2\nb 3\n"), 8);
        assert_eq!(overlap_with_tail(tail, "b 2\nb 3\n"), 4);
        assert_eq!(overlap_with_tail(tail, "b 3\nb 4\n"), 0);
        assert_eq!(overlap_with_tail("", "b 1\n"), 0);
        // A partial line never counts.
        assert_eq!(overlap_with_tail("x 2\n", "2\n"), 0);
    }
}
