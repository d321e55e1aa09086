//! Messages between replicas: one struct per message, wrapped in [`Message`].
//!
//! Two independent Paxos instances run side by side:
//! - PaxosLease (`Lease*`): decides which replica holds the master lease. Its acceptor state is
//!   volatile; a restarted replica sits out one lease duration instead of persisting it.
//! - The Multi-Paxos replicated log (`Prepare` … `CatchupReply`): acceptor state (promise and
//!   accepted values) is persisted before any reply leaves.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::command::ClientRequest;
use crate::membership::Reconfigure;
use crate::snapshot::SnapshotMeta;
use crate::types::{Ballot, Nanos, NodeId, Slot};

/// The value of one log slot.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LogValue {
    /// Fills a gap or opens a mastership; changes no key.
    Noop,
    /// Client writes, applied in order as one atomic step. Shared, not copied: the master hands
    /// the same batch to its own acceptor, to each follower's message and to its in-flight
    /// table (the encoding is that of a plain sequence).
    Batch(Arc<[ClientRequest]>),
    /// The master's state hash after applying `at_slot`: every replica that applied the same
    /// slot compares its own and stops loudly on a mismatch. Changes no key.
    Checkpoint { at_slot: Slot, state_hash: u64 },
    /// A membership change: the configuration it makes governs every slot after this one.
    /// Changes no key.
    Reconfigure(Reconfigure),
    /// Client writes like `Batch`, stamped with the master's clock when it proposed them (Unix
    /// milliseconds): applying it moves the state's time to `now_ms` (never back), reclaims
    /// keys expired by then and judges every command's expiry at it. The master proposes one
    /// with no requests when a key is due, so expired keys are reclaimed through the log.
    TimedBatch {
        now_ms: u64,
        requests: Arc<[ClientRequest]>,
    },
}

// ---- PaxosLease ----------------------------------------------------------------------------

/// Lease phase 1: "promise to ignore lease ballots below `ballot`".
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LeasePrepare {
    pub ballot: Ballot,
    /// The epoch of the configuration whose voters the proposer counts.
    pub epoch: u64,
}

/// A lease that an acceptor has accepted and whose timer is still running.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LeaseGrant {
    pub ballot: Ballot,
    pub owner: NodeId,
    /// Drawn at random by the owner for the attempt that asked for this grant: a replica's
    /// lease ballots start over when it restarts, so the ballot alone could name a grant an
    /// earlier run of the same replica asked for.
    pub attempt_id: u64,
}

/// Answer to [`LeasePrepare`]. `promised` is false when the acceptor had promised a higher
/// ballot (`highest` tells which). `open` is a still-running accepted lease, if any.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LeasePromise {
    pub ballot: Ballot,
    pub promised: bool,
    pub highest: Ballot,
    pub open: Option<LeaseGrant>,
}

/// Lease phase 2: "accept `owner` as lease holder for `duration_ns` of your own clock".
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LeasePropose {
    pub ballot: Ballot,
    pub owner: NodeId,
    /// Names the grant, with the ballot (see [`LeaseGrant::attempt_id`]).
    pub attempt_id: u64,
    pub duration_ns: Nanos,
    /// The epoch of the configuration whose voters the proposer counts.
    pub epoch: u64,
}

/// Answer to [`LeasePropose`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LeaseAccepted {
    pub ballot: Ballot,
    pub accepted: bool,
    pub highest: Ballot,
}

/// "I gave up the lease `grant` names; forget it." Sent by the grant's owner only after it
/// stopped acting as holder; an acceptor forgets exactly that grant (same ballot, owner and
/// attempt) and no other. No answer. `successor`, if any, is the replica the sender hands the
/// mastership to: it asks for the lease at once instead of waiting a lease for the master to
/// fall silent.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LeaseRelease {
    pub grant: LeaseGrant,
    pub successor: Option<NodeId>,
}

// ---- Multi-Paxos log -----------------------------------------------------------------------

/// Log phase 1, once per mastership, covering every slot from `from_slot` on.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Prepare {
    pub ballot: Ballot,
    pub from_slot: Slot,
}

/// One slot as an acceptor reports it in a [`Promise`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SlotReport {
    pub slot: Slot,
    /// The ballot the value was accepted in; `None` when the acceptor knows it is chosen.
    pub accepted_ballot: Option<Ballot>,
    pub value: LogValue,
}

/// Answer to [`Prepare`], sent only after the promise is durable.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Promise {
    pub ballot: Ballot,
    pub from_slot: Slot,
    pub slots: Vec<SlotReport>,
    /// Slots at or below this are chosen, covered by this acceptor's snapshot, and no longer
    /// kept in its log: the new master must not propose in them, and must catch up past them.
    pub compacted_through: Slot,
    /// The epoch of the configuration this acceptor has applied: one above what the new
    /// master can account for means a change it never saw hides in compacted slots.
    pub epoch: u64,
}

/// Log phase 2 for one slot.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Accept {
    pub ballot: Ballot,
    pub slot: Slot,
    pub value: LogValue,
}

/// Answer to [`Accept`], sent only after the accepted value is durable.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Accepted {
    pub ballot: Ballot,
    pub slot: Slot,
}

/// Refusal of a [`Prepare`] or [`Accept`]: the acceptor promised `highest`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Nack {
    pub ballot: Ballot,
    pub highest: Ballot,
}

/// The master's heartbeat: every slot up to `chosen_through` is chosen, and a slot accepted in
/// `ballot` holds the chosen value. Lets followers learn without the values travelling twice.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Commit {
    pub ballot: Ballot,
    pub chosen_through: Slot,
    /// A slot through which every full voter durably holds every chosen value, as far as the
    /// master heard: a witness compacts its log no further (see `Progress::durable_through`).
    pub durable_floor: Slot,
}

/// "Send me the chosen values of slots `from_slot` …", or, when the sender has compacted them
/// away, its snapshot — resuming the transfer of the snapshot named in `resume` if it still has
/// that one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CatchupRequest {
    pub from_slot: Slot,
    pub resume: Option<SnapshotResume>,
}

/// Where an interrupted snapshot transfer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SnapshotResume {
    pub slot: Slot,
    pub offset: u64,
}

/// One chunk of a snapshot image in transfer.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SnapshotPiece {
    pub meta: SnapshotMeta,
    pub offset: u64,
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

/// Chosen values, consecutive from `from_slot`, at most `CATCHUP_ENTRIES_MAX` of them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CatchupReply {
    pub from_slot: Slot,
    pub values: Vec<LogValue>,
    /// The sender's own `chosen_through`, so the receiver knows whether to ask again.
    pub chosen_through: Slot,
    /// Instead of values, when the sender no longer keeps `from_slot`: a piece of its snapshot.
    pub snapshot: Option<SnapshotPiece>,
}

/// A follower's answer to the master's commits, at most once per heartbeat interval: how far
/// it has learned (the master's view of each member's progress, for membership changes).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Progress {
    pub ballot: Ballot,
    pub chosen_through: Slot,
    /// The slot through which the sender durably holds every chosen value, in its snapshot or
    /// its log; never ahead of its disk. The master derives the witnesses' compaction floor
    /// from the full voters' reports.
    pub durable_through: Slot,
}

/// "Your configuration is older than one I know": the answer to a lease message of a stale
/// epoch, or to a replica the configuration removed. The receiver catches up from the sender
/// (and, if it was removed, learns so and stops).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Outdated {
    pub epoch: u64,
    pub chosen_through: Slot,
    /// The change the sender accepted in the highest slot and does not know chosen, with that
    /// slot: it may make a configuration later than `epoch`, whose refusal a proposer that never
    /// accepted it cannot get past unless it counts that configuration's voters too.
    pub pending: Option<(Slot, Reconfigure)>,
}

// ---- recovery from damaged storage --------------------------------------------------------

/// "Tell me your acceptor state": sent by a replica whose own storage failed verification and
/// which may therefore have forgotten promises or accepted values it gave.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RecoveryQuery {
    /// Names this recovery attempt, so reports to an earlier one are told apart.
    pub nonce: u64,
}

/// Answer to [`RecoveryQuery`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RecoveryReport {
    pub nonce: u64,
    /// False when the reporter is recovering itself: its numbers prove nothing.
    pub trusted: bool,
    pub promised: Ballot,
    /// The highest slot the reporter accepted, chose or compacted.
    pub log_end_slot: Slot,
    pub chosen_through: Slot,
    /// The epoch of the reporter's configuration: a recovering replica behind it catches up
    /// before it trusts its own (perhaps stale) idea of who the voters are.
    pub epoch: u64,
}

/// Every replica-to-replica message.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Message {
    LeasePrepare(LeasePrepare),
    LeasePromise(LeasePromise),
    LeasePropose(LeasePropose),
    LeaseAccepted(LeaseAccepted),
    Prepare(Prepare),
    Promise(Promise),
    Accept(Accept),
    Accepted(Accepted),
    Nack(Nack),
    Commit(Commit),
    CatchupRequest(CatchupRequest),
    CatchupReply(CatchupReply),
    RecoveryQuery(RecoveryQuery),
    RecoveryReport(RecoveryReport),
    Progress(Progress),
    Outdated(Outdated),
    LeaseRelease(LeaseRelease),
}
