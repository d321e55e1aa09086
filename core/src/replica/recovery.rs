//! Recovery of a replica whose storage failed verification, finding out what it may have
//! forgotten.
//!
//! It neither promises nor accepts (it is as good as down to the log's quorums), nor grants a
//! lease (it may have forgotten a change, and with it the refusal a stale proposer is owed),
//! until:
//! 1. every other replica has reported, and fewer than a majority (this one included) are
//!    recovering. Any quorum this replica was part of then holds a trusted reporter, and every
//!    proposer is a replica that raises its own promise to its ballot before asking anyone, so
//!    the highest trusted promise covers any promise this replica gave and forgot; and
//! 2. it has learned as chosen every slot up to the highest trusted log end: a value it
//!    accepted, forgot, and that may be chosen was accepted by a quorum, so by a trusted
//!    reporter too, and a master elected without this replica finishes that slot.
//!
//! Then it raises its promise to the highest trusted one and votes again. If a peer is down, or
//! a majority is recovering (more than the fault budget), this never completes: the replica
//! stays out rather than vote on state it cannot trust. (Paxos Made Live's rebuild as a
//! non-voter skips step 1 and is unsafe; see "Protocol-Aware Recovery for Consensus-Based
//! Storage", FAST'18.)

use std::collections::BTreeMap;

use crate::membership::MEMBERS_MAX;
use crate::msg::{RecoveryQuery, RecoveryReport};
use crate::types::{majority, Ballot, Nanos, NodeId, Slot};

/// What the trusted reports said, once every peer reported.
pub(super) struct Findings {
    /// The highest promise among them.
    pub(super) promised: Option<Ballot>,
    /// The replica that has chosen furthest, and how far.
    pub(super) ahead: Option<(Slot, NodeId)>,
}

pub(super) struct StorageRecovery {
    nonce: u64,
    reports: BTreeMap<NodeId, RecoveryReport>,
    /// Once every peer reported: the slot this replica must have learned through.
    horizon: Option<Slot>,
    query_at_ns: Nanos,
}

impl StorageRecovery {
    /// A recovery named by `nonce` that asks its peers at once.
    pub(super) fn new(nonce: u64, now_ns: Nanos) -> Self {
        Self {
            nonce,
            reports: BTreeMap::new(),
            horizon: None,
            query_at_ns: now_ns,
        }
    }

    /// When to ask the peers again, while not every one has reported.
    pub(super) fn query_at_ns(&self) -> Option<Nanos> {
        self.horizon.is_none().then_some(self.query_at_ns)
    }

    /// The peers to ask at `now_ns` and what, if asking is due: whoever has not answered, or
    /// answered while recovering itself.
    pub(super) fn queries(
        &mut self,
        now_ns: Nanos,
        retry_interval_ns: Nanos,
        nodes: &[NodeId],
        me: NodeId,
    ) -> Option<(Vec<NodeId>, RecoveryQuery)> {
        if self.horizon.is_some() || now_ns < self.query_at_ns {
            return None;
        }
        self.query_at_ns = now_ns + retry_interval_ns;
        let query = RecoveryQuery { nonce: self.nonce };
        let trusted = |n: &NodeId| self.reports.get(n).is_some_and(|r| r.trusted);
        let others = nodes.iter().filter(|n| **n != me);
        let silent: Vec<NodeId> = others.clone().filter(|n| !trusted(n)).copied().collect();
        if silent.is_empty() {
            // Every voter reported, but a report was of a later configuration: ask again
            // once caught up with it.
            return Some((others.copied().collect(), query));
        }
        Some((silent, query))
    }

    /// Notes a report; returns what the trusted ones say once every peer reported and fewer
    /// than a majority are recovering.
    pub(super) fn on_report(
        &mut self,
        from: NodeId,
        msg: RecoveryReport,
        voters: &[NodeId],
        me: NodeId,
        epoch: u64,
    ) -> Option<Findings> {
        if msg.nonce != self.nonce || self.horizon.is_some() {
            return None;
        }
        assert!(
            msg.log_end_slot >= msg.chosen_through,
            "a log ending below its chosen slots"
        );
        if self.reports.len() >= MEMBERS_MAX && !self.reports.contains_key(&from) {
            return None;
        }
        self.reports.insert(from, msg);
        // Every other voter reported, and fewer than a majority of them (this one included)
        // recover: then the trusted ones hold whatever a majority made durable.
        let mut others = voters.iter().filter(|v| **v != me);
        let all_reported = others.all(|v| self.reports.contains_key(v));
        let untrusted = voters
            .iter()
            .filter(|v| self.reports.get(v).is_some_and(|r| !r.trusted))
            .count();
        if !all_reported || untrusted + 1 >= majority(voters.len()) {
            return None;
        }
        // A reporter knows a later configuration: these voters may not be the ones in force.
        // Catch up from it first; the next round of reports decides.
        let newest = self
            .reports
            .iter()
            .filter(|(_, r)| r.trusted)
            .max_by_key(|(_, r)| r.epoch);
        if let Some((node, report)) = newest.filter(|(_, r)| r.epoch > epoch) {
            let ahead = Some((report.chosen_through, *node));
            return Some(Findings {
                promised: None,
                ahead,
            });
        }
        let trusted = || {
            self.reports
                .iter()
                .filter(|(n, r)| r.trusted && voters.contains(n))
        };
        let horizon = trusted().map(|(_, r)| r.log_end_slot).max();
        let promised = trusted().map(|(_, r)| r.promised).max();
        let ahead = trusted().map(|(n, r)| (r.chosen_through, *n)).max();
        assert!(horizon.is_some(), "a majority reported trusted");
        self.horizon = horizon;
        Some(Findings { promised, ahead })
    }

    /// Whether a replica chosen through `chosen_through` has recovered.
    pub(super) fn is_caught_up(&self, chosen_through: Slot) -> bool {
        self.horizon.is_some_and(|h| chosen_through >= h)
    }

    /// Reports come only from the other members, and a horizon only once all of them reported.
    pub(super) fn check_invariants(&self, me: NodeId) {
        assert!(
            self.reports.len() <= MEMBERS_MAX,
            "reports beyond the members"
        );
        assert!(!self.reports.contains_key(&me), "a report from itself");
        if let Some(horizon) = self.horizon {
            assert!(
                !self.reports.is_empty() || horizon == 0,
                "horizon before any report"
            );
        }
    }
}
