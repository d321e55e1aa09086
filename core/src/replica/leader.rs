//! The proposer side of the Multi-Paxos log: state a replica keeps only while it holds the
//! lease and leads the log.
//!
//! One mastership runs phase 1 once over every slot not known chosen, re-proposes what earlier
//! ballots may have chosen (filling gaps with no-ops), opens with a no-op of its own, and then
//! keeps at most `window_max` slots in phase 2, each a batch of client writes or a checkpoint.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::config::ReplicaConfig;
use crate::command::{ClientId, ClientRequest, ClientResponse, Outcome, Rejection, Reply, Seq};
use crate::membership::{Configuration, MemberProgress, Reconfigure, MEMBERS_MAX};
use crate::msg::{Accept, Accepted, Commit, LogValue, Message, Prepare, Promise, SlotReport};
use crate::mutant::{self, Mutant};
use crate::types::{Ballot, Nanos, NodeId, Slot};

/// The master's time for what it proposes now (see `route_log::stamp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Stamp {
    /// Unix milliseconds, never below the applied state's time.
    pub(super) now_ms: u64,
    /// Some key's deadline is before `now_ms`: an entry should reclaim it.
    pub(super) expiry_due: bool,
}

struct InFlight {
    value: LogValue,
    acks: BTreeSet<NodeId>,
}

enum LeaderPhase {
    Preparing {
        from_slot: Slot,
        promises: BTreeMap<NodeId, Promise>,
        /// The configuration applied when phase 1 began.
        base: Configuration,
        /// The voters of every configuration the promises so far revealed: asked to promise.
        asked: BTreeSet<NodeId>,
    },
    Active,
}

/// How phase 1 stands after a promise.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum PrepareStatus {
    /// Short of a majority of some configuration in force from phase 1's first slot on;
    /// `ask` lists voters revealed just now that were not asked yet.
    Waiting { ask: Vec<NodeId> },
    /// A majority of every such configuration promised: call [`Leader::finish_prepare`].
    Done,
    /// A promise comes from a configuration later than any this mastership can account for
    /// (a change hides in slots compacted away): step down and catch up first.
    Outdated,
}

/// A client's membership change, waiting for the window to drain or in the log.
struct PendingChange {
    client_id: ClientId,
    seq: Seq,
    reconfigure: Reconfigure,
    slot: Option<Slot>,
}

/// Most membership changes queued at the master: one (a second waits for the first to apply).
const CHANGES_QUEUED_MAX: usize = 2;

pub(super) struct Leader {
    ballot: Ballot,
    phase: LeaderPhase,
    /// The local time this mastership started.
    started_ns: Nanos,
    /// The first slot this mastership may propose in (phase 1 starts there).
    first_slot: Slot,
    /// The no-op slot that opens this mastership; reads wait until it is applied.
    ready_slot: Slot,
    next_slot: Slot,
    /// Slots to (re)propose before any new command: earlier ballots' values, then the no-op.
    recovery: VecDeque<(Slot, LogValue)>,
    inflight: BTreeMap<Slot, InFlight>,
    pending: VecDeque<ClientRequest>,
    pending_reads: VecDeque<ClientRequest>,
    /// Requests put in the log under this mastership and not yet answered.
    awaiting: BTreeSet<(ClientId, Seq)>,
    /// The slot the last checkpoint this mastership proposed was taken at.
    last_checkpoint: Slot,
    /// A change is in the log at this slot: nothing above it is proposed until it is applied,
    /// so every slot in the window is governed by the configuration applied.
    hold_slot: Option<Slot>,
    /// Client membership changes, oldest first.
    changes: VecDeque<PendingChange>,
    /// What this mastership last heard from each member.
    progress: BTreeMap<NodeId, MemberProgress>,
    retransmit_at_ns: Nanos,
    heartbeat_at_ns: Nanos,
}

impl Leader {
    /// A mastership in `ballot` that starts phase 1 at `from_slot`, with the prepare to send.
    pub(super) fn start(
        ballot: Ballot,
        from_slot: Slot,
        applied_through: Slot,
        now_ns: Nanos,
        config: &ReplicaConfig,
        base: &Configuration,
    ) -> (Leader, Prepare) {
        assert_eq!(ballot.node, config.node_id, "a ballot of another replica");
        assert!(from_slot > applied_through, "phase 1 over applied slots");
        let leader = Leader {
            ballot,
            started_ns: now_ns,
            phase: LeaderPhase::Preparing {
                from_slot,
                promises: BTreeMap::new(),
                base: base.clone(),
                asked: base.voters().collect(),
            },
            first_slot: from_slot,
            ready_slot: Slot::MAX,
            next_slot: from_slot,
            recovery: VecDeque::new(),
            inflight: BTreeMap::new(),
            pending: VecDeque::new(),
            pending_reads: VecDeque::new(),
            awaiting: BTreeSet::new(),
            last_checkpoint: applied_through,
            hold_slot: None,
            changes: VecDeque::new(),
            progress: BTreeMap::new(),
            retransmit_at_ns: now_ns + config.retransmit_interval_ns,
            heartbeat_at_ns: now_ns + config.heartbeat_interval_ns,
        };
        (leader, Prepare { ballot, from_slot })
    }

    pub(super) fn ballot(&self) -> Ballot {
        self.ballot
    }

    /// Whether this mastership started less than `window_ns` before `now_ns`: it may not have
    /// heard every member's progress yet.
    pub(super) fn is_younger_than(&self, window_ns: Nanos, now_ns: Nanos) -> bool {
        now_ns < self.started_ns.saturating_add(window_ns)
    }

    /// Whether reads may be served: phase 1 is done and the opening no-op is applied.
    pub(super) fn is_ready(&self, applied_through: Slot) -> bool {
        matches!(self.phase, LeaderPhase::Active) && applied_through >= self.ready_slot
    }

    /// When the leader next retransmits and next sends a heartbeat.
    pub(super) fn deadlines_ns(&self) -> [Nanos; 2] {
        [self.retransmit_at_ns, self.heartbeat_at_ns]
    }

    /// Notes a promise. Phase 1 is done once a majority of the voters of every configuration
    /// in force from its first slot on promised: the one applied, then each one a change the
    /// promises report makes (so a change accepted by a majority of one configuration is
    /// found, and the next configuration's majority asked in turn).
    pub(super) fn on_promise(&mut self, from: NodeId, msg: Promise) -> PrepareStatus {
        let waiting = PrepareStatus::Waiting { ask: Vec::new() };
        let LeaderPhase::Preparing {
            promises,
            base,
            asked,
            ..
        } = &mut self.phase
        else {
            return waiting;
        };
        if msg.ballot != self.ballot {
            return waiting;
        }
        let from_slot = msg.from_slot;
        promises.insert(from, msg);
        // Changes that do not chain yet are settled by more promises (higher ballots).
        let Some(view) = Phase1View::of(base, promises, from_slot) else {
            return waiting;
        };
        let top_epoch = view.chain.last().expect("the base at least").1.epoch;
        if promises.values().any(|p| p.epoch > top_epoch) {
            return PrepareStatus::Outdated;
        }
        if view.is_complete(promises) {
            return PrepareStatus::Done;
        }
        let voters = view
            .chain
            .iter()
            .flat_map(|(_, c)| c.voters().collect::<Vec<_>>());
        let ask: Vec<NodeId> = voters.filter(|v| asked.insert(*v)).collect();
        PrepareStatus::Waiting { ask }
    }

    /// Phase 1 reached a majority: queues whatever earlier ballots may have chosen, no-ops in
    /// the gaps, and this mastership's own no-op. Returns the highest compaction point a
    /// promise reported and who reported it (slots up to there are chosen already), and the
    /// values reported chosen in every slot from phase 1's first on (to learn, not propose).
    pub(super) fn finish_prepare(
        &mut self,
        me: NodeId,
        active: Option<Mutant>,
    ) -> (Slot, NodeId, Vec<(Slot, LogValue)>) {
        let phase = std::mem::replace(&mut self.phase, LeaderPhase::Active);
        let LeaderPhase::Preparing {
            from_slot,
            promises,
            base,
            ..
        } = phase
        else {
            unreachable!("finish_prepare outside phase 1");
        };
        let view = Phase1View::of(&base, &promises, from_slot).expect("changes that chain");
        assert!(
            view.is_complete(&promises),
            "phase 1 finished short of a quorum"
        );
        // Slots some acceptor compacted away are chosen already: never propose in them.
        let (compacted, holder) = promises
            .iter()
            .map(|(node, p)| (p.compacted_through, *node))
            .max()
            .unwrap_or((0, me));
        let mut found: BTreeMap<Slot, (Option<Ballot>, LogValue)> = BTreeMap::new();
        for report in promises.into_values().flat_map(|p| p.slots) {
            merge_report(&mut found, report);
        }
        if mutant::is(active, Mutant::SkipRecovery) {
            found.clear(); // wrong on purpose: forgets what earlier ballots may have chosen
        }
        let first_slot = from_slot.max(compacted + 1);
        let last_found = found.keys().next_back().copied().unwrap_or(0);
        let end_slot = last_found.max(first_slot - 1);
        let mut learned = Vec::new();
        for slot in first_slot..=end_slot {
            match found.remove(&slot) {
                // Reported chosen, after chosen slots only: learned at once (the change among
                // them may have left their configuration without a reachable majority).
                Some((None, value)) if slot <= view.chosen_through => learned.push((slot, value)),
                found => {
                    let value = found.map_or(LogValue::Noop, |(_, v)| v);
                    self.recovery.push_back((slot, value));
                }
            }
        }
        assert!(
            end_slot >= compacted,
            "a mastership proposing in compacted slots"
        );
        self.ready_slot = end_slot + 1;
        self.recovery.push_back((end_slot + 1, LogValue::Noop));
        self.next_slot = end_slot + 2;
        (compacted, holder, learned)
    }

    /// The next slot to put in phase 2 while the window has room: recovery slots first, then a
    /// client's membership change once every slot before it is applied, then a due checkpoint
    /// of `last_state_hash` (slot, hash), then a batch of pending writes. Nothing goes above a
    /// change until it is applied.
    pub(super) fn next_accept(
        &mut self,
        last_state_hash: Option<(Slot, u64)>,
        config: &ReplicaConfig,
        applied_through: Slot,
        stamp: Stamp,
    ) -> Option<Accept> {
        if !matches!(self.phase, LeaderPhase::Active) || self.inflight.len() >= config.window_max {
            return None;
        }
        if let Some(hold) = self.hold_slot {
            if applied_through < hold {
                return None;
            }
            self.hold_slot = None;
        }
        let (slot, value) = if let Some(next) = self.recovery.pop_front() {
            next
        } else if let Some(next) = self.take_change(applied_through, config.mutant) {
            next
        } else if self.changes.front().is_some_and(|c| c.slot.is_none()) {
            return None; // the window drains for the change
        } else {
            self.next_new_value(last_state_hash, config, stamp)?
        };
        if matches!(value, LogValue::Reconfigure(_)) {
            self.hold_slot = Some(slot);
        }
        let entry = InFlight {
            value: value.clone(),
            acks: BTreeSet::new(),
        };
        assert!(
            self.inflight.insert(slot, entry).is_none(),
            "slot {slot} proposed twice"
        );
        let ballot = self.ballot;
        Some(Accept {
            ballot,
            slot,
            value,
        })
    }

    /// A due checkpoint, else a batch of pending writes stamped with the master's time, in the
    /// next slot; with no writes pending, an empty stamped batch when a key is due and nothing
    /// is in flight (it reclaims expired keys; one at a time, so an idle store's log grows
    /// only while keys come due).
    fn next_new_value(
        &mut self,
        last_state_hash: Option<(Slot, u64)>,
        config: &ReplicaConfig,
        stamp: Stamp,
    ) -> Option<(Slot, LogValue)> {
        let interval = config.checkpoint_interval_slots;
        let checkpoint = last_state_hash.filter(|(at, _)| *at >= self.last_checkpoint + interval);
        if let Some((at_slot, state_hash)) = checkpoint {
            self.last_checkpoint = at_slot;
            let value = LogValue::Checkpoint {
                at_slot,
                state_hash,
            };
            return Some((self.take_slot(), value));
        }
        if self.pending.is_empty() {
            if stamp.expiry_due && self.inflight.is_empty() {
                let requests: Vec<ClientRequest> = Vec::new();
                let value = LogValue::TimedBatch {
                    now_ms: stamp.now_ms,
                    requests: requests.into(),
                };
                return Some((self.take_slot(), value));
            }
            return None;
        }
        let take = batch_len(
            &self.pending,
            config.batch_commands_max,
            config.batch_bytes_max,
        );
        let batch: Vec<ClientRequest> = self.pending.drain(..take).collect();
        for request in &batch {
            self.awaiting.insert((request.client_id, request.seq));
        }
        let value = LogValue::TimedBatch {
            now_ms: stamp.now_ms,
            requests: batch.into(),
        };
        Some((self.take_slot(), value))
    }

    /// The queued membership change, once every slot before it is applied (so the
    /// configuration it was checked against governs its slot) and the mastership is ready
    /// (a value of its own ballot is chosen).
    fn take_change(
        &mut self,
        applied_through: Slot,
        active: Option<Mutant>,
    ) -> Option<(Slot, LogValue)> {
        let at_once = mutant::is(active, Mutant::SecondChangeWhilePending);
        let index = self.changes.iter().position(|c| c.slot.is_none())?;
        let drained = self.inflight.is_empty() && applied_through + 1 == self.next_slot;
        if !at_once && (index > 0 || !drained || !self.is_ready(applied_through)) {
            return None;
        }
        let slot = self.take_slot();
        let change = &mut self.changes[index];
        change.slot = Some(slot);
        Some((slot, LogValue::Reconfigure(change.reconfigure.clone())))
    }

    /// Queues a client's membership change, already checked against the configuration
    /// applied; refused while another is queued or in the log.
    pub(super) fn queue_change(
        &mut self,
        request: &ClientRequest,
        reconfigure: Reconfigure,
        active: Option<Mutant>,
    ) -> Result<(), crate::membership::ChangeError> {
        let second_on_purpose = mutant::is(active, Mutant::SecondChangeWhilePending);
        let busy = !self.changes.is_empty() || self.hold_slot.is_some();
        if (busy && !second_on_purpose) || self.changes.len() >= CHANGES_QUEUED_MAX {
            return Err(crate::membership::ChangeError::InProgress);
        }
        self.changes.push_back(PendingChange {
            client_id: request.client_id,
            seq: request.seq,
            reconfigure,
            slot: None,
        });
        Ok(())
    }

    /// The change applied at `slot` made `epoch`: the answer to the client that asked for
    /// it, if this mastership proposed it.
    pub(super) fn change_applied(&mut self, slot: Slot, epoch: u64) -> Option<ClientResponse> {
        let index = self.changes.iter().position(|c| c.slot == Some(slot))?;
        let change = self.changes.remove(index).expect("found");
        Some(ClientResponse {
            client_id: change.client_id,
            seq: change.seq,
            outcome: Outcome::Done(Reply::Int(epoch as i64)),
        })
    }

    /// Whether a change is queued or in the log.
    pub(super) fn change_pending(&self) -> bool {
        !self.changes.is_empty() || self.hold_slot.is_some()
    }

    /// `from` was heard at `now_ns`, having learned through `chosen_through` and holding every
    /// chosen value durably through `durable_through`.
    pub(super) fn note_progress(&mut self, from: NodeId, now_ns: Nanos, reached: (Slot, Slot)) {
        if self.progress.len() >= MEMBERS_MAX && !self.progress.contains_key(&from) {
            return;
        }
        let (chosen_through, durable_through) = reached;
        assert!(
            durable_through <= chosen_through || chosen_through == 0,
            "a snapshot beyond what the member learned"
        );
        let entry = self.progress.entry(from).or_insert(MemberProgress {
            heard_ns: now_ns,
            chosen_through,
            durable_through,
        });
        entry.heard_ns = now_ns;
        entry.chosen_through = entry.chosen_through.max(chosen_through);
        entry.durable_through = entry.durable_through.max(durable_through);
    }

    /// The slot through which all of `config`'s full voters durably hold every chosen value,
    /// as far as this mastership heard (`own_durable_slot` is the master's own); what witnesses
    /// compact to.
    pub(super) fn durable_floor(
        &self,
        config: &Configuration,
        me: NodeId,
        own_durable_slot: Slot,
    ) -> Slot {
        crate::membership::full_durable_floor(config, |id| match id == me {
            true => own_durable_slot,
            false => self.progress.get(&id).map_or(0, |p| p.durable_through),
        })
    }

    /// What this mastership last heard from each member.
    pub(super) fn progress(&self) -> &BTreeMap<NodeId, MemberProgress> {
        &self.progress
    }

    /// Forgets the progress of replicas that are no longer members.
    pub(super) fn retain_progress(&mut self, members: &Configuration) {
        self.progress.retain(|id, _| members.is_member(*id));
    }

    fn take_slot(&mut self) -> Slot {
        let slot = self.next_slot;
        self.next_slot += 1;
        slot
    }

    /// Notes an acceptance; returns the slot and its value once a majority of the voters of
    /// `in_force` (the configuration applied, which governs every slot in the window) accepted
    /// it.
    pub(super) fn on_accepted(
        &mut self,
        from: NodeId,
        msg: &Accepted,
        in_force: &Configuration,
        active: Option<Mutant>,
    ) -> Option<(Slot, LogValue)> {
        if msg.ballot != self.ballot {
            return None;
        }
        let entry = self.inflight.get_mut(&msg.slot)?;
        entry.acks.insert(from);
        let minority_on_purpose = mutant::is(active, Mutant::MinorityCommit);
        if !in_force.is_quorum(&entry.acks) && !minority_on_purpose {
            return None;
        }
        let entry = self.inflight.remove(&msg.slot).expect("entry exists");
        Some((msg.slot, entry.value))
    }

    /// Moves the requests this mastership logged and that `responses` answer to `replies`.
    pub(super) fn answer(&mut self, responses: Vec<ClientResponse>) -> Vec<ClientResponse> {
        let awaiting = &mut self.awaiting;
        responses
            .into_iter()
            .filter(|r| awaiting.remove(&(r.client_id, r.seq)))
            .collect()
    }

    /// The heartbeat to send at `now_ns`, if one is due.
    pub(super) fn heartbeat(
        &mut self,
        now_ns: Nanos,
        interval_ns: Nanos,
        chosen_through: Slot,
        durable_floor: Slot,
    ) -> Option<Commit> {
        if now_ns < self.heartbeat_at_ns {
            return None;
        }
        self.heartbeat_at_ns = now_ns + interval_ns;
        Some(Commit {
            ballot: self.ballot,
            chosen_through,
            durable_floor,
        })
    }

    /// Unanswered prepares (to the voters asked) and accepts (to `nodes`, the members) to send
    /// again at `now_ns`, if retransmission is due, each to the replicas that have not answered.
    pub(super) fn retransmissions(
        &mut self,
        now_ns: Nanos,
        interval_ns: Nanos,
        nodes: &[NodeId],
    ) -> Vec<(NodeId, Message)> {
        if now_ns < self.retransmit_at_ns {
            return Vec::new();
        }
        self.retransmit_at_ns = now_ns + interval_ns;
        let ballot = self.ballot;
        let mut sends = Vec::new();
        match &self.phase {
            LeaderPhase::Preparing {
                from_slot,
                promises,
                asked,
                ..
            } => {
                let msg = Message::Prepare(Prepare {
                    ballot,
                    from_slot: *from_slot,
                });
                for to in asked.iter().filter(|n| !promises.contains_key(n)) {
                    sends.push((*to, msg.clone()));
                }
            }
            LeaderPhase::Active => {
                for (slot, entry) in &self.inflight {
                    let accept = Accept {
                        ballot,
                        slot: *slot,
                        value: entry.value.clone(),
                    };
                    for to in nodes.iter().filter(|n| !entry.acks.contains(n)) {
                        sends.push((*to, Message::Accept(accept.clone())));
                    }
                }
            }
        }
        sends
    }

    /// Queues a write for the next batch; gives it back if the queue is full.
    pub(super) fn enqueue_write(
        &mut self,
        request: ClientRequest,
        pending_max: usize,
    ) -> Result<(), ClientRequest> {
        if self.pending.len() >= pending_max {
            return Err(request);
        }
        self.pending.push_back(request);
        Ok(())
    }

    /// Queues a read until the mastership is ready; gives it back if the queue is full.
    pub(super) fn enqueue_read(
        &mut self,
        request: ClientRequest,
        pending_max: usize,
    ) -> Result<(), ClientRequest> {
        if self.pending_reads.len() >= pending_max {
            return Err(request);
        }
        self.pending_reads.push_back(request);
        Ok(())
    }

    /// The reads that waited for this mastership, once it is ready at `applied_through`.
    pub(super) fn take_ready_reads(&mut self, applied_through: Slot) -> Vec<ClientRequest> {
        if !self.is_ready(applied_through) {
            return Vec::new();
        }
        self.pending_reads.drain(..).collect()
    }

    /// Ends the mastership. Requests already in the log may still be chosen: their clients
    /// hear `Indeterminate`; requests never logged are refused, naming `hint` as the master.
    pub(super) fn step_down(self, hint: Option<NodeId>) -> Vec<ClientResponse> {
        let unknown = self
            .awaiting
            .into_iter()
            .map(|(client_id, seq)| ClientResponse {
                client_id,
                seq,
                outcome: Outcome::Indeterminate,
            });
        let changes = self.changes.into_iter().map(|change| ClientResponse {
            client_id: change.client_id,
            seq: change.seq,
            outcome: match change.slot {
                Some(_) => Outcome::Indeterminate,
                None => Outcome::Rejected(Rejection::NotMaster { master_hint: hint }),
            },
        });
        let unknown = unknown.chain(changes);
        let refused = Outcome::Rejected(Rejection::NotMaster { master_hint: hint });
        let queued = self.pending.into_iter().chain(self.pending_reads);
        let refusals = queued.map(|request| ClientResponse {
            client_id: request.client_id,
            seq: request.seq,
            outcome: refused.clone(),
        });
        unknown.chain(refusals).collect()
    }

    /// The window and the queues within their maxima, slots in the order this mastership
    /// hands them out, and phase 1 still short of a majority while it runs.
    pub(super) fn check_invariants(&self, config: &ReplicaConfig, applied_through: Slot) {
        assert_eq!(self.ballot.node, config.node_id);
        assert!(self.inflight.len() <= config.window_max, "window overfull");
        assert!(self.pending.len() <= config.pending_requests_max);
        assert!(self.pending_reads.len() <= config.pending_requests_max);
        assert!(self.last_checkpoint <= applied_through);
        assert!(self.changes.len() <= CHANGES_QUEUED_MAX && self.progress.len() <= MEMBERS_MAX);
        if let Some(hold) = self.hold_slot {
            // Nothing above a change until it is applied.
            let last = self.inflight.last_key_value().map(|(s, _)| *s);
            let second_on_purpose = mutant::is(config.mutant, Mutant::SecondChangeWhilePending);
            assert!(
                last.is_none_or(|s| s <= hold) || applied_through >= hold || second_on_purpose,
                "slot {last:?} proposed above the change at slot {hold}, not yet applied"
            );
        }
        match &self.phase {
            LeaderPhase::Preparing {
                from_slot, asked, ..
            } => {
                assert_eq!(*from_slot, self.first_slot);
                assert!(asked.len() <= MEMBERS_MAX * 2, "phase 1 asked too many");
                assert!(self.inflight.is_empty() && self.recovery.is_empty());
                assert!(self.hold_slot.is_none() && self.changes.iter().all(|c| c.slot.is_none()));
                assert_eq!(self.ready_slot, Slot::MAX);
                assert!(self.awaiting.is_empty(), "nothing is logged before phase 2");
            }
            LeaderPhase::Active => {
                assert!(self.ready_slot < self.next_slot && self.first_slot < self.next_slot);
                let first = self.inflight.first_key_value().map(|(s, _)| *s);
                let last = self.inflight.last_key_value().map(|(s, _)| *s);
                assert!(
                    first.is_none_or(|s| s >= self.first_slot),
                    "slot below phase 1"
                );
                assert!(
                    last.is_none_or(|s| s < self.next_slot),
                    "slot not handed out"
                );
                let queued = self.recovery.back().map(|(s, _)| *s);
                assert!(queued.is_none_or(|s| s < self.next_slot));
            }
        }
    }
}

/// How many requests from the front of `pending` make the next batch: at least one, at most
/// `commands_max`, and no more than `bytes_max` of payload unless the first alone exceeds it.
pub(super) fn batch_len(
    pending: &VecDeque<ClientRequest>,
    commands_max: usize,
    bytes_max: usize,
) -> usize {
    assert!(!pending.is_empty() && commands_max > 0, "an empty batch");
    let mut bytes = 0usize;
    let fitting = pending.iter().take(commands_max).take_while(|request| {
        bytes += request.command.payload_bytes();
        bytes <= bytes_max
    });
    fitting.count().max(1)
}

/// What the promises of a phase 1 reveal: the configurations in force from its first slot on,
/// and how far every slot is known chosen.
struct Phase1View {
    /// Each configuration with the first slot it governs: `base` (the one applied), then the
    /// one each change found above every compaction point makes, in slot order.
    chain: Vec<(Slot, Configuration)>,
    /// Every slot through this one is chosen: compacted by a promiser, or reported chosen.
    chosen_through: Slot,
}

impl Phase1View {
    /// `None` while the changes found do not chain (a value of a higher ballot, which more
    /// promises report, settles the slot). Slots at or below a compaction point are chosen,
    /// and a change among them shows in that acceptor's epoch instead.
    fn of(
        base: &Configuration,
        promises: &BTreeMap<NodeId, Promise>,
        from_slot: Slot,
    ) -> Option<Phase1View> {
        let compacted = promises.values().map(|p| p.compacted_through).max();
        let compacted = compacted.unwrap_or(0);
        let mut found: BTreeMap<Slot, (Option<Ballot>, LogValue)> = BTreeMap::new();
        for report in promises.values().flat_map(|p| p.slots.iter()) {
            if report.slot > compacted {
                merge_report(&mut found, report.clone());
            }
        }
        let mut chosen_through = compacted.max(from_slot - 1);
        while matches!(found.get(&(chosen_through + 1)), Some((None, _))) {
            chosen_through += 1;
        }
        let mut chain = vec![(from_slot, base.clone())];
        for (slot, (_, value)) in &found {
            let LogValue::Reconfigure(change) = value else {
                continue;
            };
            let (_, last) = chain.last().expect("the base at least");
            if change.epoch != last.epoch + 1 {
                return None;
            }
            let next = last.apply(&change.change).ok()?;
            chain.push((slot + 1, next));
        }
        Some(Phase1View {
            chain,
            chosen_through,
        })
    }

    /// A majority of the voters of every configuration that governs a slot not known chosen
    /// promised (a configuration whose slots are all chosen has nothing left to decide).
    fn is_complete(&self, promises: &BTreeMap<NodeId, Promise>) -> bool {
        let governs_open_slot = |j: usize| {
            let next_first = self.chain.get(j + 1).map(|(first, _)| *first);
            next_first.is_none_or(|first| first > self.chosen_through + 1)
        };
        (0..self.chain.len())
            .filter(|&j| governs_open_slot(j))
            .all(|j| self.chain[j].1.is_quorum(promises.keys()))
    }
}

/// Keeps, per slot, a value known chosen over any merely accepted one, and among accepted
/// ones the one with the highest ballot.
pub(super) fn merge_report(
    found: &mut BTreeMap<Slot, (Option<Ballot>, LogValue)>,
    report: SlotReport,
) {
    let replace = match found.get(&report.slot) {
        None => true,
        Some((None, existing)) => {
            if report.accepted_ballot.is_none() {
                assert_eq!(existing, &report.value, "two chosen values for one slot");
            }
            false
        }
        Some((Some(b), _)) => report.accepted_ballot.is_none_or(|r| r > *b),
    };
    if replace {
        found.insert(report.slot, (report.accepted_ballot, report.value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Command;

    const NO_EXPIRY: Stamp = Stamp {
        now_ms: 1_000,
        expiry_due: false,
    };

    fn three() -> Configuration {
        Configuration::initial(&[1, 2, 3])
    }

    fn config() -> ReplicaConfig {
        let mut config = ReplicaConfig::new(1, vec![1, 2, 3]);
        config.window_max = 4;
        config.batch_commands_max = 2;
        config
    }

    fn write(seq: u64) -> ClientRequest {
        let command = Command::Set {
            key: b"k".to_vec(),
            value: vec![b'v'; 10],
        };
        ClientRequest {
            client_id: 7,
            seq,
            command,
        }
    }

    /// A leader of ballot 3.1 that finished phase 1 from slot 5 with empty promises.
    fn active_leader(config: &ReplicaConfig) -> Leader {
        let ballot = Ballot { round: 3, node: 1 };
        let (mut leader, prepare) = Leader::start(ballot, 5, 4, 0, config, &three());
        for from in [2, 3] {
            let promise = Promise {
                ballot,
                from_slot: prepare.from_slot,
                slots: Vec::new(),
                compacted_through: 0,
                epoch: 0,
            };
            leader.on_promise(from, promise);
        }
        let (compacted, holder, learned) = leader.finish_prepare(1, None);
        assert_eq!((compacted, holder), (0, 3), "nothing compacted");
        assert!(learned.is_empty());
        leader
    }

    #[test]
    fn new_master_reproposes_the_highest_ballot_value_it_finds() {
        let mut found = BTreeMap::new();
        let report = |b: u64, v: LogValue| SlotReport {
            slot: 3,
            accepted_ballot: Some(Ballot { round: b, node: 1 }),
            value: v,
        };
        let batch = LogValue::Batch(Vec::new().into());
        merge_report(&mut found, report(2, LogValue::Noop));
        merge_report(&mut found, report(5, batch.clone()));
        merge_report(&mut found, report(4, LogValue::Noop));
        assert_eq!(found[&3].1, batch);
    }

    #[test]
    fn batches_stop_at_the_command_and_byte_limits_but_always_take_one() {
        let request = |bytes: usize| ClientRequest {
            client_id: 1,
            seq: 1,
            command: Command::Set {
                key: b"k".to_vec(),
                value: vec![0; bytes],
            },
        };
        let pending: VecDeque<ClientRequest> = [10, 10, 10, 10].map(request).into();
        assert_eq!(batch_len(&pending, 3, 1_000), 3, "command limit");
        assert_eq!(
            batch_len(&pending, 10, 25),
            2,
            "byte limit: 11 + 11 <= 25 < 33"
        );
        let huge: VecDeque<ClientRequest> = [100, 1].map(request).into();
        assert_eq!(
            batch_len(&huge, 10, 50),
            1,
            "an oversized first request travels alone"
        );
    }

    #[test]
    fn a_mastership_opens_with_a_no_op_and_keeps_at_most_a_window_in_phase_two() {
        let config = config();
        let mut leader = active_leader(&config);
        for seq in 1..=20 {
            leader.enqueue_write(write(seq), 100).unwrap();
        }
        let mut accepts = Vec::new();
        while let Some(accept) = leader.next_accept(None, &config, 4, NO_EXPIRY) {
            accepts.push(accept);
        }
        let slots: Vec<Slot> = accepts.iter().map(|a| a.slot).collect();
        assert_eq!(slots, [5, 6, 7, 8], "the window is full at window_max");
        assert_eq!(accepts[0].value, LogValue::Noop, "the opening no-op");
        assert!(matches!(
            &accepts[1].value,
            LogValue::TimedBatch { now_ms: 1_000, requests } if requests.len() == 2
        ));
        assert!(!leader.is_ready(4) && leader.is_ready(5));
        leader.check_invariants(&config, 4);
        let acked = Accepted {
            ballot: leader.ballot(),
            slot: 5,
        };
        assert_eq!(
            leader.on_accepted(2, &acked, &three(), None),
            None,
            "one of two acceptances"
        );
        assert_eq!(
            leader.on_accepted(3, &acked, &three(), None),
            Some((5, LogValue::Noop))
        );
        assert_eq!(
            leader
                .next_accept(None, &config, 4, NO_EXPIRY)
                .map(|a| a.slot),
            Some(9)
        );
    }

    #[test]
    fn stepping_down_leaves_logged_requests_undecided_and_refuses_queued_ones() {
        let config = config();
        let mut leader = active_leader(&config);
        for seq in 1..=3 {
            leader.enqueue_write(write(seq), 100).unwrap();
        }
        leader.next_accept(None, &config, 4, NO_EXPIRY); // the no-op
        leader.next_accept(None, &config, 4, NO_EXPIRY); // seqs 1 and 2
        let outcomes: Vec<(Seq, Outcome)> = leader
            .step_down(Some(2))
            .into_iter()
            .map(|r| (r.seq, r.outcome))
            .collect();
        let refused = Outcome::Rejected(Rejection::NotMaster {
            master_hint: Some(2),
        });
        let expected = [
            (1, Outcome::Indeterminate),
            (2, Outcome::Indeterminate),
            (3, refused),
        ];
        assert_eq!(outcomes, expected);
    }

    #[test]
    fn a_full_queue_gives_the_request_back() {
        let config = config();
        let mut leader = active_leader(&config);
        leader.enqueue_write(write(1), 1).unwrap();
        assert_eq!(leader.enqueue_write(write(2), 1), Err(write(2)));
        assert_eq!(leader.enqueue_read(write(3), 0), Err(write(3)));
    }

    #[test]
    #[should_panic(expected = "window overfull")]
    fn the_invariant_check_catches_a_window_past_its_maximum() {
        let config = config();
        let mut leader = active_leader(&config);
        for slot in 5..10 {
            let entry = InFlight {
                value: LogValue::Noop,
                acks: BTreeSet::new(),
            };
            leader.inflight.insert(slot, entry);
        }
        leader.next_slot = 10;
        leader.check_invariants(&config, 4);
    }
}
