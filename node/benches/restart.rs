//! How long a replica takes to restart from its own disk: `storage::open` reads every segment
//! file, verifies and replays it, then `Replica::new` restores the snapshot and applies the log
//! after it. The data directory is written with the node's own log (`FileLog`): a snapshot of
//! 1,000,000 keys of 100-byte values, then 1,000 slots of MSET-sized entries (100 pairs each)
//! accepted and chosen after it.
//!
//! Warm runs read the segments from the page cache. Cold runs first ask the kernel to drop the
//! segments' cached pages (`posix_fadvise(POSIX_FADV_DONTNEED)`; they are clean after the
//! sync), so every byte comes from the disk.
//!
//! Run: `cargo bench -p keyspace-node --bench restart [-- KEYS [LOG_SLOTS [RUNS]]]`

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use keyspace_core::command::{ClientRequest, Command};
use keyspace_core::kv::{StateMachine, StateMachineConfig};
use keyspace_core::snapshot::SnapshotImage;
use keyspace_core::{Ballot, LogValue, Replica, ReplicaConfig, Slot, StorageWrite};
use keyspace_node::storage::{self, StorageLimits};

/// Keys are written to the state in batches of this many, one slot each.
const FILL_BATCH_KEYS: u64 = 1_000;
/// Pairs in one MSET entry of the log after the snapshot.
const MSET_PAIRS: u64 = 100;
/// Log slots made durable by one write and sync while building the directory.
const SLOTS_PER_SYNC: u64 = 100;
const VALUE_BYTES: usize = 100;
/// Most runs of each kind, whatever the command line asks.
const RUNS_MAX: usize = 20;

fn key(i: u64) -> Vec<u8> {
    format!("key:{i:012}").into_bytes()
}

/// A state machine holding `keys` keys, written by SETs in batches.
fn filled_state(keys: u64) -> StateMachine {
    let mut state = StateMachine::new(StateMachineConfig::default());
    for first in (0..keys).step_by(FILL_BATCH_KEYS as usize) {
        let requests: Vec<ClientRequest> = (first..(first + FILL_BATCH_KEYS).min(keys))
            .map(|i| ClientRequest {
                client_id: 1 + i / 64,
                seq: 1 + i % 64,
                command: Command::Set {
                    key: key(i),
                    value: vec![b'v'; VALUE_BYTES],
                },
            })
            .collect();
        state.apply_batch(1 + first / FILL_BATCH_KEYS, &requests);
    }
    state
}

/// One MSET of `MSET_PAIRS` existing keys, as the master would log it.
fn mset_entry(slot: Slot, keys: u64) -> LogValue {
    let pairs = (0..MSET_PAIRS)
        .map(|j| (key((slot * MSET_PAIRS + j) % keys), vec![b'w'; VALUE_BYTES]))
        .collect();
    LogValue::Batch(
        vec![ClientRequest {
            client_id: 1_000_000_000,
            seq: slot,
            command: Command::MultiSet { pairs },
        }]
        .into(),
    )
}

/// Writes the data directory: promise, snapshot, compaction mark, then `log_slots` entries
/// accepted and chosen after the snapshot. Returns the snapshot's body length.
fn build_data_dir(dir: &Path, keys: u64, log_slots: u64) -> u64 {
    let state = filled_state(keys);
    let ballot = Ballot { round: 1, node: 1 };
    let image = SnapshotImage::capture(&state, 0, ballot);
    let (snapshot_slot, body_len) = (image.meta.slot, image.meta.body_len);
    drop(state);
    let (mut log, _, _) = storage::open(dir, StorageLimits::default()).expect("empty log opens");
    log.append(&[
        StorageWrite::Promise { ballot },
        StorageWrite::Snapshot(image.into()),
        StorageWrite::Compact {
            through_slot: snapshot_slot,
        },
    ]);
    log.write()
        .and_then(|()| log.sync())
        .expect("snapshot written");
    let slots: Vec<Slot> = (snapshot_slot + 1..=snapshot_slot + log_slots).collect();
    for group in slots.chunks(SLOTS_PER_SYNC as usize) {
        let writes: Vec<StorageWrite> = group
            .iter()
            .flat_map(|&slot| {
                let value = mset_entry(slot, keys);
                [
                    StorageWrite::Accept {
                        slot,
                        ballot,
                        value,
                    },
                    StorageWrite::Chosen { slot, ballot },
                ]
            })
            .collect();
        log.append(&writes);
        log.write().and_then(|()| log.sync()).expect("log written");
    }
    body_len
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("data dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    paths.sort();
    paths
}

/// Drops the cached pages of every segment, so the next read comes from the disk.
fn drop_page_cache(dir: &Path) {
    use std::os::unix::io::AsRawFd;
    for path in segments(dir) {
        let file = File::open(&path).expect("segment opens");
        // Dirty pages are not dropped: write them out first.
        file.sync_all().expect("segment synced");
        // SAFETY: the descriptor is open and owned by `file` for the duration of the call.
        let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(rc, 0, "posix_fadvise on {}", path.display());
    }
}

struct Run {
    open_s: f64,
    replica_s: f64,
}

impl Run {
    fn total_s(&self) -> f64 {
        self.open_s + self.replica_s
    }
}

fn restart(dir: &Path, keys: u64, log_slots: u64, config: &ReplicaConfig) -> Run {
    let start = Instant::now();
    let (log, durable, _records) =
        storage::open(dir, StorageLimits::default()).expect("log replays");
    let open_s = start.elapsed().as_secs_f64();
    assert_eq!(
        durable.chosen.len() as u64,
        log_slots,
        "every log slot replayed"
    );
    let start = Instant::now();
    let replica = Replica::new(config.clone(), durable, 0, 1);
    let replica_s = start.elapsed().as_secs_f64();
    assert_eq!(replica.applied_through(), replica.chosen_through());
    assert_eq!(replica.state_machine().len() as u64, keys);
    assert!(
        !replica.is_recovering_storage(),
        "a clean directory replays clean"
    );
    drop((log, replica));
    Run { open_s, replica_s }
}

fn best_of(runs: usize, mut one: impl FnMut() -> Run) -> Run {
    let mut best: Option<Run> = None;
    for _ in 0..runs {
        let run = one();
        if best.as_ref().is_none_or(|b| run.total_s() < b.total_s()) {
            best = Some(run);
        }
    }
    best.expect("at least one run")
}

fn report(label: &str, runs: usize, run: &Run) {
    println!(
        "{label:<5} best of {runs}: storage::open {:.3} s + Replica::new {:.3} s = ready in {:.3} s",
        run.open_s,
        run.replica_s,
        run.total_s()
    );
}

fn main() {
    let numbers: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let keys = numbers.first().copied().unwrap_or(1_000_000).max(1);
    let log_slots = numbers.get(1).copied().unwrap_or(1_000);
    let runs = (numbers.get(2).copied().unwrap_or(3) as usize).clamp(1, RUNS_MAX);
    let dir = std::env::temp_dir().join(format!("keyspace-restart-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let body_len = build_data_dir(&dir, keys, log_slots);
    let on_disk: u64 = segments(&dir)
        .iter()
        .map(|p| p.metadata().expect("segment").len())
        .sum();
    println!(
        "{keys} keys of {VALUE_BYTES} bytes: snapshot body {:.1} MB; then {log_slots} log slots \
         of {MSET_PAIRS}-pair MSETs; {} segment file(s), {:.1} MB preallocated",
        body_len as f64 / 1e6,
        segments(&dir).len(),
        on_disk as f64 / 1e6
    );
    let config = ReplicaConfig::new(1, vec![1, 2, 3]);
    let warm = best_of(runs, || restart(&dir, keys, log_slots, &config));
    report("warm", runs, &warm);
    let cold = best_of(runs, || {
        drop_page_cache(&dir);
        restart(&dir, keys, log_slots, &config)
    });
    report("cold", runs, &cold);
    std::fs::remove_dir_all(&dir).expect("data dir removed");
}
