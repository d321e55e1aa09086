//! Deliberately wrong variants of the protocol, used only to prove that the simulator catches
//! them. A replica can run one only when the crate is built with the `mutants` feature, which
//! production builds never enable; without it [`ReplicaConfig`](crate::ReplicaConfig) refuses
//! any mutant and every check below is a constant `false`.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Mutant {
    /// An acceptor answers before its promise or accept is durable.
    AckBeforePersist,
    /// An acceptor accepts a ballot below its promise.
    AcceptLowerBallot,
    /// The master serves reads after its lease may have expired (ignores drift).
    StaleLeaseRead,
    /// A new master skips re-proposing what earlier ballots may have chosen.
    SkipRecovery,
    /// An entry counts as chosen without a majority.
    MinorityCommit,
    /// Compaction drops applied log entries that no durable snapshot covers.
    TruncateWithoutSnapshot,
    /// A replica whose storage failed verification votes at once, trusting what is left.
    TrustCorruptPromise,
    /// The log engine reads records without verifying their checksums (a storage mutant:
    /// `keyspace-storage` carries it out when built with its `mutants` feature).
    SkipReadVerify,
    /// The shell reports writes durable before they are synced (a storage mutant: the
    /// simulator's sync model carries it out).
    AckBeforeFsync,
    /// A write under an opened session the store forgot starts that session again, as a
    /// client-chosen one's first write would: a retry after the store forgot applies twice.
    ForgottenSessionRestarts,
    /// A restarted replica whose storage is empty skips the restart quiet period, as a member
    /// of a brand-new cluster does: it forgot any lease it granted before anything it wrote
    /// became durable.
    RestartSkipsQuietPeriod,
    /// The lease is counted with the founding voters' majority, whatever changed since.
    LeaseOldMajority,
    /// The master proposes a membership change while its previous one is not yet applied.
    SecondChangeWhilePending,
    /// A transaction's first command applies in its own log entry and the rest at the start of
    /// the next entry, as if they were separate entries (its replies are those of one step):
    /// reads in between see it half applied.
    TransactionSplit,
    /// A replica's configuration changes when it accepts a membership change, before the change
    /// is chosen (a change never chosen, or another one chosen in its slot, still took effect).
    ChangeBeforeChosen,
    /// Replicas judge expiry by their own clock when they apply an entry, instead of by the
    /// time the master stamped on it.
    ReplicaClockExpiry,
    /// A replica recovering damaged storage grants the lease, trusting the epoch its damaged
    /// log left it at (it may have forgotten a change it accepted).
    RecoveringGrantsLease,
    /// The master judges expiry for its linearizable reads a second ahead of its clock: keys
    /// vanish for readers a second early, beyond any drift bound the simulator draws. Every
    /// replica's state stays the same; only the checker's timed model can see it.
    ExpiryReadsAhead,
    /// A witness compacts its log through its own snapshot, ignoring the floor (what every full
    /// voter durably holds): a full voter that lags may need slots no one keeps.
    WitnessIgnoresFloor,
    /// A master that gives up its lease tells the acceptors to forget their grants, but goes on
    /// acting as holder until the lease runs out.
    ReleaseKeepsLease,
}

impl Mutant {
    pub const ALL: [Mutant; 20] = [
        Mutant::AckBeforePersist,
        Mutant::AcceptLowerBallot,
        Mutant::StaleLeaseRead,
        Mutant::SkipRecovery,
        Mutant::MinorityCommit,
        Mutant::TruncateWithoutSnapshot,
        Mutant::TrustCorruptPromise,
        Mutant::SkipReadVerify,
        Mutant::AckBeforeFsync,
        Mutant::ForgottenSessionRestarts,
        Mutant::RestartSkipsQuietPeriod,
        Mutant::LeaseOldMajority,
        Mutant::SecondChangeWhilePending,
        Mutant::TransactionSplit,
        Mutant::ChangeBeforeChosen,
        Mutant::ReplicaClockExpiry,
        Mutant::RecoveringGrantsLease,
        Mutant::ExpiryReadsAhead,
        Mutant::WitnessIgnoresFloor,
        Mutant::ReleaseKeepsLease,
    ];

    /// The kebab-case name used on command lines.
    pub fn name(self) -> &'static str {
        match self {
            Mutant::AckBeforePersist => "ack-before-persist",
            Mutant::AcceptLowerBallot => "accept-lower-ballot",
            Mutant::StaleLeaseRead => "stale-lease-read",
            Mutant::SkipRecovery => "skip-recovery",
            Mutant::MinorityCommit => "minority-commit",
            Mutant::TruncateWithoutSnapshot => "truncate-without-snapshot",
            Mutant::TrustCorruptPromise => "trust-corrupt-promise",
            Mutant::SkipReadVerify => "skip-read-verify",
            Mutant::AckBeforeFsync => "ack-before-fsync",
            Mutant::ForgottenSessionRestarts => "forgotten-session-restarts",
            Mutant::RestartSkipsQuietPeriod => "restart-skips-quiet-period",
            Mutant::LeaseOldMajority => "lease-old-majority",
            Mutant::SecondChangeWhilePending => "second-change-while-pending",
            Mutant::TransactionSplit => "transaction-split",
            Mutant::ChangeBeforeChosen => "change-before-chosen",
            Mutant::ReplicaClockExpiry => "replica-clock-expiry",
            Mutant::RecoveringGrantsLease => "recovering-grants-lease",
            Mutant::ExpiryReadsAhead => "expiry-reads-ahead",
            Mutant::WitnessIgnoresFloor => "witness-ignores-floor",
            Mutant::ReleaseKeepsLease => "release-keeps-lease",
        }
    }

    pub fn from_name(name: &str) -> Option<Mutant> {
        Mutant::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Whether mutants can be switched on in this build.
    pub const ENABLED: bool = cfg!(feature = "mutants");
}

/// True when `active` is `wanted` and the build allows mutants.
#[inline]
pub fn is(active: Option<Mutant>, wanted: Mutant) -> bool {
    Mutant::ENABLED && active == Some(wanted)
}
