//! The phases after the faults: heal a majority and require progress within a bound, settle,
//! then check that no acknowledged write was lost.

use keyspace_core::Nanos;

use super::events::Event;
use super::{safety, Phase, World};
use crate::plan::{NANOS_PER_MILLI, NANOS_PER_SEC};
use crate::{Failure, FailureKind};

/// How long after the faults stop, and every message sent before then was delivered, a
/// majority must complete [`LIVENESS_WRITES`] writes.
pub const LIVENESS_BOUND_NS: Nanos = 10 * NANOS_PER_SEC;
/// Writes the liveness phase requires.
pub const LIVENESS_WRITES: u64 = 3;
/// Quiet time after the liveness writes, for followers to catch up before the final checks.
const SETTLE_NS: Nanos = NANOS_PER_SEC;

impl World {
    /// Ends the fault phase: heals the network and restarts replicas, leaving at most a
    /// minority of the voters of the latest configuration, and of each one a change asked for
    /// may have made since (chosen, not yet applied anywhere), down or cut off, then requires progress
    /// within [`LIVENESS_BOUND_NS`]. A spare never added stays unstarted.
    pub(super) fn end_faults(&mut self) -> Result<(), Failure> {
        self.phase = Phase::Liveness;
        self.net.calm_down();
        let n = self.replicas.len();
        let voter_sets: Vec<Vec<usize>> = (self.membership.possible_voter_sets().into_iter())
            .map(|set| set.into_iter().map(|id| id as usize - 1).collect())
            .collect();
        let down = self.faults.liveness_down(&voter_sets, n, &self.plan);
        for i in 0..n {
            let never_started = self.replicas.nodes[i].incarnation == 0;
            if never_started {
                continue;
            }
            if down[i] && self.faults.cut_off_not_crashed() {
                self.net.cut_off(i, (0..n).filter(|&j| !down[j]));
            } else if down[i] {
                if self.replicas.nodes[i].is_up() {
                    self.crash(i);
                }
                self.replicas.nodes[i].stay_down = true;
            } else if !self.replicas.nodes[i].is_up() {
                self.restart(i)?;
            }
        }
        let client = self.clients.liveness_client();
        self.schedule(self.now, Event::ClientWake { client });
        let deadline = self.now + self.in_flight_max_ns() + LIVENESS_BOUND_NS;
        self.schedule(deadline, Event::LivenessDeadline);
        Ok(())
    }

    /// How long a message sent before healing may still be on the wire after it. Until then a
    /// dead master's stale lease proposals and commits can still arrive and look current (no
    /// clocks are shared), so the liveness bound starts once they are all delivered.
    fn in_flight_max_ns(&self) -> Nanos {
        self.net.in_flight_max_ns()
    }

    /// One liveness write completed; returns whether it was the last, which starts the quiet
    /// time before the end.
    pub(super) fn liveness_write_done(&mut self) -> bool {
        self.liveness_left -= 1;
        if self.liveness_left > 0 {
            return false;
        }
        self.phase = Phase::Settle;
        self.stats.liveness_ns = Some(self.now - self.opts.duration_s * NANOS_PER_SEC);
        self.schedule(self.now + SETTLE_NS, Event::End);
        true
    }

    pub(super) fn liveness_deadline(&mut self) -> Result<(), Failure> {
        if self.phase != Phase::Liveness {
            return Ok(());
        }
        self.stats.recovering_at_end = self.replicas.recovering();
        let done = LIVENESS_WRITES - self.liveness_left;
        Err(Failure {
            kind: FailureKind::Liveness,
            message: format!(
                "no progress: {done} of {LIVENESS_WRITES} writes completed within {}s of healing a majority (after the {} ms messages sent before healing may still travel); {}",
                LIVENESS_BOUND_NS / NANOS_PER_SEC,
                self.in_flight_max_ns() / NANOS_PER_MILLI,
                self.replica_states()
            ),
        })
    }

    /// Each started replica's epoch, votes and progress, for a liveness failure's message.
    fn replica_states(&self) -> String {
        let latest = self.membership.latest();
        let voters: Vec<_> = latest.voters().collect();
        let mut states = vec![format!("epoch {} voters {voters:?}", latest.epoch)];
        for node in &self.replicas.nodes {
            let state = match &node.replica {
                None if node.incarnation == 0 => continue,
                None => "down".to_string(),
                Some(r) => format!(
                    "epoch {} chosen {}{}{}",
                    r.configuration().epoch,
                    r.chosen_through(),
                    if r.is_recovering_storage() {
                        " recovering"
                    } else {
                        ""
                    },
                    if r.is_removed() { " removed" } else { "" }
                ),
            };
            states.push(format!("replica {}: {state}", node.id));
        }
        states.join("; ")
    }

    /// No acknowledged write lost: every write answered `Done` was applied (and so chosen, by
    /// the ledger's check) in a slot that the replica furthest ahead has applied.
    pub(super) fn final_checks(&mut self) -> Result<(), Failure> {
        self.stats.recovering_at_end = self.replicas.recovering();
        let top = self
            .replicas
            .furthest_applied()
            .expect("a majority is up after the liveness phase");
        let (top_id, top_through) = (top.node_id(), top.applied_through());
        for &(client, seq) in &self.clients.acked {
            match self.ledger.slot_of(client, seq) {
                Some(slot) if slot <= top_through => {}
                found => {
                    let place = found.map_or("in no replica's log".to_string(), |s| {
                        format!("in slot {s}")
                    });
                    return Err(safety(format!(
                        "acknowledged write lost: client {client} request {seq} is {place}; replica {top_id} applied through slot {top_through}"
                    )));
                }
            }
        }
        Ok(())
    }
}
