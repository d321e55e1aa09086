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
        assert!(node > 0, "node ids start at 1");
        let round = seen.round.checked_add(1).expect("ballot round overflow");
        let next = Ballot { round, node };
        assert!(next > seen);
        next
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

/// The kinds of value a key may hold, as TYPE names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ValueKind {
    String,
    Hash,
    Set,
    SortedSet,

    List,
}

impl ValueKind {
    pub fn name(self) -> &'static str {
        match self {
            ValueKind::String => "string",
            ValueKind::Hash => "hash",
            ValueKind::Set => "set",
            ValueKind::SortedSet => "zset",

            ValueKind::List => "list",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_is_more_than_half_for_every_cluster_size() {
        let table = [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 4), (7, 4)];
        for (size, expected) in table {
            assert_eq!(majority(size), expected, "cluster of {size}");
            // Any two majorities intersect: their sizes add up to more than the cluster.
            assert!(2 * majority(size) > size, "cluster of {size}");
            // A majority survives the loss of a minority.
            assert!(size - (size - 1) / 2 >= majority(size), "cluster of {size}");
        }
    }

    #[test]
    #[should_panic(expected = "at least one replica")]
    fn majority_of_an_empty_cluster_is_refused() {
        majority(0);
    }

    #[test]
    fn ballots_order_by_round_then_node() {
        let b = |round, node| Ballot { round, node };
        let ascending = [b(0, 0), b(0, 3), b(1, 1), b(1, 2), b(2, 1), b(10, 1)];
        for pair in ascending.windows(2) {
            assert!(pair[0] < pair[1], "{} < {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn next_ballot_is_above_what_was_seen_and_owned_by_the_caller() {
        let b = |round, node| Ballot { round, node };
        let table = [
            (Ballot::ZERO, 1, b(1, 1)),
            (b(1, 3), 2, b(2, 2)),
            (b(7, 1), 1, b(8, 1)),
            (b(7, 5), 1, b(8, 1)),
        ];
        for (seen, node, expected) in table {
            let next = Ballot::next_above(seen, node);
            assert_eq!(next, expected);
            assert!(next > seen);
            assert_eq!(next.node, node);
        }
    }

    #[test]
    fn two_proposers_never_share_a_ballot() {
        let seen = Ballot { round: 4, node: 2 };
        assert_ne!(Ballot::next_above(seen, 1), Ballot::next_above(seen, 3));
    }
}
