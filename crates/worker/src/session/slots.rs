//! Which of the worker's slots each running task occupies. The manager names a slot in the
//! assignment, but only this worker knows when a task's processes are really gone, so a
//! slot counts as busy until its runner has ended; a task whose named slot is still busy
//! gets the lowest free one. That keeps two tasks off one pinned GPU.

use std::sync::{Arc, Mutex, PoisonError};

/// The slots and whether each is occupied.
#[derive(Clone)]
pub struct SlotPool {
    busy: Arc<Mutex<Vec<bool>>>,
}

/// Holds a slot until dropped.
pub struct SlotGuard {
    pool: SlotPool,
    slot: u32,
    /// False when every slot was busy and this one is shared (never freed by this guard).
    owned: bool,
}

impl SlotPool {
    pub fn new(slots: u32) -> Self {
        Self {
            busy: Arc::new(Mutex::new(vec![false; slots.max(1) as usize])),
        }
    }

    /// Takes `preferred` if it is free, else the lowest free slot. When all are busy (a
    /// finished task still cleaning up), `preferred` (or slot 0) is shared.
    pub fn acquire(&self, preferred: u32) -> SlotGuard {
        let mut busy = self.lock();
        let free = |i: usize| busy.get(i).is_some_and(|b| !b);
        let chosen = if free(preferred as usize) {
            Some(preferred as usize)
        } else {
            (0..busy.len()).find(|&i| free(i))
        };
        match chosen {
            Some(slot) => {
                busy[slot] = true;
                SlotGuard {
                    pool: self.clone(),
                    slot: slot as u32,
                    owned: true,
                }
            }
            None => SlotGuard {
                pool: self.clone(),
                slot: if (preferred as usize) < busy.len() {
                    preferred
                } else {
                    0
                },
                owned: false,
            },
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<bool>> {
        self.busy.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SlotGuard {
    pub fn slot(&self) -> u32 {
        self.slot
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if self.owned
            && let Some(busy) = self.pool.lock().get_mut(self.slot as usize)
        {
            *busy = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_named_slot_is_used_when_free_else_the_lowest_free_one() {
        let pool = SlotPool::new(3);
        let a = pool.acquire(1);
        assert_eq!(a.slot(), 1);
        let b = pool.acquire(1);
        assert_eq!(b.slot(), 0);
        let c = pool.acquire(7);
        assert_eq!(c.slot(), 2);
        // All busy: shared, and dropping the sharer frees nothing.
        let shared = pool.acquire(2);
        assert_eq!(shared.slot(), 2);
        drop(shared);
        assert_eq!(
            pool.acquire(9).slot(),
            0,
            "still all busy: slot 0 is shared"
        );
        drop(b);
        assert_eq!(pool.acquire(2).slot(), 0);
        drop((a, c));
    }
}
