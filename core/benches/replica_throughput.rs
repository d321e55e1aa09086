//! How many client commands per second the protocol core itself sustains: three replicas in one
//! thread, a perfect network and instant disks, so the figure is the core's own CPU cost per
//! command (the ceiling for the node, which adds syscalls, fsync and RESP on top).
//!
//! Run: `cargo bench -p keyspace-core --bench replica_throughput`

// A benchmark reads the wall clock; the purity rules bind the library, not its benchmarks.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::collections::VecDeque;
use std::time::Instant;

use keyspace_core::command::{ClientRequest, Command, Outcome};
use keyspace_core::{drive, DurableState, Message, NodeId, Output, Replica, ReplicaConfig, Role};

const MS: u64 = 1_000_000;

struct Bench {
    now_ns: u64,
    replicas: Vec<Replica>,
    network: VecDeque<(NodeId, NodeId, Message)>,
    tokens: Vec<Option<u64>>,
    done: u64,
    /// Outputs being carried out (kept to reuse its allocation).
    outputs: Vec<Output>,
}

impl Bench {
    fn new() -> Self {
        let nodes: Vec<NodeId> = vec![1, 2, 3];
        let replicas = nodes
            .iter()
            .map(|id| {
                let config = ReplicaConfig::new(*id, nodes.clone());
                Replica::new(config, DurableState::default(), 0, *id as u64)
            })
            .collect();
        Self {
            now_ns: 0,
            replicas,
            network: VecDeque::new(),
            tokens: vec![None; 3],
            done: 0,
            outputs: Vec::new(),
        }
    }

    fn drain(&mut self, i: usize) {
        let from = self.replicas[i].node_id();
        drive::drain(&mut self.replicas[i], &mut self.outputs);
        for output in self.outputs.drain(..) {
            match output {
                Output::Send { to, msg } => self.network.push_back((from, to, msg)),
                Output::Persist { token, .. } => self.tokens[i] = Some(token),
                Output::Reply(r) => {
                    if matches!(r.outcome, Outcome::Done(_)) {
                        self.done += 1;
                    }
                }
            }
        }
    }

    /// One "group commit" round: every replica's writes become durable, then the network drains.
    fn round(&mut self) {
        for i in 0..3 {
            if self.replicas[i]
                .poll_timeout()
                .is_some_and(|t| t <= self.now_ns)
            {
                self.replicas[i].handle_timeout(self.now_ns);
            }
            self.drain(i);
        }
        loop {
            for i in 0..3 {
                if let Some(token) = self.tokens[i].take() {
                    self.replicas[i].handle_persisted(self.now_ns, token);
                    self.drain(i);
                }
            }
            let Some((from, to, msg)) = self.network.pop_front() else {
                if self.tokens.iter().all(Option::is_none) {
                    break;
                }
                continue;
            };
            let i = (to - 1) as usize;
            self.replicas[i].handle_message(self.now_ns, from, msg);
            self.drain(i);
        }
    }

    fn master(&self) -> usize {
        (0..3)
            .find(|i| self.replicas[*i].role(self.now_ns) == Role::Master)
            .expect("a master")
    }
}

fn main() {
    let mut bench = Bench::new();
    while (0..3).all(|i| bench.replicas[i].role(bench.now_ns) != Role::Master) {
        bench.round();
        bench.now_ns += MS;
    }
    let master = bench.master();
    for (label, batch, write) in [("SET", 64u64, true), ("SET", 1, true), ("GET", 64, false)] {
        let commands = 200_000u64;
        bench.done = 0;
        let start = Instant::now();
        let mut seq = 0u64;
        while seq < commands {
            for client in 0..batch {
                seq += 1;
                let key = format!("key{}", seq % 10_000).into_bytes();
                let command = if write {
                    Command::Set {
                        key,
                        value: vec![b'x'; 100],
                    }
                } else {
                    Command::Get { key }
                };
                let request = ClientRequest {
                    client_id: client + 1,
                    seq: seq + 1_000_000 * u64::from(!write),
                    command,
                };
                bench.replicas[master].handle_request(bench.now_ns, request);
            }
            bench.drain(master);
            bench.round();
            bench.now_ns += 10_000; // 10 µs of simulated time per round keeps the lease alive
        }
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(bench.done, commands, "every command answered");
        println!(
            "{label:>3} with {batch:>2} commands per round: {:>9.0} commands/s ({:.2} µs each)",
            commands as f64 / secs,
            secs * 1e6 / commands as f64
        );
    }
}
