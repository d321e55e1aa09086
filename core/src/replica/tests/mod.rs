//! Replica tests over a tiny lossless in-memory cluster (the simulator covers faults).

use std::collections::VecDeque;

use super::*;
use crate::command::{ClientRequest, ClientResponse, Command, Outcome, Rejection, Reply};
use crate::storage::StorageWrite;
use crate::types::NANOS_PER_MILLI;

mod log;
mod members;
mod recovery;
mod snapshots;
mod start;
mod witness;

const MS: Nanos = NANOS_PER_MILLI;

/// A perfect network and instant disks; every replica shares true time.
struct Cluster {
    now_ns: Nanos,
    replicas: Vec<Replica>,
    disks: Vec<DurableState>,
    network: VecDeque<(NodeId, NodeId, Message)>,
    replies: Vec<ClientResponse>,
    /// Persist tokens emitted but not yet reported durable, per replica.
    unsynced: Vec<Vec<(u64, Vec<StorageWrite>)>>,
    auto_sync: bool,
    /// Messages from or to this replica are dropped.
    isolated: Option<NodeId>,
}

impl Cluster {
    fn new(size: usize) -> Self {
        Self::with_config(size, config)
    }

    fn with_config(size: usize, config: fn(NodeId, &[NodeId]) -> ReplicaConfig) -> Self {
        let nodes: Vec<NodeId> = (1..=size as NodeId).collect();
        let replicas = nodes
            .iter()
            .map(|id| Replica::new(config(*id, &nodes), DurableState::default(), 0, *id as u64))
            .collect();
        Self {
            now_ns: 0,
            replicas,
            disks: vec![DurableState::default(); size],
            network: VecDeque::new(),
            replies: Vec::new(),
            unsynced: vec![Vec::new(); size],
            auto_sync: true,
            isolated: None,
        }
    }

    /// Starts a replica with a new id, not yet a member: it knows the founding voters.
    fn start_joiner(&mut self, config: fn(NodeId, &[NodeId]) -> ReplicaConfig) -> usize {
        let founding: Vec<NodeId> = (1..=3).collect();
        let id = self.replicas.len() as NodeId + 1;
        let replica = Replica::new(
            config(id, &founding),
            DurableState::default(),
            self.now_ns,
            id as u64,
        );
        self.replicas.push(replica);
        self.disks.push(DurableState::default());
        self.unsynced.push(Vec::new());
        self.replicas.len() - 1
    }

    fn drain(&mut self, index: usize) {
        let from = self.replicas[index].node_id();
        let mut outputs = Vec::new();
        crate::drive::drain(&mut self.replicas[index], &mut outputs);
        for output in outputs {
            match output {
                Output::Send { to, msg } => self.network.push_back((from, to, msg)),
                Output::Persist { token, writes } => self.unsynced[index].push((token, writes)),
                Output::Reply(response) => self.replies.push(response),
            }
        }
    }

    fn sync(&mut self, index: usize) {
        let pending = std::mem::take(&mut self.unsynced[index]);
        let Some(last) = pending.last().map(|(t, _)| *t) else {
            return;
        };
        for (_, writes) in &pending {
            writes.iter().for_each(|w| self.disks[index].apply(w));
        }
        self.replicas[index].handle_persisted(self.now_ns, last);
        self.drain(index);
    }

    /// Delivers messages and fires timers until `until_ns`, in 1 ms steps.
    fn run_until(&mut self, until_ns: Nanos) {
        while self.now_ns < until_ns {
            self.step();
            self.now_ns += MS;
        }
    }

    fn step(&mut self) {
        for i in 0..self.replicas.len() {
            if self.replicas[i]
                .poll_timeout()
                .is_some_and(|t| t <= self.now_ns)
            {
                self.replicas[i].handle_timeout(self.now_ns);
            }
            self.drain(i);
        }
        for _ in 0..10_000 {
            if self.auto_sync {
                (0..self.replicas.len()).for_each(|i| self.sync(i));
            }
            let Some((from, to, msg)) = self.network.pop_front() else {
                break;
            };
            if self.isolated.is_some_and(|n| n == from || n == to) {
                continue;
            }
            let index = (to - 1) as usize;
            if index >= self.replicas.len() {
                continue; // a member not started
            }
            self.replicas[index].handle_message(self.now_ns, from, msg);
            self.drain(index);
        }
    }

    fn master(&self) -> Option<usize> {
        let masters: Vec<usize> = (0..self.replicas.len())
            .filter(|i| self.replicas[*i].role(self.now_ns) == Role::Master)
            .collect();
        assert!(masters.len() <= 1, "two masters at once: {masters:?}");
        masters.first().copied()
    }

    fn request(&mut self, index: usize, client_id: u64, seq: u64, command: Command) {
        let request = ClientRequest {
            client_id,
            seq,
            command,
        };
        self.replicas[index].handle_request(self.now_ns, request);
        self.drain(index);
    }

    fn reply_for(&self, client_id: u64, seq: u64) -> Option<&Outcome> {
        self.replies
            .iter()
            .rev()
            .find(|r| r.client_id == client_id && r.seq == seq)
            .map(|r| &r.outcome)
    }
}

fn config(id: NodeId, nodes: &[NodeId]) -> ReplicaConfig {
    let mut c = ReplicaConfig::new(id, nodes.to_vec());
    c.lease.lease_duration_ns = 1_000 * MS;
    c
}

fn set(key: &str, value: &str) -> Command {
    Command::Set {
        key: key.into(),
        value: value.into(),
    }
}

fn get(key: &str) -> Command {
    Command::Get { key: key.into() }
}

/// `count` writes of `value_bytes` each through `master`, one a millisecond, then 300 ms for
/// every replica to learn them.
fn write_many(
    cluster: &mut Cluster,
    master: usize,
    client_id: u64,
    count: u64,
    value_bytes: usize,
) {
    for seq in 1..=count {
        let value = vec![b'a' + (seq % 26) as u8; value_bytes];
        let key = format!("k{}", seq % 40).into_bytes();
        let command = Command::Set { key, value };
        cluster.request(master, client_id, seq, command);
        cluster.run_until(cluster.now_ns + MS);
    }
    cluster.run_until(cluster.now_ns + 300 * MS);
}
