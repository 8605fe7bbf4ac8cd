//! The on-disk queue of final task updates the manager has not acknowledged yet. An update
//! is recorded before it is sent and settled once the manager answered, so a result a
//! worker could not deliver before it stopped (the manager was down) is sent after it
//! starts again, under its original sequence number: the manager applies each number once,
//! and refuses updates for tasks it has meanwhile given to another worker.
//!
//! The file is appended to while the worker runs: `record` appends the update, `settle` the
//! number it settles; once nothing is pending the file is cut back to empty. It stays the
//! same file: writing a new one per change (temp file + rename) cost a new inode per
//! update, which on ext4 was a large share of a short task's cost. Opening replays the
//! entries, ignoring a torn last one (the worker died mid-write), and compacts the file.
//! After a failed write the next change rewrites the whole file (temp file + rename).
//! Nothing is fsynced: after a power cut a kept result may be gone (or the file may end
//! in zeros, read as a torn entry), and the task then runs again; it is never applied
//! twice.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use castanet_protocol::v1::TaskUpdate;
use prost::Message;

/// The journal's file name inside the worker's data directory.
pub const JOURNAL_FILE: &str = "pending-updates.bin";

/// The first bytes of a journal of entries (older journals hold bare updates).
const MAGIC: &[u8] = b"castanet-journal-2\n";
/// Entry tags: an update follows (length-delimited), or a settled number (varint).
const RECORD: u8 = 1;
const SETTLE: u8 = 2;
/// A file longer than this while updates are pending is compacted.
const COMPACT_AFTER_BYTES: u64 = 256 * 1024;

/// Updates sent but not yet answered, by sequence number.
pub struct UpdateJournal {
    path: PathBuf,
    state: Mutex<State>,
    /// The last write failed (said once, until a write works again).
    failing: AtomicBool,
}

struct State {
    pending: BTreeMap<u64, TaskUpdate>,
    /// Open for appending; None until the first write, and after a failed one.
    file: Option<File>,
    /// Bytes in the file.
    len: u64,
}

impl UpdateJournal {
    /// Opens the journal in `data_dir`. A damaged file is moved aside (and reported) so the
    /// worker can still start.
    pub fn open(data_dir: &Path) -> Self {
        let path = data_dir.join(JOURNAL_FILE);
        let mut readable = true;
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
                readable = false;
                BTreeMap::new()
            }
        };
        if !pending.is_empty() {
            tracing::info!(
                updates = pending.len(),
                "task updates from before the restart are waiting to be sent"
            );
        }
        let journal = Self {
            path,
            state: Mutex::new(State {
                pending,
                file: None,
                len: 0,
            }),
            failing: AtomicBool::new(false),
        };
        // Compacted now, so what is appended later follows whole entries. A journal that
        // cannot be read is left as it is until the first change has to replace it.
        if readable {
            journal.rewrite(&mut journal.lock());
        }
        journal
    }

    /// Remembers `update` (already numbered) until it is settled.
    pub fn record(&self, update: &TaskUpdate) {
        let mut state = self.lock();
        state.pending.insert(update.sequence, update.clone());
        let mut entry = vec![RECORD];
        // Encoding into a Vec cannot fail.
        let _ = update.encode_length_delimited(&mut entry);
        self.append(&mut state, &entry);
    }

    /// Forgets the update numbered `sequence` (the manager answered it).
    pub fn settle(&self, sequence: u64) {
        let mut state = self.lock();
        if state.pending.remove(&sequence).is_none() {
            return;
        }
        let mut entry = vec![SETTLE];
        prost::encoding::encode_varint(sequence, &mut entry);
        self.append(&mut state, &entry);
    }

    /// Forgets everything (the worker registered anew: old updates cannot be delivered).
    pub fn clear(&self) {
        let mut state = self.lock();
        if !state.pending.is_empty() {
            tracing::warn!(
                updates = state.pending.len(),
                "dropping task updates of the previous worker identity"
            );
            state.pending.clear();
            self.rewrite(&mut state);
        }
    }

    /// The pending updates, oldest first.
    pub fn pending(&self) -> Vec<TaskUpdate> {
        self.lock().pending.values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends one entry; with nothing pending afterwards the file is cut back to empty
    /// instead. Without an open file, or once the file is long, the whole journal is
    /// written anew.
    fn append(&self, state: &mut State, entry: &[u8]) {
        let Some(file) = state
            .file
            .as_mut()
            .filter(|_| state.len <= COMPACT_AFTER_BYTES)
        else {
            return self.rewrite(state);
        };
        let written = if state.pending.is_empty() {
            file.set_len(0).map(|()| 0)
        } else if state.len == 0 {
            let mut bytes = MAGIC.to_vec();
            bytes.extend_from_slice(entry);
            file.write_all(&bytes).map(|()| bytes.len() as u64)
        } else {
            file.write_all(entry).map(|()| entry.len() as u64)
        };
        match written {
            Ok(0) => state.len = 0,
            Ok(added) => {
                state.len += added;
                self.report(Ok(()));
            }
            Err(e) => {
                // What part of the entry reached the file is unknown: start over.
                state.file = None;
                self.report(Err(e));
            }
        }
    }

    /// Writes the pending updates as a new file (temp file + rename) and opens it for
    /// appending.
    fn rewrite(&self, state: &mut State) {
        state.file = None;
        let bytes = encode(&state.pending);
        let opened = write_atomically(&self.path, &bytes)
            .and_then(|()| std::fs::OpenOptions::new().append(true).open(&self.path));
        match opened {
            Ok(file) => {
                state.file = Some(file);
                state.len = bytes.len() as u64;
                // An empty journal takes no space, so only a written update proves there is room.
                if !state.pending.is_empty() {
                    self.report(Ok(()));
                }
            }
            Err(e) => self.report(Err(e)),
        }
    }

    /// A failure (a full disk) only costs the restart guarantee: the updates are still in
    /// memory and sent while the worker runs. So it is said once, loudly, and again when
    /// the journal is written again.
    fn report(&self, result: io::Result<()>) {
        match result {
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

/// The pending updates as a journal file (empty when there are none).
fn encode(pending: &BTreeMap<u64, TaskUpdate>) -> Vec<u8> {
    if pending.is_empty() {
        return Vec::new();
    }
    let mut bytes = MAGIC.to_vec();
    for update in pending.values() {
        bytes.push(RECORD);
        // Length-delimited encoding into a Vec cannot fail.
        let _ = update.encode_length_delimited(&mut bytes);
    }
    bytes
}

fn decode(bytes: &[u8]) -> Result<BTreeMap<u64, TaskUpdate>, prost::DecodeError> {
    let Some(mut entries) = bytes.strip_prefix(MAGIC) else {
        // A first append cut short by a full disk leaves part of the header only.
        if MAGIC.starts_with(bytes) {
            return Ok(BTreeMap::new());
        }
        return decode_bare_updates(bytes);
    };
    let mut pending = BTreeMap::new();
    while let Some((&tag, mut rest)) = entries.split_first() {
        let applied = match tag {
            RECORD => TaskUpdate::decode_length_delimited(&mut rest)
                .map(|update| {
                    pending.insert(update.sequence, update);
                })
                .map_err(|e| e.to_string()),
            SETTLE => prost::encoding::decode_varint(&mut rest)
                .map(|sequence| {
                    pending.remove(&sequence);
                })
                .map_err(|e| e.to_string()),
            other => Err(format!("unknown entry tag {other}")),
        };
        if let Err(e) = applied {
            // The worker died while appending: the entries before this one are whole.
            tracing::warn!(error = %e, "the update journal ends in a torn entry; ignoring it");
            break;
        }
        entries = rest;
    }
    Ok(pending)
}

/// A journal of an earlier version: the pending updates, length-delimited.
fn decode_bare_updates(mut bytes: &[u8]) -> Result<BTreeMap<u64, TaskUpdate>, prost::DecodeError> {
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
        // A directory where the journal goes stands in for a full disk.
        let blocker = dir.path().join(JOURNAL_FILE);
        std::fs::create_dir(&blocker).expect("blocker");
        let journal = UpdateJournal::open(dir.path());
        journal.record(&update(1, "a"));
        journal.record(&update(2, "a"));
        assert!(journal.is_failing());
        assert_eq!(journal.pending(), [update(1, "a"), update(2, "a")]);
        journal.settle(1);
        assert_eq!(journal.pending(), [update(2, "a")]);

        std::fs::remove_dir(&blocker).expect("remove blocker");
        journal.record(&update(3, "b"));
        assert!(!journal.is_failing());
        assert_eq!(
            UpdateJournal::open(dir.path()).pending(),
            [update(2, "a"), update(3, "b")]
        );
    }

    #[cfg(unix)]
    #[test]
    fn recording_and_settling_keep_one_file() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let journal = UpdateJournal::open(dir.path());
        let path = dir.path().join(JOURNAL_FILE);
        let inode = std::fs::metadata(&path).expect("journal file").ino();
        for sequence in 1..=50 {
            journal.record(&update(sequence, "a"));
            journal.settle(sequence);
        }
        journal.record(&update(51, "a"));
        let meta = std::fs::metadata(&path).expect("journal file");
        assert_eq!(meta.ino(), inode, "the journal was replaced by a new file");
        assert!(
            meta.len() < 200,
            "settled entries were cut away: {} bytes",
            meta.len()
        );
        assert_eq!(UpdateJournal::open(dir.path()).pending(), [update(51, "a")]);
    }

    #[test]
    fn a_torn_last_entry_is_ignored() {
        let dir = tempfile::tempdir().expect("temp dir");
        let journal = UpdateJournal::open(dir.path());
        journal.record(&update(1, "a"));
        journal.record(&update(2, "b"));
        drop(journal);
        let path = dir.path().join(JOURNAL_FILE);
        let mut bytes = std::fs::read(&path).expect("journal");
        bytes.truncate(bytes.len() - 3);
        std::fs::write(&path, &bytes).expect("tear");
        assert_eq!(UpdateJournal::open(dir.path()).pending(), [update(1, "a")]);
    }

    #[test]
    fn a_journal_of_the_earlier_format_is_read() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut bytes = Vec::new();
        for sequence in [4, 9] {
            update(sequence, "a")
                .encode_length_delimited(&mut bytes)
                .expect("encode");
        }
        std::fs::write(dir.path().join(JOURNAL_FILE), &bytes).expect("write");
        let journal = UpdateJournal::open(dir.path());
        assert_eq!(journal.pending(), [update(4, "a"), update(9, "a")]);
        journal.settle(4);
        assert_eq!(UpdateJournal::open(dir.path()).pending(), [update(9, "a")]);
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
