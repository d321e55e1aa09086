//! The fault schedule of the fault phase: partitions, crashes, process pauses and faults at
//! rest, each at random times around the rate the plan drew.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use keyspace_core::Nanos;

use super::events::Event;
use super::{Phase, World};
use crate::plan::{FaultPlan, GRANT_CRASH_DOWNTIME_MAX_NS};
use crate::storage::StorageFault;

/// The random streams of the faults.
pub(super) struct Faults {
    /// Which fault, whom it hits, when and for how long.
    rng: ChaCha8Rng,
    /// Faults at rest (a stream of its own, so adding them left the other streams unchanged).
    storage_rng: ChaCha8Rng,
    /// A crash waits for this replica's next write, to catch it before the sync.
    crash_at_write: Option<usize>,
}

impl Faults {
    pub(super) fn new(rng: ChaCha8Rng, storage_rng: ChaCha8Rng) -> Faults {
        Faults {
            rng,
            storage_rng,
            crash_at_write: None,
        }
    }

    /// A random set of `size` of the `n` replicas.
    pub(super) fn random_subset(&mut self, n: usize, size: usize) -> Vec<bool> {
        let mut order: Vec<usize> = (0..n).collect();
        for i in 0..n {
            let j = self.rng.gen_range(i..n);
            order.swap(i, j);
        }
        let mut set = vec![false; n];
        for &i in &order[..size] {
            set[i] = true;
        }
        set
    }

    /// The replicas the liveness phase leaves crashed or cut off: none, or a random minority.
    /// Within the fault budget, replicas down or with faulty storage form at most a minority
    /// (a recovering replica needs every peer's report), so faulty ones are the ones left down.
    ///
    /// `voter_sets[0]` are the replicas (by index) that vote in the latest configuration, of
    /// `total`; the others, those of configurations a pending change may have made. The pick
    /// among the latest's voters is trimmed to a minority of every set.
    pub(super) fn liveness_down(
        &mut self,
        voter_sets: &[Vec<usize>],
        total: usize,
        plan: &FaultPlan,
    ) -> Vec<bool> {
        let mut down = self.latest_minority_down(&voter_sets[0], total, plan);
        for set in voter_sets {
            let minority = set.len().saturating_sub(1) / 2;
            let mut in_set: Vec<usize> = set.iter().copied().filter(|&i| down[i]).collect();
            while in_set.len() > minority {
                let i = in_set.pop().expect("more than a minority is not empty");
                down[i] = false;
            }
        }
        for set in voter_sets {
            let down_in_set = set.iter().filter(|&&i| down[i]).count();
            assert!(
                down_in_set <= set.len().saturating_sub(1) / 2,
                "a minority left down"
            );
        }
        down
    }

    /// A random minority (or none) of `voters`, faulty ones first.
    fn latest_minority_down(
        &mut self,
        voters: &[usize],
        total: usize,
        plan: &FaultPlan,
    ) -> Vec<bool> {
        let n = voters.len();
        let minority = n.saturating_sub(1) / 2;
        let mut down = vec![false; total];
        if !plan.liveness_minority_down || minority == 0 {
            return down;
        }
        let size = self.rng.gen_range(1..=minority);
        let picked = self.random_subset(n, size);
        let faulty: Vec<usize> = voters
            .iter()
            .copied()
            .filter(|&i| plan.storage_faulty[i])
            .collect();
        let chosen: Vec<usize> = if (1..=minority).contains(&faulty.len()) {
            faulty
        } else {
            (0..n).filter(|&k| picked[k]).map(|k| voters[k]).collect()
        };
        for i in chosen {
            down[i] = true;
        }
        down
    }

    /// Whether a replica left down by the liveness phase is cut off rather than crashed.
    pub(super) fn cut_off_not_crashed(&mut self) -> bool {
        self.rng.gen_bool(0.5)
    }
}

impl World {
    /// Schedules the first fault of each kind the plan has, within twice its mean interval.
    pub(super) fn start_faults(&mut self) {
        for (every, event) in [
            (self.plan.partition_every_ns, Event::Partition),
            (self.plan.crash_every_ns, Event::Crash),
            (self.plan.pause_every_ns, Event::Pause),
            (self.plan.storage_fault_every_ns, Event::StorageFault),
        ] {
            if every > 0 {
                let at = self.faults.rng.gen_range(0..=2 * every);
                self.schedule(at, event);
            }
        }
    }

    fn next_fault(&mut self, every: Nanos, event: Event) {
        let at = self.now + self.faults.rng.gen_range(1..=2 * every);
        self.schedule(at, event);
    }

    pub(super) fn fault_partition(&mut self) {
        if self.phase != Phase::Faults {
            return;
        }
        let n = self.replicas.len();
        let minority = (n - 1) / 2;
        let side: Vec<bool> = match self.faults.rng.gen_range(0..5) {
            0 => match self.replicas.lease_holder(self.now) {
                Some(m) => (0..n).map(|i| i == m).collect(), // isolate the master
                None => self.faults.random_subset(n, 1),
            },
            1 => self.faults.random_subset(n, minority.max(1)), // minority / majority split
            _ => {
                let size = self.faults.rng.gen_range(1..n);
                self.faults.random_subset(n, size)
            }
        };
        // Symmetric, or one way only (the side can send but not hear, or the reverse).
        let direction = self.faults.rng.gen_range(0..4);
        let gen = self.net.partition(&side, direction);
        self.stats.partitions += 1;
        let lasts = self.faults.rng.gen_range(1..=self.plan.partition_max_ns);
        self.schedule(self.now + lasts, Event::Heal { gen });
        self.next_fault(self.plan.partition_every_ns, Event::Partition);
    }

    /// Ends partition `gen` if it is still the current one.
    pub(super) fn heal(&mut self, gen: u64) {
        if self.phase == Phase::Faults {
            self.net.heal(gen);
        }
    }

    /// A replica crashes: at once, or (half the time, when no other crash waits) at its next
    /// write, between the write and its sync, where the write may be lost or torn.
    pub(super) fn fault_crash(&mut self) {
        if self.phase != Phase::Faults {
            return;
        }
        let up: Vec<usize> = (0..self.replicas.len())
            .filter(|&i| self.replicas.nodes[i].is_up())
            .collect();
        if !up.is_empty() {
            let i = up[self.faults.rng.gen_range(0..up.len())];
            if self.faults.crash_at_write.is_none() && self.faults.rng.gen_bool(0.5) {
                self.faults.crash_at_write = Some(i);
            } else {
                self.crash_for_a_while(i);
            }
        }
        self.next_fault(self.plan.crash_every_ns, Event::Crash);
    }

    /// Replica `i` crashes and restarts after a downtime drawn from the plan.
    fn crash_for_a_while(&mut self, i: usize) {
        let down = self.faults.rng.gen_range(1..=self.plan.downtime_max_ns);
        self.crash_for(i, down);
    }

    /// A replica that dies right after its first lease grant to another and comes straight
    /// back, while the lease it granted and forgot is still held (see the plan).
    pub(super) fn crash_after_first_grant(&mut self, i: usize) {
        let crashes = std::mem::take(&mut self.plan.crash_after_first_grant[i]);
        if !crashes || self.phase != Phase::Faults {
            return;
        }
        let down = self.faults.rng.gen_range(1..=GRANT_CRASH_DOWNTIME_MAX_NS);
        self.crash_for(i, down);
    }

    /// Replica `i` dies and restarts `down` later.
    pub(super) fn crash_for(&mut self, i: usize, down: Nanos) {
        self.crash(i);
        let incarnation = self.replicas.nodes[i].incarnation;
        self.schedule(
            self.now + down,
            Event::Restart {
                node: i,
                incarnation,
            },
        );
    }

    /// Replica `i` started a sync that takes `latency_ns`: if a crash waits for its write, it
    /// comes at some instant before the sync ends.
    pub(super) fn write_started(&mut self, i: usize, latency_ns: Nanos) {
        if self.faults.crash_at_write != Some(i) || self.phase != Phase::Faults {
            return;
        }
        self.faults.crash_at_write = None;
        let at = self.now + self.faults.rng.gen_range(0..latency_ns.max(1));
        let incarnation = self.replicas.nodes[i].incarnation;
        self.schedule(
            at,
            Event::CrashMidWrite {
                node: i,
                incarnation,
            },
        );
    }

    /// The crash that waited for replica `i`'s write.
    pub(super) fn crash_mid_write(&mut self, i: usize) {
        if self.phase == Phase::Faults && self.replicas.nodes[i].is_up() {
            self.crash_for_a_while(i);
        }
    }

    pub(super) fn fault_pause(&mut self) {
        if self.phase != Phase::Faults {
            return;
        }
        let holder = if self.faults.rng.gen_bool(0.5) {
            self.replicas.lease_holder(self.now)
        } else {
            None
        };
        let n = self.replicas.len();
        let i = holder.unwrap_or_else(|| self.faults.rng.gen_range(0..n));
        let node = &mut self.replicas.nodes[i];
        if node.is_up() && node.paused_until <= self.now {
            let pause = self.faults.rng.gen_range(1..=self.plan.pause_max_ns);
            node.paused_until = self.now + pause;
            self.stats.pauses += 1;
        }
        self.next_fault(self.plan.pause_every_ns, Event::Pause);
    }

    /// A fault at rest on a replica of the fault atlas: a bit flip, a misdirected write or a
    /// latent read error in one of its durable records. Seen at its next restart.
    pub(super) fn fault_storage(&mut self) {
        if self.phase != Phase::Faults {
            return;
        }
        let atlas: Vec<usize> = (0..self.replicas.len())
            .filter(|&i| self.plan.storage_faulty[i])
            .collect();
        let kinds: Vec<StorageFault> = [
            (self.plan.bit_flips, StorageFault::BitFlip),
            (self.plan.misdirected_writes, StorageFault::Misdirected),
            (self.plan.read_errors, StorageFault::ReadError),
        ]
        .into_iter()
        .filter_map(|(on, kind)| on.then_some(kind))
        .collect();
        if !atlas.is_empty() && !kinds.is_empty() {
            let rng = &mut self.faults.storage_rng;
            let i = atlas[rng.gen_range(0..atlas.len())];
            let kind = kinds[rng.gen_range(0..kinds.len())];
            if self.replicas.nodes[i].corrupt_at_rest(kind, rng) {
                self.stats.storage_faults += 1;
            }
        }
        let every = self.plan.storage_fault_every_ns;
        let at = self.now + self.faults.storage_rng.gen_range(1..=2 * every);
        self.schedule(at, Event::StorageFault);
    }
}
