//! An in-memory disk with explicit sync: writes are volatile until a sync covers them.

use std::collections::VecDeque;

use keyspace_core::{DurableState, StorageWrite};

/// Writes a replica emitted, split into what is durable and what is not yet.
#[derive(Debug, Default)]
pub struct Disk {
    /// Everything durable, already replayed: what a restart recovers.
    durable: DurableState,
    /// Emitted but not synced, by token, in order.
    unsynced: VecDeque<(u64, Vec<StorageWrite>)>,
    /// Whether a sync is running.
    pub syncing: bool,
    /// Durable writes so far (for statistics).
    pub writes_durable: u64,
}

impl Disk {
    pub fn write(&mut self, token: u64, writes: Vec<StorageWrite>) {
        assert!(
            self.unsynced.back().is_none_or(|(t, _)| *t < token),
            "tokens increase"
        );
        self.unsynced.push_back((token, writes));
    }

    /// The newest token waiting for a sync.
    pub fn newest_unsynced(&self) -> Option<u64> {
        self.unsynced.back().map(|(t, _)| *t)
    }

    /// A sync covering `token` finished: everything up to it is durable.
    pub fn synced(&mut self, token: u64) {
        while let Some((t, _)) = self.unsynced.front() {
            if *t > token {
                break;
            }
            let (_, writes) = self.unsynced.pop_front().expect("front exists");
            self.make_durable(&writes);
        }
    }

    /// The process died: the first `keep` unsynced writes reached the disk anyway, the rest is
    /// lost.
    pub fn crash(&mut self, keep: usize) {
        let batches: Vec<_> = self.unsynced.drain(..).collect();
        for (_, writes) in batches.into_iter().take(keep) {
            self.make_durable(&writes);
        }
        self.syncing = false;
    }

    pub fn unsynced_len(&self) -> usize {
        self.unsynced.len()
    }

    pub fn durable(&self) -> &DurableState {
        &self.durable
    }

    fn make_durable(&mut self, writes: &[StorageWrite]) {
        for write in writes {
            self.durable.apply(write);
            self.writes_durable += 1;
        }
    }
}
