//! Membership changes in a run: the simulator asks the master (as far as it knows it) to add a
//! spare replica as a learner or a witness, promote a learner or witness, or remove a member (the master included,
//! which hands over), interleaved with every fault; "replace a dead replica" is such a
//! sequence. And the checks across configurations: replicas that reached one epoch hold the
//! same configuration, and consecutive ones differ by at most one voter.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use keyspace_core::membership::voters_differ_by_at_most_one;
use keyspace_core::{
    majority, Change, ClientRequest, ClientResponse, Command, Configuration, Input, MemberKind,
    NodeId, Outcome, Reply,
};

use super::events::Event;
use super::{safety, Phase, World};
use crate::Failure;

/// The client id of the simulator's membership requests (no workload client has it).
pub(super) const MEMBER_CLIENT_ID: u64 = u64::MAX - 1;
/// Most configurations a run remembers: a change at most every 300 ms of a 30 s run.
const EPOCHS_KEPT_MAX: usize = 4096;

pub(super) struct Membership {
    rng: ChaCha8Rng,
    /// Every configuration a replica applied, by epoch.
    pub(super) configs: BTreeMap<u64, Configuration>,
    seq: u64,
    /// The voters of each configuration a change asked for since the latest epoch was applied
    /// would make: such a change may be chosen (accepted by a majority) with no replica knowing
    /// it yet, and then it is in force for the next slots. Bounded: each differs from the
    /// latest by one member, and a new latest epoch clears them.
    pending: BTreeSet<Vec<NodeId>>,
    /// The epoch of the latest configuration when `pending` was last cleared.
    pending_after_epoch: u64,
    /// The founding voters' count: the simulator removes voters only above it and adds them
    /// only up to two above, so a majority survives the crash faults' budget.
    founding: usize,
}

impl Membership {
    pub(super) fn new(rng: ChaCha8Rng, founding: usize) -> Self {
        let ids: Vec<NodeId> = (1..=founding as NodeId).collect();
        let configs = BTreeMap::from([(0, Configuration::initial(&ids))]);
        Self {
            rng,
            configs,
            seq: 0,
            pending: BTreeSet::new(),
            pending_after_epoch: 0,
            founding,
        }
    }

    /// The latest configuration any replica applied.
    pub(super) fn latest(&self) -> &Configuration {
        self.configs.values().next_back().expect("the founding one")
    }

    /// The voter sets of every configuration that may be in force after the latest one
    /// applied: the latest, and each one a change asked for since may have made.
    pub(super) fn possible_voter_sets(&self) -> Vec<Vec<NodeId>> {
        let latest = self.latest();
        let mut sets = vec![latest.voters().collect::<Vec<_>>()];
        if self.pending_after_epoch == latest.epoch {
            sets.extend(self.pending.iter().cloned());
        }
        sets
    }

    /// Notes a change asked for: the configuration it makes from the latest may be chosen.
    fn note_asked(&mut self, change: &Change) {
        let latest = self.latest().clone();
        if self.pending_after_epoch != latest.epoch {
            self.pending.clear();
            self.pending_after_epoch = latest.epoch;
        }
        if let Ok(next) = latest.apply(change) {
            self.pending.insert(next.voters().collect());
        }
        // A change adds a non-voter (the same voters), promotes a member or removes one.
        assert!(
            self.pending.len() <= latest.member_ids().count() + 1,
            "each pending configuration's voters differ from the latest's by at most one"
        );
    }

    /// Notes a configuration a replica applied: the same as every other replica's of its
    /// epoch, and at most one voter away from the epochs next to it.
    pub(super) fn observe(&mut self, config: &Configuration, node: NodeId) -> Result<(), String> {
        if let Some(known) = self.configs.get(&config.epoch) {
            if known != config {
                return Err(format!(
                    "replica {node} applied epoch {} as {config:?}, another replica as {known:?}",
                    config.epoch
                ));
            }
            return Ok(());
        }
        let neighbours = [
            config
                .epoch
                .checked_sub(1)
                .and_then(|e| self.configs.get(&e)),
            self.configs.get(&(config.epoch + 1)),
        ];
        for other in neighbours.into_iter().flatten() {
            if !voters_differ_by_at_most_one(other, config) {
                return Err(format!(
                    "epochs {} and {} differ by more than one voter: majorities may not intersect",
                    other.epoch, config.epoch
                ));
            }
        }
        if self.configs.len() < EPOCHS_KEPT_MAX {
            self.configs.insert(config.epoch, config.clone());
        }
        Ok(())
    }

    /// The change to ask for next, if any fits: add the next spare (as a learner or a witness),
    /// promote a learner or witness, or remove a voter (above the founding count, keeping a
    /// majority of the founding count of full voters) or a non-voting member.
    fn draw_change(&mut self, next_spare: Option<NodeId>) -> Option<Change> {
        // One spare in three joins as a witness.
        let spare = next_spare.map(|id| match self.rng.gen_range(0..3) {
            0 => (id, MemberKind::Witness),
            _ => (id, MemberKind::Full),
        });
        let latest = self.latest();
        let voters: Vec<NodeId> = latest.voters().collect();
        let learners: Vec<NodeId> = latest
            .member_ids()
            .filter(|id| !latest.is_voter(*id))
            .collect();
        let mut options: Vec<Change> = Vec::new();
        if let Some((id, kind)) = spare {
            options.push(Change::Add {
                id,
                peer_addr: format!("127.0.0.1:{}", 7000 + id),
                client_addr: format!("127.0.0.1:{}", 6000 + id),
                kind,
            });
        }
        if voters.len() < self.founding + 2 {
            options.extend(learners.iter().map(|&id| Change::Promote { id }));
        }
        if voters.len() > self.founding {
            // A majority of the founding count keeps the state: a witness never leads, and a
            // full replica catches up from full ones only.
            let full_voters = latest.full_voters().count();
            let removable =
                |id: &NodeId| latest.is_witness(*id) || full_voters > majority(self.founding);
            options.extend(
                voters
                    .iter()
                    .filter(|id| removable(id))
                    .map(|&id| Change::Remove { id }),
            );
        }
        options.extend(learners.iter().map(|&id| Change::Remove { id }));
        if options.is_empty() {
            return None;
        }
        let pick = self.rng.gen_range(0..options.len());
        Some(options.swap_remove(pick))
    }
}

impl World {
    /// Schedules the first membership change, if the plan has them.
    pub(super) fn start_membership(&mut self) {
        let every = self.plan.membership_every_ns;
        if every > 0 {
            let at = self.membership.rng.gen_range(1..=2 * every);
            self.schedule(at, Event::Membership);
        }
    }

    /// The next membership change is due: schedules the one after and asks.
    pub(super) fn membership_change(&mut self) -> Result<(), Failure> {
        if self.phase != Phase::Faults {
            return Ok(());
        }
        let every = self.plan.membership_every_ns;
        let at = self.now + self.membership.rng.gen_range(1..=2 * every);
        self.schedule(at, Event::Membership);
        self.ask_member_change()
    }

    /// Asks the replica that holds the lease (else any) for a change drawn now; starts a spare
    /// first when the change adds it.
    pub(super) fn ask_member_change(&mut self) -> Result<(), Failure> {
        let next_spare = self.next_spare();
        let Some(change) = self.membership.draw_change(next_spare) else {
            return Ok(());
        };
        let mut change = change;
        if let Change::Add { id, kind, .. } = &mut change {
            let node = &mut self.replicas.nodes[*id as usize - 1];
            // A spare runs as what it was first started as, whatever a retry draws.
            match node.incarnation {
                0 => node.witness = *kind == MemberKind::Witness,
                _ if node.witness => *kind = MemberKind::Witness,
                _ => *kind = MemberKind::Full,
            }
            if !node.is_up() && node.incarnation == 0 {
                self.restart(*id as usize - 1)?;
            }
        }
        let n = self.replicas.len();
        let to = match self.replicas.lease_holder(self.now) {
            Some(holder) => holder,
            None => self.membership.rng.gen_range(0..n),
        };
        self.membership.seq += 1;
        self.membership.note_asked(&change);
        let request = ClientRequest {
            client_id: MEMBER_CLIENT_ID,
            seq: self.membership.seq,
            command: Command::Member(change),
        };
        self.stats.member_changes_asked += 1;
        self.drive(to, Input::Request(request))
    }

    /// The first spare id no configuration has named yet.
    fn next_spare(&self) -> Option<NodeId> {
        let latest = self.membership.latest();
        let founding = self.opts.nodes as NodeId;
        let total = self.replicas.len() as NodeId;
        (founding + 1..=total).find(|id| !latest.is_member(*id) && !latest.is_removed(*id))
    }

    /// A replica answered a membership request.
    pub(super) fn member_response(&mut self, response: &ClientResponse) {
        if let Outcome::Done(Reply::Int(_)) = response.outcome {
            self.stats.member_changes_applied += 1;
        }
    }

    /// Notes the configuration replica `i` applied (checks it against the others).
    pub(super) fn observe_configuration(&mut self, i: usize) -> Result<(), Failure> {
        let node = &mut self.replicas.nodes[i];
        let Some(replica) = &node.replica else {
            return Ok(());
        };
        let config = replica.configuration();
        if node.epoch_seen == Some(config.epoch) {
            return Ok(());
        }
        node.epoch_seen = Some(config.epoch);
        let id = node.id;
        self.membership.observe(config, id).map_err(safety)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_change_asked_for_and_applied_nowhere_may_be_in_force_at_the_liveness_phase() {
        let mut membership = Membership::new(ChaCha8Rng::seed_from_u64(0), 3);
        membership.note_asked(&Change::Remove { id: 1 });
        let sets = membership.possible_voter_sets();
        assert_eq!(sets, vec![vec![1, 2, 3], vec![2, 3]]);
        let applied = membership
            .latest()
            .apply(&Change::Remove { id: 1 })
            .unwrap();
        membership.observe(&applied, 2).unwrap();
        assert_eq!(membership.possible_voter_sets(), vec![vec![2, 3]]);
    }
}
