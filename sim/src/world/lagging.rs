//! The lagging-voter fault (see [`crate::plan::FaultPlan::lagging_voter`]): a minority of the
//! voters is down while the master and a replica of the fault atlas choose two membership
//! changes; then the master and every other voter that took part crash, and the atlas replica
//! restarts with everything it wrote since the changes began damaged at rest, next to the
//! voters that never heard of them. Together the two form a majority of the old
//! configuration; the one that forgot must not help the laggards to a lease under it (design.md
//! invariant 5). All within the fault budget: faults at rest on the atlas only, crashes
//! anywhere.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use keyspace_core::{majority, Nanos};

use super::events::Event;
use super::{Phase, World};
use crate::plan::{NANOS_PER_MILLI, NANOS_PER_SEC};
use crate::Failure;

/// How often the fault looks again, for a moment to begin and then for the changes.
const POLL_NS: Nanos = 50 * NANOS_PER_MILLI;
/// How long the changes may take before the fault gives up and the laggards restart.
const CHANGES_MAX_NS: Nanos = 5 * NANOS_PER_SEC;
/// Epochs the atlas replica must apply past the laggards' before the strike: a lease under
/// the next epoch alone may still be legal while a change is pending.
const EPOCHS_AHEAD: u64 = 2;
/// The master stays down past the laggards' and the atlas replica's restart quiet periods
/// (one lease duration of 1 s), so they may try a lease among themselves.
const MASTER_DOWN_MIN_NS: Nanos = 2_500 * NANOS_PER_MILLI;
const MASTER_DOWN_MAX_NS: Nanos = 4 * NANOS_PER_SEC;

/// The replicas of a fault under way, by index.
struct Setup {
    /// The atlas replica that takes part in the changes.
    damaged: usize,
    /// Its storage's finished syncs when the changes began: what it wrote after is damaged.
    syncs_mark: u64,
    /// The voters down through the changes (a minority).
    lagging: Vec<usize>,
    /// The other voters of the old configuration, the master among them: they crash.
    others: Vec<usize>,
    /// The epoch the changes started from, and the one the latest change was asked at.
    from_epoch: u64,
    asked_at_epoch: u64,
    give_up_at_ns: Nanos,
}

enum Stage {
    Waiting,
    Changing(Setup),
    Done,
}

pub(super) struct Lagging {
    rng: ChaCha8Rng,
    stage: Stage,
}

impl Lagging {
    pub(super) fn new(rng: ChaCha8Rng) -> Lagging {
        Lagging {
            rng,
            stage: Stage::Waiting,
        }
    }
}

impl World {
    /// Schedules the fault's first look, in the first half of the fault phase.
    pub(super) fn start_lagging(&mut self) {
        if self.plan.lagging_voter {
            let half_ns = self.opts.duration_s * NANOS_PER_SEC / 2;
            let at = self.lagging.rng.gen_range(0..=half_ns.max(1));
            self.schedule(at, Event::Lagging);
        }
    }

    /// The fault's next step: begin when the moment is right, else watch the changes.
    pub(super) fn lagging_step(&mut self) -> Result<(), Failure> {
        if self.phase != Phase::Faults {
            return Ok(()); // the liveness phase restarts whoever is down
        }
        match std::mem::replace(&mut self.lagging.stage, Stage::Done) {
            Stage::Waiting => self.lagging_begin(),
            Stage::Changing(setup) => self.lagging_watch(setup),
            Stage::Done => Ok(()),
        }
    }

    /// Begins if a master holds the lease, every voter is up and one of them, not the master,
    /// is an atlas replica with full storage: a minority of the others goes down, a change is
    /// asked for.
    fn lagging_begin(&mut self) -> Result<(), Failure> {
        let Some(mut setup) = self.lagging_setup() else {
            self.lagging.stage = Stage::Waiting;
            self.schedule(self.now + POLL_NS, Event::Lagging);
            return Ok(());
        };
        for &i in &setup.lagging {
            self.crash(i);
        }
        setup.syncs_mark = self.replicas.nodes[setup.damaged].syncs();
        self.lagging.stage = Stage::Changing(setup);
        self.schedule(self.now + POLL_NS, Event::Lagging);
        self.ask_member_change()
    }

    /// Who plays which part now, if the moment is right.
    fn lagging_setup(&mut self) -> Option<Setup> {
        let master = self.replicas.lease_holder(self.now)?;
        let latest = self.membership.latest();
        let voters: Vec<usize> = latest.voters().map(|id| id as usize - 1).collect();
        let nodes = &self.replicas.nodes;
        let all_up = voters.iter().all(|&i| nodes[i].is_up());
        let atlas: Vec<usize> = (voters.iter().copied())
            .filter(|&i| i != master && self.plan.storage_faulty[i] && !nodes[i].witness)
            .collect();
        // With an even count the laggards and the atlas replica are no majority.
        let odd = voters.len() % 2 == 1 && voters.len() >= 3;
        if !odd || !voters.contains(&master) || !all_up || atlas.is_empty() {
            return None;
        }
        let rng = &mut self.lagging.rng;
        let damaged = atlas[rng.gen_range(0..atlas.len())];
        let mut rest: Vec<usize> = (voters.iter().copied())
            .filter(|&i| i != master && i != damaged)
            .collect();
        let mut lagging = Vec::new();
        while lagging.len() < (voters.len() - 1) / 2 {
            lagging.push(rest.swap_remove(rng.gen_range(0..rest.len())));
        }
        rest.push(master);
        assert!(
            lagging.len() + 1 == majority(voters.len()),
            "the laggards are a minority, and with the atlas replica a majority"
        );
        Some(Setup {
            damaged,
            syncs_mark: 0,
            lagging,
            others: rest,
            from_epoch: latest.epoch,
            asked_at_epoch: latest.epoch,
            give_up_at_ns: self.now + CHANGES_MAX_NS,
        })
    }

    /// Strikes once the atlas replica applied [`EPOCHS_AHEAD`] epochs past the laggards';
    /// asks for the next change each time it applies one; gives up after [`CHANGES_MAX_NS`].
    fn lagging_watch(&mut self, mut setup: Setup) -> Result<(), Failure> {
        let replica = self.replicas.nodes[setup.damaged].replica.as_ref();
        let epoch = replica.map_or(0, |r| r.configuration().epoch);
        if epoch >= setup.from_epoch + EPOCHS_AHEAD {
            return self.lagging_strike(setup);
        }
        if self.now >= setup.give_up_at_ns {
            let lagging = std::mem::take(&mut setup.lagging);
            return lagging.into_iter().try_for_each(|i| self.restart(i));
        }
        let asks = epoch > setup.asked_at_epoch;
        setup.asked_at_epoch = setup.asked_at_epoch.max(epoch);
        self.lagging.stage = Stage::Changing(setup);
        self.schedule(self.now + POLL_NS, Event::Lagging);
        match asks {
            true => self.ask_member_change(),
            false => Ok(()),
        }
    }

    /// The others crash for longer than the quiet periods; the atlas replica crashes and comes
    /// back at once with what it wrote since the changes began damaged; the laggards come back.
    fn lagging_strike(&mut self, setup: Setup) -> Result<(), Failure> {
        let rng = &mut self.lagging.rng;
        let downs: Vec<Nanos> = (setup.others.iter())
            .map(|_| rng.gen_range(MASTER_DOWN_MIN_NS..=MASTER_DOWN_MAX_NS))
            .collect();
        for (&i, down) in setup.others.iter().zip(downs) {
            if self.replicas.nodes[i].is_up() {
                self.crash_for(i, down);
            }
        }
        let back_ns = self.lagging.rng.gen_range(1..=100) * NANOS_PER_MILLI;
        self.crash_for(setup.damaged, back_ns);
        let node = &mut self.replicas.nodes[setup.damaged];
        let flipped = node.damage_since(setup.syncs_mark, &mut self.lagging.rng);
        self.stats.storage_faults += flipped as u64;
        for &i in &setup.lagging {
            let at = self.now + self.lagging.rng.gen_range(1..=300) * NANOS_PER_MILLI;
            let incarnation = self.replicas.nodes[i].incarnation;
            self.schedule(
                at,
                Event::Restart {
                    node: i,
                    incarnation,
                },
            );
        }
        Ok(())
    }
}
