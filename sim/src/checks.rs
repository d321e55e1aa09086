//! Safety checks run after every event: one value per slot, applied logs that share a prefix,
//! and replicas that applied the same prefix holding the same state.

use keyspace_core::{Replica, Slot};

use crate::trace::digest;

/// What the first replica to apply a slot saw there.
#[derive(Clone, Copy, Debug)]
struct SlotRecord {
    value: u64,
    first: u16,
    /// The applying replica's chain hash and state hash with this slot the last one applied.
    chain: Option<(u64, u64)>,
}

/// Every slot any replica applied, with the value it held.
#[derive(Debug, Default)]
pub struct Ledger {
    slots: Vec<SlotRecord>,
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
            let Some(value) = replica.chosen(slot) else {
                continue; // not kept any more (a snapshot covers it)
            };
            self.record_value(slot, digest(value), node)?;
        }
        if through > seen {
            let state = replica.state_machine().state_hash();
            self.record_chain(through, replica.applied_chain(), state, node)?;
        }
        Ok(through)
    }

    fn record_value(&mut self, slot: Slot, value: u64, node: u16) -> Result<(), String> {
        let index = (slot - 1) as usize;
        if index == self.slots.len() {
            self.slots.push(SlotRecord {
                value,
                first: node,
                chain: None,
            });
            return Ok(());
        }
        if index > self.slots.len() {
            return Err(format!(
                "replica {node} applied slot {slot} before slot {}",
                self.slots.len() + 1
            ));
        }
        let record = self.slots[index];
        if record.value != value {
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
        state: u64,
        node: u16,
    ) -> Result<(), String> {
        let record = &mut self.slots[(slot - 1) as usize];
        match record.chain {
            None => record.chain = Some((chain, state)),
            Some((c, _)) if c != chain => {
                return Err(format!(
                    "applied logs diverge: replica {node}'s hash chain at slot {slot} differs from the first applier's (replica {})",
                    record.first
                ))
            }
            Some((_, s)) if s != state => {
                return Err(format!(
                    "replica {node}'s state after slot {slot} differs from another replica's with the same log"
                ))
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// Highest slot any replica applied.
    pub fn slots_applied(&self) -> usize {
        self.slots.len()
    }
}
