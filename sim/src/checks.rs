//! Safety checks run after every event: one value per slot, applied logs that share a prefix,
//! and replicas that applied the same prefix holding the same state.

use keyspace_core::{
    Ballot, ClientId, DurableState, LogValue, Message, NodeId, Replica, Seq, Slot, StorageWrite,
};

use crate::trace::digest;

/// What the first replica to apply a slot saw there.
#[derive(Clone, Copy, Debug)]
struct SlotRecord {
    value: u64,
    first: u16,
    /// The applying replica's chain hash and state hash with this slot the last one applied
    /// (no state hash while only witnesses applied it).
    chain: Option<(u64, Option<u64>)>,
}

/// Every slot any replica applied, with the value it held.
#[derive(Debug, Default)]
pub struct Ledger {
    /// By slot - 1; `None` where no replica's log still held the value when it was applied
    /// (it arrived in a snapshot).
    slots: Vec<Option<SlotRecord>>,
    /// Every client request seen applied, with its slot.
    requests: Vec<(ClientId, Seq, Slot)>,
}

impl Ledger {
    /// Checks the slots `replica` applied since `seen` (exclusive) and returns its new
    /// `applied_through`, or a description of the violation.
    pub fn observe(&mut self, replica: &Replica, seen: Slot) -> Result<Slot, String> {
        let node = replica.node_id();
        let through = replica.applied_through();
        if through < seen {
            return Err(format!(
                "replica {node} un-applied slots: applied through {through} after {seen}"
            ));
        }
        for slot in seen + 1..=through {
            if let Some(value) = replica.chosen(slot) {
                self.record_value(slot, value, node)?;
            }
        }
        if through > seen {
            // A witness's store stays empty: only full replicas' states must agree.
            let witness = replica.config().witness;
            assert!(
                !witness || replica.state_machine().is_empty(),
                "a witness holds keys"
            );
            let state = (!witness).then(|| replica.state_machine().state_hash());
            self.record_chain(through, replica.applied_chain(), state, node)?;
        }
        Ok(through)
    }

    fn record_value(&mut self, slot: Slot, value: &LogValue, node: u16) -> Result<(), String> {
        let index = (slot - 1) as usize;
        if index >= self.slots.len() {
            self.slots.resize(index + 1, None);
        }
        let digest = digest(value);
        let Some(record) = self.slots[index] else {
            self.slots[index] = Some(SlotRecord {
                value: digest,
                first: node,
                chain: None,
            });
            if let LogValue::Batch(requests) | LogValue::TimedBatch { requests, .. } = value {
                self.requests
                    .extend(requests.iter().map(|r| (r.client_id, r.seq, slot)));
            }
            return Ok(());
        };
        if record.value != digest {
            return Err(format!(
                "two values chosen for slot {slot}: replica {node} applied a value that differs from replica {}'s",
                record.first
            ));
        }
        Ok(())
    }

    fn record_chain(
        &mut self,
        slot: Slot,
        chain: u64,
        state: Option<u64>,
        node: u16,
    ) -> Result<(), String> {
        let index = (slot - 1) as usize;
        if index >= self.slots.len() {
            self.slots.resize(index + 1, None);
        }
        let record = self.slots[index].get_or_insert(SlotRecord {
            value: 0,
            first: node,
            chain: None,
        });
        match record.chain {
            None => record.chain = Some((chain, state)),
            Some((c, _)) if c != chain => {
                return Err(format!(
                    "applied logs diverge: replica {node}'s hash chain at slot {slot} differs from replica {}'s",
                    record.first
                ))
            }
            Some((_, Some(s))) if state.is_some_and(|mine| mine != s) => {
                return Err(format!(
                    "replica {node}'s state after slot {slot} differs from another replica's with the same log"
                ))
            }
            Some((c, None)) => record.chain = Some((c, state)),
            Some(_) => {}
        }
        Ok(())
    }

    /// Highest slot any replica applied.
    pub fn slots_applied(&self) -> usize {
        self.slots.len()
    }

    /// The slot a client request was applied in, as first seen.
    pub fn slot_of(&mut self, client: ClientId, seq: Seq) -> Option<Slot> {
        self.requests.sort_unstable();
        let at = self
            .requests
            .partition_point(|r| (r.0, r.1) < (client, seq));
        self.requests
            .get(at)
            .filter(|r| (r.0, r.1) == (client, seq))
            .map(|r| r.2)
    }
}

/// The acceptor rule, checked on what a replica writes to disk: it never promises or accepts a
/// log ballot below one it promised before. `floor` is the highest ballot of the replica's
/// writes so far (from its durable state after a restart).
pub fn check_acceptor_write(
    floor: &mut Ballot,
    write: &StorageWrite,
    node: NodeId,
) -> Result<(), String> {
    let ballot = match write {
        StorageWrite::Promise { ballot } | StorageWrite::Accept { ballot, .. } => *ballot,
        StorageWrite::Learn { .. }
        | StorageWrite::Chosen { .. }
        | StorageWrite::Snapshot(_)
        | StorageWrite::Compact { .. } => return Ok(()),
    };
    if ballot < *floor {
        return Err(format!(
            "replica {node} wrote {} of ballot {ballot} after promising ballot {floor}",
            if matches!(write, StorageWrite::Promise { .. }) {
                "a promise"
            } else {
                "an accept"
            }
        ));
    }
    *floor = ballot;
    Ok(())
}

/// Persist before send: a promise or an accept leaves a replica only once the write behind it
/// is durable.
pub fn check_durable_before_send(
    durable: &DurableState,
    msg: &Message,
    node: NodeId,
) -> Result<(), String> {
    let backed = match msg {
        Message::Promise(p) => durable.promised >= p.ballot,
        Message::Accepted(a) => {
            durable.promised >= a.ballot
                && (durable.chosen.contains_key(&a.slot)
                    || durable.snapshot_slot().is_some_and(|s| a.slot <= s)
                    || durable
                        .accepted
                        .get(&a.slot)
                        .is_some_and(|(b, _)| *b >= a.ballot))
        }
        _ => true,
    };
    if backed {
        return Ok(());
    }
    let slot = match msg {
        Message::Accepted(a) => a.slot,
        _ => 0,
    };
    Err(format!(
        "replica {node} sent {msg:?} before the write behind it was durable (durable: promised {}, slot {slot} accepted {:?}, chosen {}, snapshot through {:?})",
        durable.promised,
        durable.accepted.get(&slot).map(|(b, _)| *b),
        durable.chosen.contains_key(&slot),
        durable.snapshot_slot()
    ))
}
