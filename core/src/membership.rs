//! Membership: which replicas form the group, as replicated state.
//!
//! A [`Configuration`] is chosen through the log like any other value: a
//! [`LogValue::Reconfigure`](crate::LogValue::Reconfigure) chosen at slot `i` governs every slot
//! after `i`. Each change alters the set of voters by at most one replica, so any majority of
//! the voters of one configuration meets any majority of the next (see
//! [`voters_differ_by_at_most_one`]); docs/design.md ("Membership change") gives the argument.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::types::{majority, NodeId};

/// Most members a configuration holds: every broadcast walks them, and ids are `u16`.
pub const MEMBERS_MAX: usize = 64;
/// Most removed ids a configuration remembers (ids are never reused).
pub const REMOVED_MAX: usize = 4096;
/// Longest address a member may carry, in bytes.
pub const ADDR_MAX_BYTES: usize = 256;

/// What a member keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MemberKind {
    /// Keeps the log and the key-value state; may lead once it votes.
    Full,
    /// Keeps the log only: votes once promoted (a voting witness: phase 1 and 2 acceptor and
    /// lease acceptor), never leads, serves no reads, holds no key-value state.
    Witness,
}

/// One member of a configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Member {
    /// Where its peers reach it (the node dials this).
    pub peer_addr: String,
    /// Where clients reach it.
    pub client_addr: String,
    pub kind: MemberKind,
    /// Whether it counts in quorums (of the log and of the lease). A non-voting full member is
    /// a learner; a non-voting witness waits to be promoted.
    pub voting: bool,
}

/// One change of membership, as a client asks for it and as the log carries it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Change {
    /// Adds a non-voting member under an id never used before.
    Add {
        id: NodeId,
        peer_addr: String,
        client_addr: String,
        kind: MemberKind,
    },
    /// Makes a non-voting member a voter.
    Promote { id: NodeId },
    /// Removes any member; its id is never used again.
    Remove { id: NodeId },
}

impl Change {
    /// The member the change is about.
    pub fn id(&self) -> NodeId {
        match self {
            Change::Add { id, .. } | Change::Promote { id } | Change::Remove { id } => *id,
        }
    }
}

/// A change as a log slot carries it: `epoch` is the epoch of the configuration it makes, one
/// above the configuration in force at its slot (checked when it is applied).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reconfigure {
    pub epoch: u64,
    pub change: Change,
}

/// Why a change was refused. Every reason says what to do instead.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
pub enum ChangeError {
    #[error("a membership change is in progress; retry once it is done")]
    InProgress,
    #[error("replica {0} is not a member; MEMBER LIST shows the members")]
    UnknownId(NodeId),
    #[error("id {0} is or was in use; ids are never reused, pick a new one")]
    IdReused(NodeId),
    #[error("replica {0} votes already")]
    AlreadyVoter(NodeId),
    #[error("replica {id} is {behind_slots} slots behind (at most {allowed_slots}); promote it once it has caught up")]
    NotCaughtUp {
        id: NodeId,
        behind_slots: u64,
        allowed_slots: u64,
    },
    #[error("a majority of the new configuration's voters is not connected and caught up; start or repair them first")]
    NoReachableMajority,
    #[error("the master cannot remove itself; it hands over now, retry at the next master")]
    MasterRemovesItself,
    #[error("the last voter cannot be removed")]
    LastVoter,
    #[error("the last full voter cannot be removed: a witness never leads; add and promote a full replica first")]
    LastFullVoter,
    #[error("id 0 is not a valid replica id")]
    ZeroId,
    #[error("an address is longer than {ADDR_MAX_BYTES} bytes")]
    AddressTooLong,
    #[error("a configuration holds at most {MEMBERS_MAX} members; remove one first")]
    TooManyMembers,
}

/// What the master last heard from a member (for `MEMBER LIST` and for the catch-up rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemberProgress {
    /// The master's local time when it last heard from the member.
    pub heard_ns: crate::types::Nanos,
    /// How far the member had learned the log then.
    pub chosen_through: crate::types::Slot,
    /// The slot through which it durably held every chosen value then, in its snapshot or its
    /// log (0 when unknown).
    pub durable_through: crate::types::Slot,
}

/// The highest slot through which every one of `config`'s full voters durably holds every
/// chosen value, in its snapshot or its log, given each one's report (`durable_slot`; 0 when
/// unknown). A witness compacts its log no further, so a full voter that lags catches up from
/// what it holds itself or from the witness's log, and never needs a snapshot from a peer that
/// may be gone. (A majority of full voters would not do: with two holders of three, one
/// damaged and the other removed, the third could reach the slots the witness dropped from no
/// one; the simulator found that run. With two full voters, the usual witness setup, it is the
/// same.)
pub fn full_durable_floor(
    config: &Configuration,
    durable_slot: impl Fn(NodeId) -> crate::types::Slot,
) -> crate::types::Slot {
    let floor = config.full_voters().map(durable_slot).min();
    floor.expect("a configuration has a full voter")
}

/// The members of the group as of one epoch.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Configuration {
    /// Zero for the configuration a group starts with, one more with every change.
    pub epoch: u64,
    pub members: BTreeMap<NodeId, Member>,
    /// Ids that were members once; never used again.
    pub removed: BTreeSet<NodeId>,
}

impl Configuration {
    /// The configuration a group starts with: every replica of `ids` a full voter.
    pub fn initial(ids: &[NodeId]) -> Configuration {
        let member = || Member {
            peer_addr: String::new(),
            client_addr: String::new(),
            kind: MemberKind::Full,
            voting: true,
        };
        let config = Configuration {
            epoch: 0,
            members: ids.iter().map(|&id| (id, member())).collect(),
            removed: BTreeSet::new(),
        };
        config.check_invariants();
        config
    }

    /// The voters, in id order.
    pub fn voters(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.members
            .iter()
            .filter(|(_, m)| m.voting)
            .map(|(id, _)| *id)
    }

    pub fn voter_count(&self) -> usize {
        self.voters().count()
    }

    /// Every member, voting or not, in id order.
    pub fn member_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.members.keys().copied()
    }

    pub fn is_member(&self, id: NodeId) -> bool {
        self.members.contains_key(&id)
    }

    pub fn is_voter(&self, id: NodeId) -> bool {
        self.members.get(&id).is_some_and(|m| m.voting)
    }

    pub fn is_witness(&self, id: NodeId) -> bool {
        self.members
            .get(&id)
            .is_some_and(|m| m.kind == MemberKind::Witness)
    }

    /// The voters that keep the key-value state (and take snapshots of it), in id order.
    pub fn full_voters(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.voters().filter(|id| !self.is_witness(*id))
    }

    pub fn is_removed(&self, id: NodeId) -> bool {
        self.removed.contains(&id)
    }

    /// How many voters a quorum needs.
    pub fn quorum(&self) -> usize {
        majority(self.voter_count())
    }

    /// Whether the voters among `ids` are a majority of this configuration's voters.
    pub fn is_quorum<'a>(&self, ids: impl IntoIterator<Item = &'a NodeId>) -> bool {
        let voting = ids.into_iter().filter(|id| self.is_voter(**id)).count();
        voting >= self.quorum()
    }

    /// Why `change` cannot follow this configuration, if it cannot.
    pub fn check_change(&self, change: &Change) -> Result<(), ChangeError> {
        let id = change.id();
        if id == 0 {
            return Err(ChangeError::ZeroId);
        }
        match change {
            Change::Add {
                peer_addr,
                client_addr,
                ..
            } => {
                if self.is_member(id) || self.is_removed(id) {
                    return Err(ChangeError::IdReused(id));
                }
                if peer_addr.len() > ADDR_MAX_BYTES || client_addr.len() > ADDR_MAX_BYTES {
                    return Err(ChangeError::AddressTooLong);
                }
                if self.members.len() >= MEMBERS_MAX || self.removed.len() >= REMOVED_MAX {
                    return Err(ChangeError::TooManyMembers);
                }
            }
            Change::Promote { .. } => match self.members.get(&id) {
                None => return Err(ChangeError::UnknownId(id)),
                Some(member) if member.voting => return Err(ChangeError::AlreadyVoter(id)),
                Some(_) => {}
            },
            Change::Remove { .. } => {
                if !self.is_member(id) {
                    return Err(ChangeError::UnknownId(id));
                }
                if self.is_voter(id) && self.voter_count() == 1 {
                    return Err(ChangeError::LastVoter);
                }
                let full_voter = self.is_voter(id) && !self.is_witness(id);
                if full_voter && self.full_voters().count() == 1 {
                    return Err(ChangeError::LastFullVoter);
                }
            }
        }
        Ok(())
    }

    /// The configuration `change` makes of this one, one epoch later.
    pub fn apply(&self, change: &Change) -> Result<Configuration, ChangeError> {
        self.check_change(change)?;
        let mut next = self.clone();
        next.epoch = self.epoch.checked_add(1).expect("epoch overflow");
        match change {
            Change::Add {
                id,
                peer_addr,
                client_addr,
                kind,
            } => {
                let member = Member {
                    peer_addr: peer_addr.clone(),
                    client_addr: client_addr.clone(),
                    kind: *kind,
                    voting: false,
                };
                next.members.insert(*id, member);
            }
            Change::Promote { id } => {
                next.members.get_mut(id).expect("checked").voting = true;
            }
            Change::Remove { id } => {
                next.members.remove(id);
                next.removed.insert(*id);
            }
        }
        next.check_invariants();
        assert!(
            voters_differ_by_at_most_one(self, &next),
            "a change altered more than one voter"
        );
        let voters: BTreeSet<NodeId> = self.voters().chain(next.voters()).collect();
        assert!(
            self.quorum() + next.quorum() > voters.len(),
            "quorums of epochs {} and {} need not meet",
            self.epoch,
            next.epoch
        );
        assert!(
            next.removed.is_superset(&self.removed),
            "a removed id was forgotten, so it could be used again"
        );
        Ok(next)
    }

    /// At least one voter, members and removed ids apart, no id 0, every bound kept.
    pub fn check_invariants(&self) {
        assert!(
            self.voters().next().is_some(),
            "a configuration without voters"
        );
        assert!(
            self.full_voters().next().is_some(),
            "a configuration without a full voter: no replica could lead"
        );
        assert!(!self.members.contains_key(&0), "member id 0");
        assert!(self.members.len() <= MEMBERS_MAX, "too many members");
        assert!(self.removed.len() <= REMOVED_MAX, "too many removed ids");
        let reused = self.members.keys().find(|id| self.removed.contains(id));
        assert!(reused.is_none(), "removed id {reused:?} is a member");
        assert!(
            self.quorum() <= self.voter_count() && 2 * self.quorum() > self.voter_count(),
            "a quorum is a majority of the voters"
        );
    }
}

/// Whether the voters of `a` and `b` differ by at most one replica, so that every majority of
/// `a`'s voters meets every majority of `b`'s.
pub fn voters_differ_by_at_most_one(a: &Configuration, b: &Configuration) -> bool {
    let va: BTreeSet<NodeId> = a.voters().collect();
    let vb: BTreeSet<NodeId> = b.voters().collect();
    va.symmetric_difference(&vb).count() <= 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(id: NodeId) -> Change {
        Change::Add {
            id,
            peer_addr: format!("127.0.0.1:{}", 7000 + id),
            client_addr: format!("127.0.0.1:{}", 6000 + id),
            kind: MemberKind::Full,
        }
    }

    #[test]
    fn a_learner_is_added_without_a_vote_and_votes_once_promoted() {
        let c0 = Configuration::initial(&[1, 2, 3]);
        let c1 = c0.apply(&add(4)).unwrap();
        assert_eq!((c1.epoch, c1.voter_count(), c1.members.len()), (1, 3, 4));
        assert!(c1.is_member(4) && !c1.is_voter(4));
        let c2 = c1.apply(&Change::Promote { id: 4 }).unwrap();
        assert_eq!((c2.epoch, c2.voter_count(), c2.quorum()), (2, 4, 3));
    }

    #[test]
    fn removed_ids_are_never_reused() {
        let c0 = Configuration::initial(&[1, 2, 3]);
        let c1 = c0.apply(&Change::Remove { id: 3 }).unwrap();
        assert!(c1.is_removed(3) && !c1.is_member(3));
        assert_eq!(c1.apply(&add(3)), Err(ChangeError::IdReused(3)));
        assert_eq!(c1.apply(&add(2)), Err(ChangeError::IdReused(2)));
        assert_eq!(
            c1.apply(&Change::Promote { id: 3 }),
            Err(ChangeError::UnknownId(3))
        );
    }

    #[test]
    fn the_last_voter_stays_and_a_voter_is_not_promoted_twice() {
        let c0 = Configuration::initial(&[1]);
        assert_eq!(
            c0.apply(&Change::Remove { id: 1 }),
            Err(ChangeError::LastVoter)
        );
        assert_eq!(
            c0.apply(&Change::Promote { id: 1 }),
            Err(ChangeError::AlreadyVoter(1))
        );
        assert_eq!(
            c0.apply(&Change::Promote { id: 0 }),
            Err(ChangeError::ZeroId)
        );
    }

    #[test]
    fn majorities_of_consecutive_configurations_intersect_for_every_single_change() {
        // Every voter set of up to 7 from ids 1..=8 and every single change of it.
        for mask in 1u32..(1 << 7) {
            let ids: Vec<NodeId> = (1..=7).filter(|i| mask & (1 << (i - 1)) != 0).collect();
            let c0 = Configuration::initial(&ids);
            let grown = c0.apply(&add(8)).unwrap();
            let grown = grown.apply(&Change::Promote { id: 8 }).unwrap();
            let mut next = vec![grown];
            next.extend(
                ids.iter()
                    .filter_map(|&id| c0.apply(&Change::Remove { id }).ok()),
            );
            for c1 in next {
                assert!(voters_differ_by_at_most_one(&c0, &c1));
                // The smallest majorities, as disjoint as they can be, still share a voter.
                let n = c0.voter_count().max(c1.voter_count());
                let union: BTreeSet<NodeId> = c0.voters().chain(c1.voters()).collect();
                assert!(union.len() <= n + 1);
                assert!(c0.quorum() + c1.quorum() > union.len(), "{ids:?}");
            }
        }
    }

    #[test]
    fn a_quorum_counts_only_voters() {
        let c1 = Configuration::initial(&[1, 2, 3]).apply(&add(4)).unwrap();
        assert!(!c1.is_quorum(&[1, 4]), "a learner does not vote");
        assert!(c1.is_quorum(&[1, 2]));
        assert!(!c1.is_quorum(&[9, 4, 1]));
    }
}
