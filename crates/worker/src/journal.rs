//! The on-disk queue of task updates the manager has not acknowledged yet. An update is
//! recorded before it is sent and settled once the manager answered, so updates a worker
//! could not deliver before it stopped (the manager was down) are sent after it starts
//! again, in order and under their original sequence numbers: the manager applies each
//! number once, and refuses updates for tasks it has meanwhile given to another worker.
//!
//! The file holds the pending updates as length-prefixed protobuf messages and is
//! rewritten (temp file + rename) on every change; it is small, as settled updates leave it.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use castanet_protocol::v1::TaskUpdate;
use prost::Message;

/// The journal's file name inside the worker's data directory.
pub const JOURNAL_FILE: &str = "pending-updates.bin";

/// Updates sent but not yet answered, by sequence number.
pub struct UpdateJournal {
    path: PathBuf,
    pending: Mutex<BTreeMap<u64, TaskUpdate>>,
    /// The last write failed (said once, until a write works again).
    failing: AtomicBool,
}

impl UpdateJournal {
    /// Opens the journal in `data_dir`. A damaged file is moved aside (and reported) so the
    /// worker can still start.
    pub fn open(data_dir: &Path) -> Self {
        let path = data_dir.join(JOURNAL_FILE);
        let pending = match std::fs::read(&path) {
            Ok(bytes) => decode(&bytes).unwrap_or_else(|e| {
                let aside = path.with_extension("bin.damaged");
                tracing::warn!(path = %path.display(), error = %e, "damaged update journal; moving it aside");
                let _ = std::fs::rename(&path, aside);
                BTreeMap::new()
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the update journal");
                BTreeMap::new()
            }
        };
        if !pending.is_empty() {
            tracing::info!(
                updates = pending.len(),
                "task updates from before the restart are waiting to be sent"
            );
        }
        Self {
            path,
            pending: Mutex::new(pending),
            failing: AtomicBool::new(false),
        }
    }

    /// Remembers `update` (already numbered) until it is settled.
    pub fn record(&self, update: &TaskUpdate) {
        let mut pending = self.lock();
        pending.insert(update.sequence, update.clone());
        self.persist(&pending);
    }

    /// Forgets the update numbered `sequence` (the manager answered it).
    pub fn settle(&self, sequence: u64) {
        let mut pending = self.lock();
        if pending.remove(&sequence).is_some() {
            self.persist(&pending);
        }
    }

    /// Forgets everything (the worker registered anew: old updates cannot be delivered).
    pub fn clear(&self) {
        let mut pending = self.lock();
        if !pending.is_empty() {
            tracing::warn!(
                updates = pending.len(),
                "dropping task updates of the previous worker identity"
            );
            pending.clear();
            self.persist(&pending);
        }
    }

    /// The pending updates, oldest first.
    pub fn pending(&self) -> Vec<TaskUpdate> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, TaskUpdate>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes the pending updates. A failure (a full disk) only costs the restart
    /// guarantee: the updates are still in memory and sent while the worker runs. So it is
    /// said once, loudly, and again when the journal is written again.
    fn persist(&self, pending: &BTreeMap<u64, TaskUpdate>) {
        match write_atomically(&self.path, &encode(pending)) {
            // An empty journal takes no space, so only a written update proves there is room.
            Ok(()) if pending.is_empty() => {}
            Ok(()) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(path = %self.path.display(), "the update journal is written again");
                }
            }
            Err(e) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        path = %self.path.display(),
                        error = %e,
                        "cannot write the update journal: task updates are kept in memory and \
                         still sent, but those not delivered yet would be lost if the worker \
                         stopped now; free space in the data directory"
                    );
                } else {
                    tracing::debug!(path = %self.path.display(), error = %e, "cannot write the update journal");
                }
            }
        }
    }

    /// Whether the last write of the journal failed.
    #[cfg(test)]
    fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }
}

fn encode(pending: &BTreeMap<u64, TaskUpdate>) -> Vec<u8> {
    let mut bytes = Vec::new();
    for update in pending.values() {
        // Length-delimited encoding into a Vec cannot fail.
        let _ = update.encode_length_delimited(&mut bytes);
    }
    bytes
}

fn decode(mut bytes: &[u8]) -> Result<BTreeMap<u64, TaskUpdate>, prost::DecodeError> {
    let mut pending = BTreeMap::new();
    while !bytes.is_empty() {
        let update = TaskUpdate::decode_length_delimited(&mut bytes)?;
        pending.insert(update.sequence, update);
    }
    Ok(pending)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let partial = path.with_extension("bin.partial");
    let written = std::fs::write(&partial, bytes).and_then(|()| std::fs::rename(&partial, path));
    if written.is_err() {
        // A half-written copy would only hold on to the space a full disk lacks.
        let _ = std::fs::remove_file(&partial);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(sequence: u64, task: &str) -> TaskUpdate {
        TaskUpdate {
            task_id: task.into(),
            lease_epoch: 3,
            sequence,
            activity: Some(format!("update {sequence}")),
            ..TaskUpdate::default()
        }
    }

    #[test]
    fn pending_updates_survive_a_restart_in_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let journal = UpdateJournal::open(dir.path());
        assert!(journal.pending().is_empty());
        journal.record(&update(7, "b"));
        journal.record(&update(5, "a"));
        journal.record(&update(6, "a"));
        journal.settle(6);
        journal.settle(99);
        let reopened = UpdateJournal::open(dir.path());
        assert_eq!(reopened.pending(), [update(5, "a"), update(7, "b")]);
        reopened.settle(5);
        reopened.settle(7);
        assert!(UpdateJournal::open(dir.path()).pending().is_empty());
    }

    #[test]
    fn a_journal_that_cannot_be_written_keeps_its_updates_in_memory_and_recovers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let journal = UpdateJournal::open(dir.path());
        journal.record(&update(1, "a"));
        // A directory where the temp file goes stands in for a full disk.
        let partial = dir.path().join("pending-updates.bin.partial");
        std::fs::create_dir(&partial).expect("blocker");
        journal.record(&update(2, "a"));
        assert!(journal.is_failing());
        assert_eq!(journal.pending(), [update(1, "a"), update(2, "a")]);
        journal.settle(1);
        assert_eq!(journal.pending(), [update(2, "a")]);

        std::fs::remove_dir(&partial).expect("remove blocker");
        journal.record(&update(3, "b"));
        assert!(!journal.is_failing());
        assert_eq!(
            UpdateJournal::open(dir.path()).pending(),
            [update(2, "a"), update(3, "b")]
        );
    }

    #[test]
    fn a_damaged_journal_is_moved_aside() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join(JOURNAL_FILE), b"\xff\xff\xff garbage").expect("write");
        let journal = UpdateJournal::open(dir.path());
        assert!(journal.pending().is_empty());
        assert!(dir.path().join("pending-updates.bin.damaged").exists());
    }
}
