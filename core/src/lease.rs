//! PaxosLease: a master lease without synchronized clocks.
//!
//! Only a bound on the clock drift *rate* is assumed: every replica's clock advances at a rate
//! within `[1 - ρ, 1 + ρ]` of true time, where `ρ = drift_rate_max_ppm / 1e6`.
//!
//! Safety arithmetic (asserted in [`LeaseConfig::holder_duration_ns`]):
//! - The proposer starts its timer *before* it sends `LeasePrepare` (at true time `t0`).
//! - An acceptor starts its timer when it accepts (at true time `ta ≥ t0`) and keeps the grant for
//!   `L = lease_duration_ns` of its own clock: at least `L / (1 + ρ)` of true time.
//! - The proposer believes it holds the lease for `H` of its own clock from its start: at most
//!   `H / (1 - ρ)` of true time.
//! - With `H = L (1 - ρ) / (1 + ρ)` the holder's belief ends (true time `t0 + H/(1-ρ)`) no later
//!   than the majority's grants expire (`ta + L/(1+ρ)`). A new holder needs a majority with no open
//!   grant, and two majorities share an acceptor, so two holders never overlap in true time.
//! - A restarted replica forgets its grants; it sits out `L` of its own clock (at least
//!   `L / (1 + ρ)` true time) before it answers lease messages, which outlasts any belief a
//!   grant it gave before the crash could support. A member of a brand-new cluster
//!   (`ReplicaConfig::new_cluster`, empty storage) has given no grant and does not wait.
//!
//! Release: a holder that gives up its lease early stops acting as holder first, then sends
//! [`LeaseRelease`] for every grant it may have open (the lease held and a running extension's).
//! An acceptor that still runs exactly that grant (ballot, owner and attempt id) forgets it, so
//! the next proposer finds a majority with no open grant at once instead of after a lease. A
//! grant it forgets supports no belief any more, so every majority still meets the grants of
//! the only lease believed in (see docs/design.md, "Releasing the lease").
//!
//! Majorities are counted per attempt over the voter sets of a [`Quorum`] (the configuration
//! applied, and the next one while a change is pending); any two such majorities share an
//! acceptor because adjacent configurations differ by at most one voter (see
//! docs/design.md, "Membership change", and `replica::route_lease` for the epoch rule).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::msg::{
    LeaseAccepted, LeaseGrant, LeasePrepare, LeasePromise, LeasePropose, LeaseRelease,
};
use crate::types::{majority, Ballot, Nanos, NodeId};

/// The largest drift-rate bound the arithmetic accepts (10%).
pub const DRIFT_RATE_MAX_PPM_LIMIT: u64 = 100_000;
const PPM: u128 = 1_000_000;

/// Lease timing parameters; identical on every replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseConfig {
    /// How long an acceptor keeps a grant, on its own clock (`L`).
    pub lease_duration_ns: Nanos,
    /// Bound on every clock's drift rate, parts per million (`ρ`).
    pub drift_rate_max_ppm: u64,
}

impl LeaseConfig {
    /// `H`: how long the holder may act as holder, on its own clock, from the moment it started
    /// asking. `H = L (1 - ρ) / (1 + ρ)`, rounded down.
    pub fn holder_duration_ns(&self) -> Nanos {
        assert!(self.drift_rate_max_ppm <= DRIFT_RATE_MAX_PPM_LIMIT);
        assert!(self.lease_duration_ns > 0);
        let l = self.lease_duration_ns as u128;
        let rho = self.drift_rate_max_ppm as u128;
        let h = l * (PPM - rho) / (PPM + rho);
        // The holder's worst-case true duration must not exceed the acceptors' best case:
        // H / (1 - ρ) <= L / (1 + ρ)  ⇔  H (1 + ρ) <= L (1 - ρ).
        assert!(h * (PPM + rho) <= l * (PPM - rho));
        h as Nanos
    }

    /// How long a (re)started replica stays out of the lease protocol, on its own clock.
    pub fn restart_quiet_ns(&self) -> Nanos {
        self.lease_duration_ns
    }
}

/// The acceptor side: volatile by design.
#[derive(Clone, Debug, Default)]
pub struct LeaseAcceptor {
    promised: Ballot,
    /// The accepted grant and the local time its timer runs out.
    grant: Option<(LeaseGrant, Nanos)>,
}

impl LeaseAcceptor {
    pub fn on_prepare(&mut self, now_ns: Nanos, msg: &LeasePrepare) -> LeasePromise {
        self.expire(now_ns);
        let promised = msg.ballot >= self.promised;
        if promised {
            self.promised = msg.ballot;
        }
        LeasePromise {
            ballot: msg.ballot,
            promised,
            highest: self.promised,
            open: self.grant.map(|(grant, _)| grant),
        }
    }

    pub fn on_propose(&mut self, now_ns: Nanos, msg: &LeasePropose) -> LeaseAccepted {
        self.expire(now_ns);
        // Only the ballot this acceptor promised last: stricter than Paxos needs (which is
        // `>=`), and it keeps a proposal that sat for seconds in the network, or reached an
        // acceptor that restarted since, from granting a lease nobody holds any more and so
        // holding up the next election for a whole lease.
        let accepted = msg.ballot == self.promised;
        if accepted {
            let grant = LeaseGrant {
                ballot: msg.ballot,
                owner: msg.owner,
                attempt_id: msg.attempt_id,
            };
            let expires_ns = now_ns.saturating_add(msg.duration_ns);
            self.grant = Some((grant, expires_ns));
        }
        LeaseAccepted {
            ballot: msg.ballot,
            accepted,
            highest: self.promised,
        }
    }

    /// `from` gave up the grant `msg` names: forgets it if it is exactly the grant this
    /// acceptor runs (a release that was delayed, duplicated or sent by an earlier run of the
    /// owner never clears a later grant). Returns whether it forgot one.
    pub fn on_release(&mut self, from: NodeId, msg: &LeaseRelease) -> bool {
        let mine = msg.grant.owner == from;
        let same = matches!(self.grant, Some((grant, _)) if grant == msg.grant);
        if mine && same {
            self.grant = None;
        }
        mine && same
    }

    /// Drops the grant once its timer ran out.
    pub fn expire(&mut self, now_ns: Nanos) {
        if matches!(self.grant, Some((_, expires)) if now_ns >= expires) {
            self.grant = None;
        }
    }

    /// The grant whose timer still runs, if any.
    pub fn open_grant(&self, now_ns: Nanos) -> Option<LeaseGrant> {
        match self.grant {
            Some((grant, expires)) if now_ns < expires => Some(grant),
            _ => None,
        }
    }

    pub fn grant_owner(&self) -> Option<NodeId> {
        self.grant.map(|(grant, _)| grant.owner)
    }

    pub fn grant_expiry_ns(&self) -> Option<Nanos> {
        self.grant.map(|(_, expires)| expires)
    }
}

/// Where the proposer is in one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Attempt {
    Idle,
    Preparing {
        ballot: Ballot,
        attempt_id: u64,
        started_ns: Nanos,
        quorum: Quorum,
        promises: BTreeSet<NodeId>,
        blocked: bool,
    },
    Proposing {
        ballot: Ballot,
        attempt_id: u64,
        started_ns: Nanos,
        quorum: Quorum,
        accepts: BTreeSet<NodeId>,
    },
}

/// The voters one attempt counts: a majority of every set must grant (one set, or two while a
/// change is accepted but not known chosen: the configuration applied and the one the change
/// makes), and the epoch of the latest configuration among them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quorum {
    pub epoch: u64,
    pub voter_sets: Vec<BTreeSet<NodeId>>,
}

impl Quorum {
    fn is_reached(&self, answers: &BTreeSet<NodeId>) -> bool {
        self.voter_sets
            .iter()
            .all(|voters| voters.intersection(answers).count() >= majority(voters.len()))
    }

    fn counts(&self, from: NodeId) -> bool {
        self.voter_sets.iter().any(|voters| voters.contains(&from))
    }

    /// Every voter of every set, each once: whom to ask.
    pub fn voters(&self) -> BTreeSet<NodeId> {
        self.voter_sets.iter().flatten().copied().collect()
    }
}

/// What a proposer wants sent after handling an input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProposerAction {
    None,
    /// Broadcast this to every replica (including this one).
    Prepare(LeasePrepare),
    /// Broadcast this to every replica (including this one).
    Propose(LeasePropose),
    /// The lease is (now, or still) held until this local time.
    Acquired {
        held_until_ns: Nanos,
    },
    /// The attempt failed; back off before trying again.
    Failed,
}

/// The proposer side: acquires and extends the lease for its own replica.
#[derive(Clone, Debug)]
pub struct LeaseProposer {
    node: NodeId,
    config: LeaseConfig,
    highest_seen: Ballot,
    attempt: Attempt,
    held_until_ns: Option<Nanos>,
    /// The grant of the lease held now, as the acceptors of its majorities run it.
    held_grant: Option<LeaseGrant>,
    /// The voters whose majorities granted the lease held now.
    held_quorum: Option<Quorum>,
    /// `H`; normally `config.holder_duration_ns()`.
    holder_duration_ns: Nanos,
}

impl LeaseProposer {
    pub fn new(node: NodeId, config: LeaseConfig) -> Self {
        Self::with_holder_duration(node, config, config.holder_duration_ns())
    }

    /// Like [`LeaseProposer::new`] with an explicit `H` (only the `stale-lease-read` mutant
    /// passes anything but `config.holder_duration_ns()`).
    pub fn with_holder_duration(
        node: NodeId,
        config: LeaseConfig,
        holder_duration_ns: Nanos,
    ) -> Self {
        assert!(node > 0, "node ids start at 1");
        assert!(holder_duration_ns > 0, "a lease held for no time");
        Self {
            holder_duration_ns,
            node,
            config,
            highest_seen: Ballot::ZERO,
            attempt: Attempt::Idle,
            held_until_ns: None,
            held_grant: None,
            held_quorum: None,
        }
    }

    /// The voters whose majorities granted the lease held at `now_ns`, and their epoch.
    pub fn held_quorum(&self, now_ns: Nanos) -> Option<&Quorum> {
        self.held_until(now_ns).and(self.held_quorum.as_ref())
    }

    /// Local time until which this replica holds the lease, if it holds it at `now_ns`.
    pub fn held_until(&self, now_ns: Nanos) -> Option<Nanos> {
        self.held_until_ns.filter(|until| now_ns < *until)
    }

    /// Local time the held lease runs out, whether or not that has passed.
    pub fn holding_until_ns(&self) -> Option<Nanos> {
        self.held_until_ns
    }

    pub fn is_attempting(&self) -> bool {
        self.attempt != Attempt::Idle
    }

    /// Whom the running attempt asks: every voter it counts.
    pub fn attempt_voters(&self) -> Vec<NodeId> {
        match &self.attempt {
            Attempt::Idle => Vec::new(),
            Attempt::Preparing { quorum, .. } | Attempt::Proposing { quorum, .. } => {
                quorum.voters().into_iter().collect()
            }
        }
    }

    /// When the current attempt started, if one is running.
    pub fn attempt_started_ns(&self) -> Option<Nanos> {
        match &self.attempt {
            Attempt::Idle => None,
            Attempt::Preparing { started_ns, .. } | Attempt::Proposing { started_ns, .. } => {
                Some(*started_ns)
            }
        }
    }

    /// Starts an attempt (to acquire, or to extend a held lease) that a majority of `quorum`'s
    /// voters must grant, named by `attempt_id` (drawn at random by the caller). The timer
    /// starts now, before anything is asked.
    pub fn start(&mut self, now_ns: Nanos, quorum: Quorum, attempt_id: u64) -> ProposerAction {
        assert!(
            !self.is_attempting(),
            "a lease attempt started over a running one"
        );
        let empty = quorum.voter_sets.is_empty() || quorum.voter_sets.iter().any(|v| v.is_empty());
        assert!(!empty, "a lease asked of no voters");
        let ballot = Ballot::next_above(self.highest_seen, self.node);
        self.highest_seen = ballot;
        let epoch = quorum.epoch;
        self.attempt = Attempt::Preparing {
            ballot,
            attempt_id,
            started_ns: now_ns,
            quorum,
            promises: BTreeSet::new(),
            blocked: false,
        };
        ProposerAction::Prepare(LeasePrepare { ballot, epoch })
    }

    /// Every grant acceptors may run for this proposer that it would act on: the lease held
    /// and the one a running extension or acquisition proposed.
    pub fn grants_to_release(&self) -> Vec<LeaseGrant> {
        let proposed = match &self.attempt {
            Attempt::Proposing {
                ballot, attempt_id, ..
            } => Some(LeaseGrant {
                ballot: *ballot,
                owner: self.node,
                attempt_id: *attempt_id,
            }),
            Attempt::Idle | Attempt::Preparing { .. } => None,
        };
        self.held_grant.into_iter().chain(proposed).collect()
    }

    /// Stops holding (and extending) the lease before it runs out. Returns the grants to
    /// release ([`LeaseProposer::grants_to_release`]), which it no longer acts on: it holds no
    /// lease now, and a later one needs a new attempt with a higher ballot.
    pub fn release(&mut self) -> Vec<LeaseGrant> {
        let grants = self.grants_to_release();
        self.held_until_ns = None;
        self.held_grant = None;
        self.held_quorum = None;
        self.attempt = Attempt::Idle;
        assert!(self.held_until_ns.is_none() && !self.is_attempting());
        grants
    }

    /// Notes a ballot seen in use: the next attempt starts above it.
    pub fn note_ballot(&mut self, ballot: Ballot) {
        self.highest_seen = self.highest_seen.max(ballot);
    }

    /// Abandons the running attempt (it took too long); a held lease is kept until it runs out.
    pub fn abandon(&mut self) {
        self.attempt = Attempt::Idle;
    }

    /// Forgets a held lease whose time ran out.
    pub fn expire(&mut self, now_ns: Nanos) {
        if matches!(self.held_until_ns, Some(until) if now_ns >= until) {
            self.held_until_ns = None;
            self.held_grant = None;
            self.held_quorum = None;
        }
    }

    pub fn on_promise(&mut self, from: NodeId, msg: &LeasePromise) -> ProposerAction {
        self.highest_seen = self.highest_seen.max(msg.highest);
        let node = self.node;
        let Attempt::Preparing {
            ballot,
            attempt_id,
            started_ns,
            quorum,
            promises,
            blocked,
        } = &mut self.attempt
        else {
            return ProposerAction::None;
        };
        if msg.ballot != *ballot || !quorum.counts(from) {
            return ProposerAction::None;
        }
        if !msg.promised {
            self.attempt = Attempt::Idle;
            return ProposerAction::Failed;
        }
        if matches!(msg.open, Some(grant) if grant.owner != node) {
            *blocked = true;
        }
        promises.insert(from);
        assert!(
            promises.iter().all(|p| quorum.counts(*p)),
            "promises from outside the voters"
        );
        if !quorum.is_reached(promises) {
            return ProposerAction::None;
        }
        if *blocked {
            // Someone else's grant is still running on a member of this majority.
            self.attempt = Attempt::Idle;
            return ProposerAction::Failed;
        }
        let (ballot, attempt_id, started_ns) = (*ballot, *attempt_id, *started_ns);
        let empty = Quorum {
            epoch: 0,
            voter_sets: Vec::new(),
        };
        let quorum = std::mem::replace(quorum, empty);
        let epoch = quorum.epoch;
        self.attempt = Attempt::Proposing {
            ballot,
            attempt_id,
            started_ns,
            quorum,
            accepts: BTreeSet::new(),
        };
        ProposerAction::Propose(LeasePropose {
            ballot,
            owner: node,
            attempt_id,
            duration_ns: self.config.lease_duration_ns,
            epoch,
        })
    }

    pub fn on_accepted(&mut self, from: NodeId, msg: &LeaseAccepted) -> ProposerAction {
        self.highest_seen = self.highest_seen.max(msg.highest);
        let Attempt::Proposing {
            ballot,
            attempt_id,
            started_ns,
            quorum,
            accepts,
        } = &mut self.attempt
        else {
            return ProposerAction::None;
        };
        if msg.ballot != *ballot || !quorum.counts(from) {
            return ProposerAction::None;
        }
        if !msg.accepted {
            self.attempt = Attempt::Idle;
            return ProposerAction::Failed;
        }
        accepts.insert(from);
        assert!(
            accepts.iter().all(|a| quorum.counts(*a)),
            "acceptances from outside the voters"
        );
        if !quorum.is_reached(accepts) {
            return ProposerAction::None;
        }
        let quorum = quorum.clone();
        let grant = LeaseGrant {
            ballot: *ballot,
            owner: self.node,
            attempt_id: *attempt_id,
        };
        // Timed from the start of the attempt, before anyone was asked: never from a reply.
        let held_until_ns = started_ns.saturating_add(self.holder_duration_ns);
        // An extension started after the attempt that won the lease held now.
        assert!(self.held_until_ns.is_none_or(|held| held <= held_until_ns));
        self.attempt = Attempt::Idle;
        self.held_until_ns = Some(held_until_ns);
        self.held_grant = Some(grant);
        self.held_quorum = Some(quorum);
        ProposerAction::Acquired { held_until_ns }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quorum(voters: &[NodeId]) -> Quorum {
        Quorum {
            epoch: 0,
            voter_sets: vec![voters.iter().copied().collect()],
        }
    }

    fn config(drift_ppm: u64) -> LeaseConfig {
        LeaseConfig {
            lease_duration_ns: 1_000_000_000,
            drift_rate_max_ppm: drift_ppm,
        }
    }

    #[test]
    fn holder_duration_shrinks_with_drift_bound() {
        let cases = [
            (0, 1_000_000_000),
            (10_000, 980_198_019),
            (100_000, 818_181_818),
        ];
        for (ppm, expected) in cases {
            assert_eq!(config(ppm).holder_duration_ns(), expected, "ppm {ppm}");
        }
    }

    #[test]
    fn holder_belief_ends_before_acceptor_grant_in_true_time_at_extreme_drifts() {
        for ppm in [0, 1, 100, 10_000, 100_000] {
            let c = config(ppm);
            let rho = ppm as f64 / 1e6;
            let holder_true = c.holder_duration_ns() as f64 / (1.0 - rho);
            let acceptor_true = c.lease_duration_ns as f64 / (1.0 + rho);
            assert!(holder_true <= acceptor_true + 1e-6, "ppm {ppm}");
        }
    }

    #[test]
    fn acceptor_refuses_prepare_below_its_promise_and_reports_open_grant() {
        let mut a = LeaseAcceptor::default();
        let high = Ballot { round: 5, node: 2 };
        let low = Ballot { round: 4, node: 3 };
        assert!(
            a.on_prepare(
                0,
                &LeasePrepare {
                    ballot: high,
                    epoch: 0
                }
            )
            .promised
        );
        let propose = LeasePropose {
            ballot: high,
            owner: 2,
            attempt_id: 9,
            duration_ns: 100,
            epoch: 0,
        };
        assert!(a.on_propose(10, &propose).accepted);
        let reply = a.on_prepare(
            20,
            &LeasePrepare {
                ballot: low,
                epoch: 0,
            },
        );
        assert!(!reply.promised);
        assert_eq!(reply.open.map(|g| g.owner), Some(2));
        assert_eq!(
            a.open_grant(109),
            Some(LeaseGrant {
                ballot: high,
                owner: 2,
                attempt_id: 9,
            })
        );
        assert_eq!(a.open_grant(110), None);
    }

    #[test]
    fn acceptor_grants_only_the_ballot_it_promised_last() {
        let mut a = LeaseAcceptor::default();
        let propose = |round| LeasePropose {
            ballot: Ballot { round, node: 2 },
            owner: 2,
            attempt_id: 1,
            duration_ns: 100,
            epoch: 0,
        };
        // A stale proposal reaching a fresh (or restarted) acceptor grants nothing.
        assert!(!a.on_propose(0, &propose(7)).accepted);
        assert_eq!(a.open_grant(0), None);
        a.on_prepare(
            0,
            &LeasePrepare {
                ballot: propose(8).ballot,
                epoch: 0,
            },
        );
        assert!(!a.on_propose(0, &propose(7)).accepted, "below the promise");
        assert!(a.on_propose(0, &propose(8)).accepted, "the promised ballot");
    }

    #[test]
    fn proposer_acquires_with_majority_and_times_from_its_start() {
        let mut p = LeaseProposer::new(1, config(0));
        let ProposerAction::Prepare(prep) = p.start(1_000, quorum(&[1, 2, 3]), 7) else {
            panic!("expected prepare")
        };
        let promise = |from_open: Option<LeaseGrant>| LeasePromise {
            ballot: prep.ballot,
            promised: true,
            highest: prep.ballot,
            open: from_open,
        };
        assert_eq!(p.on_promise(1, &promise(None)), ProposerAction::None);
        let ProposerAction::Propose(prop) = p.on_promise(2, &promise(None)) else {
            panic!("expected propose")
        };
        let ok = LeaseAccepted {
            ballot: prop.ballot,
            accepted: true,
            highest: prop.ballot,
        };
        assert_eq!(p.on_accepted(3, &ok), ProposerAction::None);
        assert_eq!(
            p.on_accepted(1, &ok),
            ProposerAction::Acquired {
                held_until_ns: 1_000 + 1_000_000_000
            }
        );
        assert_eq!(p.held_until(1_000_000_999), Some(1_000_001_000));
        assert_eq!(p.held_until(1_000_001_000), None);
    }

    #[test]
    fn proposer_fails_when_a_majority_member_reports_another_owners_open_grant() {
        let mut p = LeaseProposer::new(1, config(0));
        let ProposerAction::Prepare(prep) = p.start(0, quorum(&[1, 2, 3]), 7) else {
            panic!("expected prepare")
        };
        let other = LeaseGrant {
            ballot: Ballot { round: 1, node: 3 },
            owner: 3,
            attempt_id: 1,
        };
        let open = LeasePromise {
            ballot: prep.ballot,
            promised: true,
            highest: prep.ballot,
            open: Some(other),
        };
        let clear = LeasePromise {
            open: None,
            ..open.clone()
        };
        assert_eq!(p.on_promise(2, &open), ProposerAction::None);
        assert_eq!(p.on_promise(1, &clear), ProposerAction::Failed);
        assert!(!p.is_attempting());
    }

    /// An acceptor holding `owner`'s grant of `round` and attempt `attempt_id`, promised to it.
    fn granting(owner: NodeId, round: u64, attempt_id: u64) -> (LeaseAcceptor, LeaseGrant) {
        let mut a = LeaseAcceptor::default();
        let ballot = Ballot { round, node: owner };
        a.on_prepare(0, &LeasePrepare { ballot, epoch: 0 });
        let propose = LeasePropose {
            ballot,
            owner,
            attempt_id,
            duration_ns: 1_000,
            epoch: 0,
        };
        assert!(a.on_propose(0, &propose).accepted);
        let grant = LeaseGrant {
            ballot,
            owner,
            attempt_id,
        };
        (a, grant)
    }

    fn release(grant: LeaseGrant) -> LeaseRelease {
        LeaseRelease {
            grant,
            successor: None,
        }
    }

    #[test]
    fn acceptor_forgets_a_grant_its_owner_releases_and_a_duplicate_changes_nothing() {
        let (mut a, grant) = granting(2, 5, 11);
        assert!(a.on_release(2, &release(grant)));
        assert_eq!(a.open_grant(1), None);
        assert!(
            !a.on_release(2, &release(grant)),
            "a duplicate finds nothing"
        );
        // A proposer finds no open grant at once.
        let ballot = Ballot { round: 6, node: 3 };
        let reply = a.on_prepare(1, &LeasePrepare { ballot, epoch: 0 });
        assert!(reply.promised && reply.open.is_none());
    }

    #[test]
    fn acceptor_keeps_a_grant_a_release_does_not_name_exactly() {
        let (mut a, grant) = granting(2, 5, 11);
        let earlier_ballot = LeaseGrant {
            ballot: Ballot { round: 4, node: 2 },
            ..grant
        };
        let later_ballot = LeaseGrant {
            ballot: Ballot { round: 6, node: 2 },
            ..grant
        };
        // Same ballot and owner, asked for by an earlier run of the owner.
        let other_attempt = LeaseGrant {
            attempt_id: 12,
            ..grant
        };
        for stale in [earlier_ballot, later_ballot, other_attempt] {
            assert!(!a.on_release(2, &release(stale)), "{stale:?}");
            assert_eq!(a.open_grant(1), Some(grant));
        }
        // Only the owner releases its grant.
        assert!(!a.on_release(3, &release(grant)));
        assert_eq!(a.open_grant(1), Some(grant));
    }

    #[test]
    fn a_release_delayed_past_the_owners_next_grant_leaves_that_grant_running() {
        let (mut a, first) = granting(2, 5, 11);
        let ballot = Ballot { round: 7, node: 2 };
        a.on_prepare(10, &LeasePrepare { ballot, epoch: 0 });
        let extend = LeasePropose {
            ballot,
            owner: 2,
            attempt_id: 12,
            duration_ns: 1_000,
            epoch: 0,
        };
        assert!(a.on_propose(10, &extend).accepted);
        assert!(!a.on_release(2, &release(first)));
        assert_eq!(a.open_grant(20).map(|g| g.ballot), Some(ballot));
    }

    /// Runs `p`'s attempt over voters 1-3 to the point where it proposed; returns the proposal.
    fn propose_over(p: &mut LeaseProposer, now_ns: Nanos, attempt_id: u64) -> LeasePropose {
        let ProposerAction::Prepare(prep) = p.start(now_ns, quorum(&[1, 2, 3]), attempt_id) else {
            panic!("expected prepare")
        };
        let promise = LeasePromise {
            ballot: prep.ballot,
            promised: true,
            highest: prep.ballot,
            open: None,
        };
        p.on_promise(2, &promise);
        let ProposerAction::Propose(prop) = p.on_promise(3, &promise) else {
            panic!("expected propose")
        };
        prop
    }

    fn accept_by_majority(p: &mut LeaseProposer, prop: &LeasePropose) -> ProposerAction {
        let ok = LeaseAccepted {
            ballot: prop.ballot,
            accepted: true,
            highest: prop.ballot,
        };
        p.on_accepted(2, &ok);
        p.on_accepted(3, &ok)
    }

    #[test]
    fn a_releasing_holder_holds_nothing_and_names_the_held_grant_and_a_running_extensions() {
        let mut p = LeaseProposer::new(1, config(0));
        let first = propose_over(&mut p, 0, 21);
        assert!(matches!(
            accept_by_majority(&mut p, &first),
            ProposerAction::Acquired { .. }
        ));
        let extension = propose_over(&mut p, 500_000_000, 22);
        let grants = p.release();
        let named = |prop: &LeasePropose| LeaseGrant {
            ballot: prop.ballot,
            owner: 1,
            attempt_id: prop.attempt_id,
        };
        assert_eq!(grants, vec![named(&first), named(&extension)]);
        assert_eq!(p.held_until(500_000_001), None);
        assert!(!p.is_attempting());
        // The extension's acceptances, arriving now, win nothing back.
        assert_eq!(accept_by_majority(&mut p, &extension), ProposerAction::None);
        assert_eq!(p.held_until(500_000_001), None);
        assert!(p.release().is_empty(), "nothing left to release");
    }
}
