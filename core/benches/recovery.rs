//! How long a replica takes to be ready from its own storage: 1,000,000 keys of 100-byte values
//! in a snapshot, read back from its frames, verified, decoded and handed to `Replica::new`.
//! (The node adds reading the file; `cat` of a file this size takes a fraction of this.)
//!
//! Run: `cargo bench -p keyspace-core --bench recovery [-- KEYS]`

// A benchmark reads the wall clock; the purity rules bind the library, not its benchmarks.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::time::Instant;

use keyspace_core::command::{ClientRequest, Command};
use keyspace_core::kv::{StateMachine, StateMachineConfig};
use keyspace_core::snapshot::SnapshotImage;
use keyspace_core::{Ballot, DurableState, Replica, ReplicaConfig};

fn main() {
    let keys: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mut state = StateMachine::new(StateMachineConfig::default());
    let batch = 1_000u64;
    for first in (0..keys).step_by(batch as usize) {
        let requests: Vec<ClientRequest> = (first..(first + batch).min(keys))
            .map(|i| ClientRequest {
                client_id: 1 + i / 64,
                seq: 1 + i % 64,
                command: Command::Set {
                    key: format!("key:{i:012}").into_bytes(),
                    value: vec![b'v'; 100],
                },
            })
            .collect();
        state.apply_batch(1 + first / batch, &requests);
    }
    let image = SnapshotImage::capture(&state, 0, Ballot::ZERO);
    let mut file = Vec::new();
    image.encode_frames(&mut file);
    drop(image);
    println!(
        "{keys} keys, snapshot file {:.1} MB",
        file.len() as f64 / 1e6
    );
    let mut best = f64::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        let image = SnapshotImage::decode_frames(&file).expect("snapshot decodes");
        let durable = DurableState {
            snapshot: Some(image.into()),
            ..DurableState::default()
        };
        let replica = Replica::new(ReplicaConfig::new(1, vec![1, 2, 3]), durable, 0, 1);
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(replica.state_machine().len() as u64, keys);
        best = best.min(secs);
        drop(replica);
    }
    println!(
        "ready from storage in {best:.3} s (best of 3: frames verified, state decoded and checked)"
    );
}
