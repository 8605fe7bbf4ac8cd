//! A worker with an open instruction stream: its slots and the tasks it holds.
use std::collections::HashMap;

use castanet_protocol::v1::{Instruction, instruction::Kind};

use super::InstructionSender;

/// Identifies one opening of a worker's stream, so a stale stream closing does not
/// unregister a newer one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionId(pub u64);

pub(super) struct ConnectedWorker {
    pub connection: ConnectionId,
    pub name: String,
    pub slots: usize,
    pub task_types: Vec<String>,
    /// Expansion of variables for this worker's platform.
    pub variables: crate::variables::WorkerVariables,
    sender: InstructionSender,
    /// SHA-256 of the worker's token once checked against the database on this
    /// connection (see `grpc::auth::authenticate_connected`).
    pub token_hash: Option<String>,
    /// Task id → (lease epoch, slot, job id when known).
    held: HashMap<String, (i64, u32, Option<String>)>,
}

impl ConnectedWorker {
    pub fn new(
        connection: ConnectionId,
        name: String,
        slots: usize,
        task_types: Vec<String>,
        sender: InstructionSender,
    ) -> Self {
        Self {
            connection,
            name,
            slots: slots.max(1),
            task_types,
            variables: crate::variables::WorkerVariables::default(),
            sender,
            token_hash: None,
            held: HashMap::new(),
        }
    }

    pub fn free_slots(&self) -> usize {
        self.slots.saturating_sub(self.held.len())
    }

    /// Records that the worker runs `task_id` (of `job_id`, when known); returns the slot
    /// it occupies.
    pub fn hold(&mut self, task_id: String, epoch: i64, job_id: Option<String>) -> u32 {
        if let Some((_, slot, _)) = self.held.get(&task_id) {
            let slot = *slot;
            self.held.insert(task_id, (epoch, slot, job_id));
            return slot;
        }
        let used: Vec<u32> = self.held.values().map(|(_, s, _)| *s).collect();
        let slot = (0u32..).find(|s| !used.contains(s)).unwrap_or(0);
        self.held.insert(task_id, (epoch, slot, job_id));
        slot
    }

    /// The job of `task_id` when the worker holds it under lease `epoch` and the job is known.
    pub fn held_job(&self, task_id: &str, epoch: i64) -> Option<&str> {
        match self.held.get(task_id) {
            Some((held, _, job)) if *held == epoch => job.as_deref(),
            _ => None,
        }
    }

    pub fn release(&mut self, task_id: &str) {
        self.held.remove(task_id);
    }

    pub fn send(&self, kind: Kind) -> Result<(), ()> {
        self.sender
            .send(Ok(Instruction { kind: Some(kind) }))
            .map_err(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_lowest_first() {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let mut w = ConnectedWorker::new(ConnectionId(1), "w".into(), 3, vec![], tx);
        assert_eq!(w.hold("a".into(), 1, None), 0);
        assert_eq!(w.hold("b".into(), 1, None), 1);
        assert_eq!(w.hold("c".into(), 1, None), 2);
        assert_eq!(w.free_slots(), 0);
        w.release("b");
        assert_eq!(w.free_slots(), 1);
        assert_eq!(w.hold("d".into(), 1, None), 1);
    }
}
