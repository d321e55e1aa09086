//! An in-memory disk with explicit sync and storage faults.
//!
//! Writes are volatile until a sync covers them. Durable writes are records of a log, each one
//! `codec` frame (`FrameKind::LogRecord`) holding a `StorageWrite`. Faults act on the bytes: a
//! crash may keep a prefix of the unsynced records and tear the next one (a torn tail); at rest
//! a bit flips, a write lands inside another record (misdirected), or a record cannot be read.
//! A restart loads the log the way a real shell would: frame by frame, verifying each one.
//!
//! For speed a record's bytes are materialised only when a fault touches it: an untouched
//! record's bytes are exactly what `codec::encode` produced (and verified by decoding) from the
//! write it keeps, so replaying that write is what decoding the bytes would give. Touched
//! records are really decoded at load.

use std::collections::VecDeque;

use keyspace_core::codec::{self, FrameKind, HEADER_BYTES};
use keyspace_core::{DurableState, StorageWrite};

/// What a fault did to a durable record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageFault {
    /// One bit flipped at rest.
    BitFlip,
    /// Another record's bytes landed inside this one; that record's place kept zeros.
    Misdirected,
    /// The sectors holding this record return a read error.
    ReadError,
}

#[derive(Debug)]
struct Record {
    /// What the replica wrote.
    write: StorageWrite,
    /// The frame as stored, once a fault touched it (empty while untouched).
    bytes: Vec<u8>,
    touched: bool,
    unreadable: bool,
}

impl Record {
    fn new(write: StorageWrite) -> Record {
        Record {
            write,
            bytes: Vec::new(),
            touched: false,
            unreadable: false,
        }
    }

    fn intact(&self) -> bool {
        !self.touched && !self.unreadable
    }

    /// The stored frame, materialised on first use.
    fn bytes_mut(&mut self) -> &mut Vec<u8> {
        if !self.touched {
            self.bytes.clear();
            codec::encode(FrameKind::LogRecord, &self.write, &mut self.bytes);
            self.touched = true;
        }
        &mut self.bytes
    }
}

/// What reading one record gave.
enum Read {
    Write(StorageWrite),
    /// A frame cut short: only acceptable as the last record (a torn tail).
    Truncated,
    /// Failed verification or could not be read.
    Bad,
}

/// Writes a replica emitted, split into what is durable and what is not yet.
#[derive(Debug, Default)]
pub struct Disk {
    /// The durable log, oldest first.
    records: Vec<Record>,
    /// Records a fault touched (so a load must really decode).
    touched: usize,
    /// What the replica wrote and synced, from the state it last loaded on: what a load would
    /// give without at-rest faults. The persist-before-send check reads it.
    view: DurableState,
    /// Emitted but not synced, by token, in order.
    unsynced: VecDeque<(u64, Vec<StorageWrite>)>,
    /// Whether a sync is running.
    pub syncing: bool,
    /// Durable writes so far (for statistics).
    pub writes_durable: u64,
    /// Loads that found damage (not counting torn tails).
    pub loads_damaged: u64,
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
            for write in writes {
                self.make_durable(write);
            }
        }
    }

    /// The process died: the first `keep` unsynced records reached the disk anyway, and of the
    /// next one the first `torn_bytes` bytes (0: none). The rest is lost.
    pub fn crash(&mut self, keep: usize, torn_bytes: usize) {
        let batches: Vec<_> = self.unsynced.drain(..).collect();
        let mut writes = batches.into_iter().flat_map(|(_, w)| w);
        for write in writes.by_ref().take(keep) {
            self.make_durable(write);
        }
        if let Some(next) = writes.next().filter(|_| torn_bytes > 0) {
            let mut record = Record::new(next);
            let bytes = record.bytes_mut();
            bytes.truncate(torn_bytes.min(bytes.len() - 1));
            self.records.push(record);
            self.touched += 1;
        }
        self.syncing = false;
    }

    /// Unsynced records (not batches) waiting.
    pub fn unsynced_records(&self) -> usize {
        self.unsynced.iter().map(|(_, w)| w.len()).sum()
    }

    /// The encoded size of the first unsynced record, if any (for tearing it).
    pub fn unsynced_record_bytes(&self, index: usize) -> Option<usize> {
        let write = self.unsynced.iter().flat_map(|(_, w)| w).nth(index)?;
        let mut bytes = Vec::new();
        codec::encode(FrameKind::LogRecord, write, &mut bytes);
        Some(bytes.len())
    }

    pub fn durable(&self) -> &DurableState {
        &self.view
    }

    pub fn durable_records(&self) -> usize {
        self.records.len()
    }

    fn make_durable(&mut self, write: StorageWrite) {
        self.view.apply(&write);
        self.writes_durable += 1;
        let compact = match &write {
            StorageWrite::Compact { through_slot } => Some(*through_slot),
            _ => None,
        };
        self.records.push(Record::new(write));
        if let Some(through) = compact {
            self.collect(through);
        }
    }

    /// Drops records that the newest intact snapshot covering `through` and the records after
    /// it supersede: log entries at or below `through`, older snapshots and compactions, and
    /// promises an intact later promise or accept matches. Replaying what is left gives the
    /// same state, so no write a load would need is lost (a damaged record may go with it: its
    /// place is rewritten).
    fn collect(&mut self, through: u64) {
        let covers = |r: &Record| {
            r.intact()
                && matches!(&r.write, StorageWrite::Snapshot(image) if image.meta.slot >= through)
        };
        let Some(snapshot_at) = self.records.iter().rposition(covers) else {
            return;
        };
        let mut keep = vec![true; self.records.len()];
        let mut later_ballot = None;
        for (i, record) in self.records.iter().enumerate().rev() {
            let superseded = match &record.write {
                StorageWrite::Promise { ballot } => later_ballot.is_some_and(|b| b >= *ballot),
                StorageWrite::Accept { slot, .. }
                | StorageWrite::Learn { slot, .. }
                | StorageWrite::Chosen { slot, .. } => i < snapshot_at && *slot <= through,
                StorageWrite::Snapshot(_) | StorageWrite::Compact { .. } => i < snapshot_at,
            };
            keep[i] = !superseded;
            if let (true, StorageWrite::Promise { ballot } | StorageWrite::Accept { ballot, .. }) =
                (record.intact(), &record.write)
            {
                later_ballot = later_ballot.max(Some(*ballot));
            }
        }
        let mut index = 0;
        self.records.retain(|_| {
            index += 1;
            keep[index - 1]
        });
        self.touched = self.records.iter().filter(|r| !r.intact()).count();
    }

    /// A fault at rest hits durable record `index`; `pick` draws positions. Returns false when
    /// there is no such record.
    pub fn corrupt(
        &mut self,
        fault: StorageFault,
        index: usize,
        mut pick: impl FnMut(usize) -> usize,
    ) -> bool {
        if index >= self.records.len() {
            return false;
        }
        match fault {
            StorageFault::BitFlip => {
                let bytes = self.records[index].bytes_mut();
                let bit = pick(bytes.len() * 8);
                bytes[bit / 8] ^= 1 << (bit % 8);
            }
            StorageFault::ReadError => self.records[index].unreadable = true,
            StorageFault::Misdirected => {
                // The write of record `index` landed inside another record, never on a frame
                // boundary (frames carry no address, so an aligned one would go unnoticed);
                // its own place kept zeros.
                let others = self.records.len() - 1;
                if others == 0 {
                    return false;
                }
                let mut victim = pick(others);
                victim += (victim >= index) as usize;
                let source = std::mem::take(self.records[index].bytes_mut());
                let target = self.records[victim].bytes_mut();
                let at = 1 + pick(target.len() - 1);
                let n = (target.len() - at).min(source.len());
                target[at..at + n].copy_from_slice(&source[..n]);
                *self.records[index].bytes_mut() = vec![0; source.len()];
            }
        }
        self.touched = self.records.iter().filter(|r| !r.intact()).count();
        true
    }

    /// What a restart recovers: the durable log read frame by frame. A torn final frame is
    /// truncated (it was never acknowledged); any other record that fails is skipped and the
    /// state marked damaged. With `verify` false the loader trusts the body without checking
    /// the checksum (the `skip-read-verify` mutant).
    pub fn load(&mut self, verify: bool) -> DurableState {
        if self.touched == 0 {
            let mut state = self.view.clone();
            state.damaged = false;
            return state;
        }
        let mut state = DurableState::default();
        let last = self.records.len() - 1;
        let mut torn = false;
        for (i, record) in self.records.iter().enumerate() {
            let read = if record.intact() {
                state.apply(&record.write);
                continue;
            } else {
                read_record(record, verify)
            };
            match read {
                Read::Write(write) => state.apply(&write),
                Read::Truncated if i == last => torn = true,
                Read::Truncated | Read::Bad => state.damaged = true,
            }
        }
        if torn {
            self.records.pop();
        }
        self.touched = self.records.iter().filter(|r| !r.intact()).count();
        self.loads_damaged += state.damaged as u64;
        self.view = state.clone();
        self.view.damaged = false;
        state
    }
}

fn read_record(record: &Record, verify: bool) -> Read {
    if record.unreadable {
        return Read::Bad;
    }
    let bytes = &record.bytes;
    if verify {
        return match codec::decode::<StorageWrite>(FrameKind::LogRecord, bytes) {
            Ok((write, _)) => Read::Write(write),
            Err(e) if e.is_truncated() => Read::Truncated,
            Err(_) => Read::Bad,
        };
    }
    // Wrong on purpose: the header is checked for framing, the body is trusted unverified.
    match codec::frame_len(FrameKind::LogRecord, bytes) {
        Ok(len) => match postcard::from_bytes(&bytes[HEADER_BYTES..HEADER_BYTES + len]) {
            Ok(write) => Read::Write(write),
            Err(_) => Read::Bad,
        },
        Err(e) if e.is_truncated() => Read::Truncated,
        Err(_) => Read::Bad,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyspace_core::Ballot;

    fn promise(round: u64) -> StorageWrite {
        StorageWrite::Promise {
            ballot: Ballot { round, node: 1 },
        }
    }

    fn disk_with(writes: &[StorageWrite]) -> Disk {
        let mut disk = Disk::default();
        for (token, write) in writes.iter().enumerate() {
            disk.write(token as u64 + 1, vec![write.clone()]);
        }
        disk.synced(writes.len() as u64);
        disk
    }

    #[test]
    fn a_torn_tail_is_truncated_not_damage() {
        let mut disk = disk_with(&[promise(1)]);
        disk.write(9, vec![promise(2)]);
        disk.crash(0, 5);
        let state = disk.load(true);
        assert!(!state.damaged);
        assert_eq!(state.promised.round, 1);
        assert_eq!(disk.durable_records(), 1);
    }

    #[test]
    fn a_bit_flip_in_the_middle_is_damage() {
        let mut disk = disk_with(&[promise(1), promise(2), promise(3)]);
        assert!(disk.corrupt(StorageFault::BitFlip, 1, |n| n / 2));
        let state = disk.load(true);
        assert!(state.damaged);
        assert_eq!(state.promised.round, 3);
    }

    #[test]
    fn a_misdirected_write_damages_both_places() {
        let mut disk = disk_with(&[promise(1), promise(2), promise(3)]);
        // Record 3's bytes land inside record 2; record 3's place keeps zeros.
        assert!(disk.corrupt(StorageFault::Misdirected, 2, |n| n / 2));
        let state = disk.load(true);
        assert!(state.damaged);
        assert_eq!(state.promised.round, 1);
    }

    #[test]
    fn a_read_error_is_damage() {
        let mut disk = disk_with(&[promise(1), promise(2)]);
        assert!(disk.corrupt(StorageFault::ReadError, 1, |_| 0));
        let state = disk.load(true);
        assert!(state.damaged);
        assert_eq!(state.promised.round, 1);
    }

    #[test]
    fn unsynced_writes_are_lost_on_a_crash() {
        let mut disk = disk_with(&[promise(1)]);
        disk.write(5, vec![promise(2), promise(3)]);
        disk.crash(1, 0);
        let state = disk.load(true);
        assert!(!state.damaged);
        assert_eq!(state.promised.round, 2);
    }
}
