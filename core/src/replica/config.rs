//! What tunes a replica: identical on every replica of a cluster but for `node_id`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::learner::STATE_HASHES_KEPT_MAX;
use crate::kv::StateMachineConfig;
use crate::lease::LeaseConfig;
use crate::mutant::Mutant;
use crate::types::{Nanos, NodeId, NANOS_PER_MILLI};

/// Everything that tunes a replica. Identical on every replica but for `node_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaConfig {
    pub node_id: NodeId,
    /// The group's founding voters (its configuration of epoch 0). Later configurations come
    /// from the log and from snapshots; a replica that joins later is not among these.
    pub nodes: Vec<NodeId>,
    pub lease: LeaseConfig,
    /// How often unanswered prepares and accepts are sent again.
    pub retransmit_interval_ns: Nanos,
    /// How often the master tells followers what is chosen when nothing else does.
    pub heartbeat_interval_ns: Nanos,
    /// How long one lease attempt may take before it is abandoned.
    pub lease_attempt_timeout_ns: Nanos,
    /// Upper bound of the random wait before a lease attempt (spreads out contenders).
    pub lease_backoff_max_ns: Nanos,
    /// Most log slots in phase 2 at once.
    pub window_max: usize,
    /// Most client commands in one log entry.
    pub batch_commands_max: usize,
    /// Most bytes of keys and values in one log entry (one command larger than this still
    /// travels alone); keeps every entry far below the frame size limit.
    pub batch_bytes_max: usize,
    /// Most client requests waiting for a slot in the window.
    pub pending_requests_max: usize,
    /// A snapshot is taken once this many slots were applied since the last one.
    pub snapshot_interval_slots: u64,
    /// Chosen entries kept below the snapshot point, so a replica that lags a little catches up
    /// from the log instead of by snapshot transfer.
    pub log_retain_slots: u64,
    /// The master logs a checkpoint of its state hash once this many slots were applied since
    /// the last one; every replica compares (Paxos Made Live's consistency check).
    pub checkpoint_interval_slots: u64,
    pub state_machine: StateMachineConfig,
    /// A learner is promoted only while it is at most this many slots behind the master.
    #[serde(default = "default_promote_lag_max_slots")]
    pub promote_lag_max_slots: u64,
    /// A member counts as connected while the master heard from it within this long.
    #[serde(default = "default_member_heard_window_ns")]
    pub member_heard_window_ns: Nanos,
    /// Every member of this group is starting for the first time (etcd's
    /// `--initial-cluster-state new`): a replica with empty storage then skips the restart
    /// quiet period, since it has granted no lease. Empty storage alone cannot tell "brand new"
    /// from "wiped after granting", so only the operator can say this.
    #[serde(default)]
    pub new_cluster: bool,
    /// This replica is a witness: it keeps the log and votes once promoted, but applies no
    /// command to a store, never leads and serves no reads. Only a replica that joins later
    /// can be one (its `MEMBER ADD … WITNESS` must agree, which the replica asserts).
    #[serde(default)]
    pub witness: bool,
    /// A deliberately wrong protocol variant; only with the `mutants` feature.
    pub mutant: Option<Mutant>,
}

impl ReplicaConfig {
    /// Production defaults for replica `node_id` of `nodes`.
    pub fn new(node_id: NodeId, nodes: Vec<NodeId>) -> Self {
        Self {
            node_id,
            nodes,
            lease: LeaseConfig {
                lease_duration_ns: 2_000 * NANOS_PER_MILLI,
                drift_rate_max_ppm: 10_000,
            },
            retransmit_interval_ns: 50 * NANOS_PER_MILLI,
            heartbeat_interval_ns: 100 * NANOS_PER_MILLI,
            lease_attempt_timeout_ns: 200 * NANOS_PER_MILLI,
            lease_backoff_max_ns: 300 * NANOS_PER_MILLI,
            window_max: 32,
            batch_commands_max: 1024,
            batch_bytes_max: 8 * 1024 * 1024,
            pending_requests_max: 16 * 1024,
            snapshot_interval_slots: 10_000,
            log_retain_slots: 1_000,
            checkpoint_interval_slots: 1_000,
            state_machine: StateMachineConfig::default(),
            promote_lag_max_slots: default_promote_lag_max_slots(),
            member_heard_window_ns: default_member_heard_window_ns(),
            new_cluster: false,
            witness: false,
            mutant: None,
        }
    }

    /// Panics on a configuration the protocol cannot run safely with.
    pub fn validate(&self) {
        assert!(
            !self.nodes.is_empty(),
            "a cluster needs at least one replica"
        );
        assert!(self.node_id > 0, "node ids start at 1");
        let unique: BTreeSet<_> = self.nodes.iter().collect();
        assert_eq!(unique.len(), self.nodes.len(), "node ids must be unique");
        assert!(!self.nodes.contains(&0), "node ids start at 1");
        let holder_ns = self.lease.holder_duration_ns();
        assert!(
            holder_ns > 2 * self.lease_attempt_timeout_ns,
            "lease too short to extend"
        );
        assert!(self.window_max > 0 && self.batch_commands_max > 0);
        assert!(
            self.batch_commands_max <= crate::kv::ENTRY_REQUESTS_MAX,
            "batch_commands_max is above {}",
            crate::kv::ENTRY_REQUESTS_MAX
        );
        assert!(
            self.batch_bytes_max >= crate::command::REQUEST_MAX_BYTES,
            "a batch must fit the largest request"
        );
        assert!(self.pending_requests_max > 0);
        assert!(
            self.snapshot_interval_slots > 0,
            "snapshot interval must be positive"
        );
        assert!(
            self.checkpoint_interval_slots > 0,
            "checkpoint interval must be positive"
        );
        assert!(
            self.window_max < STATE_HASHES_KEPT_MAX,
            "checkpoints must stay checkable"
        );
        assert!(self.retransmit_interval_ns > 0 && self.heartbeat_interval_ns > 0);
        assert!(
            self.member_heard_window_ns > self.heartbeat_interval_ns,
            "a member must be heard from at least once per window"
        );
        assert!(
            !(self.witness && self.nodes.contains(&self.node_id)),
            "a founding member keeps the state: a witness joins later"
        );
        assert!(
            self.mutant.is_none() || Mutant::ENABLED,
            "mutants need the `mutants` feature"
        );
    }

    /// This replica's place among the founding members (0-based), which staggers its
    /// snapshots; a replica that joined later takes a place by its id.
    pub(super) fn place(&self) -> usize {
        self.nodes
            .iter()
            .position(|&n| n == self.node_id)
            .unwrap_or(self.node_id as usize % self.nodes.len())
    }
}

fn default_promote_lag_max_slots() -> u64 {
    1_000
}

fn default_member_heard_window_ns() -> Nanos {
    1_000 * NANOS_PER_MILLI
}
