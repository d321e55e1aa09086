//! A replica's storage in the simulator: the node's own log engine (`keyspace-storage`) over a
//! [`MemoryDevice`] that injects the fault atlas. Nothing here interprets bytes; this module
//! only carries the replica's writes to the engine and the sync model's steps to the device.
//!
//! The sync model: `Persist` writes are appended to the engine. When no sync is running the
//! engine writes what was appended to the device (volatile) and a sync starts; when its
//! latency has passed the device sync makes the write durable and then the replica hears
//! `handle_persisted`. A crash in between keeps a sector prefix of the write, or none of it. A
//! restart opens the engine on the device: real replay, real verification.

use std::collections::VecDeque;

use keyspace_core::{DurableState, StorageWrite};
use keyspace_storage::{Log, LogConfig, MemoryDevice, StorageError};

/// What a fault at rest does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageFault {
    /// One bit flips.
    BitFlip,
    /// An earlier write turns out to have landed elsewhere; its own place holds zeros.
    Misdirected,
    /// A sector fails to read from now on.
    ReadError,
}

/// The engine while the replica is up; the device alone while it is down.
enum Mounted {
    Up(Box<Log<MemoryDevice>>),
    Down(MemoryDevice),
}

pub struct NodeStorage {
    mounted: Option<Mounted>,
    config: LogConfig,
    /// Appended to the engine and not yet synced, by token, oldest first.
    pending: VecDeque<(u64, Vec<StorageWrite>)>,
    /// The newest token written to the device so far in this incarnation.
    written_through: u64,
    /// The token the running sync covers.
    in_flight: Option<u64>,
    /// What the replica's synced writes add up to since its log was opened: what the device
    /// holds but for faults at rest. The persist-before-send check reads it.
    view: DurableState,
    /// Syncs finished since the storage was made (each made at least one write durable).
    syncs: u64,
}

impl NodeStorage {
    pub fn new(config: LogConfig) -> NodeStorage {
        NodeStorage {
            mounted: Some(Mounted::Down(MemoryDevice::new())),
            config,
            pending: VecDeque::new(),
            written_through: 0,
            in_flight: None,
            view: DurableState::default(),
            syncs: 0,
        }
    }

    fn log(&mut self) -> &mut Log<MemoryDevice> {
        match &mut self.mounted {
            Some(Mounted::Up(log)) => log,
            _ => panic!("the replica's log is open while it is up"),
        }
    }

    fn device_mut(&mut self) -> &mut MemoryDevice {
        match self.mounted.as_mut().expect("storage is mounted") {
            Mounted::Up(log) => log.device_mut(),
            Mounted::Down(device) => device,
        }
    }

    /// The replica (re)starts: the engine opens the log on the device and replays it.
    pub fn open(&mut self) -> Result<DurableState, StorageError> {
        let device = match self.mounted.take().expect("storage is mounted") {
            Mounted::Down(device) => device,
            Mounted::Up(log) => log.into_device(),
        };
        let (log, state, _records) = Log::open(device, self.config)?;
        self.mounted = Some(Mounted::Up(Box::new(log)));
        self.view = DurableState {
            damaged: false,
            ..state.clone()
        };
        self.written_through = 0;
        Ok(state)
    }

    /// The replica emitted `writes` under `token`.
    pub fn append(&mut self, token: u64, writes: Vec<StorageWrite>) {
        assert!(
            self.pending.back().is_none_or(|(t, _)| *t < token),
            "tokens increase"
        );
        self.log().append(&writes);
        self.pending.push_back((token, writes));
    }

    pub fn syncing(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Writes what was appended since the last write, unless a sync is running or nothing
    /// was: the token the sync to start covers.
    pub fn start_write(&mut self) -> Result<Option<u64>, StorageError> {
        let newest = self.pending.back().map_or(0, |(t, _)| *t);
        if self.syncing() || newest <= self.written_through {
            return Ok(None);
        }
        self.log().write()?;
        self.written_through = newest;
        self.in_flight = Some(newest);
        Ok(Some(newest))
    }

    /// The sync covering `token` finished: what was written is durable.
    pub fn synced(&mut self, token: u64) -> Result<(), StorageError> {
        assert_eq!(
            self.in_flight,
            Some(token),
            "the sync that ends is the one running"
        );
        self.log().sync()?;
        self.in_flight = None;
        self.syncs += 1;
        while self.pending.front().is_some_and(|(t, _)| *t <= token) {
            let (_, writes) = self.pending.pop_front().expect("checked");
            for write in &writes {
                self.view.apply(write);
            }
        }
        Ok(())
    }

    /// How many sectors each write not yet synced touches, oldest first.
    pub fn unsynced_sectors(&mut self) -> Vec<usize> {
        self.device_mut().unsynced_sectors()
    }

    /// The replica died: of its unsynced writes the first `kept_sectors` sectors reached the
    /// medium; what was appended but not written is gone with the process.
    pub fn crash(&mut self, kept_sectors: usize) {
        let mut device = match self.mounted.take().expect("storage is mounted") {
            Mounted::Up(log) => log.into_device(),
            Mounted::Down(device) => device,
        };
        device.crash(kept_sectors);
        self.mounted = Some(Mounted::Down(device));
        self.pending.clear();
        self.in_flight = None;
    }

    /// A fault at rest of `kind`, placed by `pick`. Whether it hit anything.
    pub fn fault(&mut self, kind: StorageFault, pick: &mut dyn FnMut(usize) -> usize) -> bool {
        let device = self.device_mut();
        match kind {
            StorageFault::BitFlip => device.flip_bit(pick),
            StorageFault::Misdirected => device.misdirect(pick),
            StorageFault::ReadError => device.make_unreadable(pick),
        }
    }

    /// Syncs finished so far: a mark to damage what was written after (see
    /// [`NodeStorage::flip_latest`]).
    pub fn syncs(&self) -> u64 {
        self.syncs
    }

    /// A burst of faults at rest: one bit flips in each of the `writes` latest durable writes
    /// (all of them when fewer), the rest of each flip placed by `pick`. How many flipped.
    pub fn flip_latest(&mut self, writes: usize, pick: &mut dyn FnMut(usize) -> usize) -> usize {
        let device = self.device_mut();
        let mut flipped = 0;
        for k in 0..writes {
            let mut first = true;
            let mut nth_latest = |n: usize| match std::mem::take(&mut first) {
                true => n.saturating_sub(1 + k),
                false => pick(n),
            };
            flipped += device.flip_bit(&mut nth_latest) as usize;
        }
        flipped
    }

    /// What the replica's synced writes hold (see `view`).
    pub fn durable(&self) -> &DurableState {
        &self.view
    }
}
