//! Small shared types: node ids, log slots, ballots, time.

use serde::{Deserialize, Serialize};

/// A replica's id, 1-based, unique in the cluster.
pub type NodeId = u16;
/// A position in the replicated log, 1-based (slot 0 is "nothing").
pub type Slot = u64;
/// A reading of a replica's local monotonic clock, in nanoseconds. Replicas' clocks are not
/// synchronized: values from different replicas are never compared.
pub type Nanos = u64;

pub const NANOS_PER_MILLI: Nanos = 1_000_000;

/// A Paxos ballot: totally ordered by `(round, node)`, so two proposers never share one.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Ballot {
    pub round: u64,
    pub node: NodeId,
}

impl Ballot {
    pub const ZERO: Ballot = Ballot { round: 0, node: 0 };

    /// The smallest ballot owned by `node` that is above `seen`.
    pub fn next_above(seen: Ballot, node: NodeId) -> Ballot {
        let round = seen.round.checked_add(1).expect("ballot round overflow");
        Ballot { round, node }
    }
}

impl std::fmt::Display for Ballot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.round, self.node)
    }
}

/// Number of replicas that form a majority of `cluster_size`.
pub fn majority(cluster_size: usize) -> usize {
    assert!(cluster_size > 0, "a cluster has at least one replica");
    cluster_size / 2 + 1
}
