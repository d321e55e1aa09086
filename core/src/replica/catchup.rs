//! Catching up with a replica that has chosen further: from its log while it keeps the slots,
//! else by a chunked transfer of its snapshot. One request is in flight at a time; a lost
//! request or answer is asked again after the retry interval.

use std::sync::Arc;

use crate::kv::StateMachine;
use crate::membership::Configuration;
use crate::msg::{CatchupRequest, SnapshotPiece, SnapshotResume};
use crate::snapshot::{SnapshotAssembly, SnapshotImage};
use crate::types::{Nanos, NodeId, Slot};

/// Most chosen values one [`crate::msg::CatchupReply`] carries.
pub const CATCHUP_ENTRIES_MAX: usize = 256;

pub(super) struct CatchUp {
    retry_interval_ns: Nanos,
    retry_at_ns: Option<Nanos>,
    /// A replica known to have chosen through a slot beyond this one's `chosen_through`.
    target: Option<(NodeId, Slot)>,
    /// A snapshot being received, and from whom.
    incoming: Option<(NodeId, SnapshotAssembly)>,
}

impl CatchUp {
    pub(super) fn new(retry_interval_ns: Nanos) -> Self {
        assert!(retry_interval_ns > 0);
        Self {
            retry_interval_ns,
            retry_at_ns: None,
            target: None,
            incoming: None,
        }
    }

    /// `peer` has chosen through `through`: catch up from it. True when a request should go
    /// now (none is in flight, or the one in flight is due to be asked again).
    pub(super) fn note_target(&mut self, now_ns: Nanos, peer: NodeId, through: Slot) -> bool {
        // The latest report wins even if an earlier one named a higher slot: this peer was
        // just heard from, the earlier one may since be cut off or down, and asking it forever
        // would stall (a new master behind a follower's compaction point never caught up).
        self.target = Some((peer, through));
        self.retry_at_ns.is_none_or(|t| now_ns >= t) // one request in flight at a time
    }

    /// The request to send at `now_ns` by a replica chosen through `chosen_through`, if it is
    /// still behind its target.
    pub(super) fn request(
        &mut self,
        now_ns: Nanos,
        chosen_through: Slot,
    ) -> Option<(NodeId, CatchupRequest)> {
        let (peer, through) = self.target?;
        if chosen_through >= through {
            self.target = None;
            self.retry_at_ns = None;
            return None;
        }
        self.retry_at_ns = Some(now_ns + self.retry_interval_ns);
        let resume = self.incoming.as_ref().map(|(_, a)| SnapshotResume {
            slot: a.meta().slot,
            offset: a.next_offset(),
        });
        let from_slot = chosen_through + 1;
        Some((peer, CatchupRequest { from_slot, resume }))
    }

    /// When to ask again, if a request is in flight.
    pub(super) fn retry_at_ns(&self) -> Option<Nanos> {
        self.retry_at_ns
    }

    pub(super) fn is_due(&self, now_ns: Nanos) -> bool {
        self.retry_at_ns.is_some_and(|t| now_ns >= t)
    }

    /// An answer made progress: the next request may go at once.
    pub(super) fn answered(&mut self) {
        self.retry_at_ns = None;
    }

    /// How far catch-up has come: chosen slots, and bytes of a snapshot in transfer.
    pub(super) fn progress(&self, chosen_through: Slot) -> (Slot, Option<u64>) {
        let offset = self.incoming.as_ref().map(|(_, a)| a.next_offset());
        (chosen_through, offset)
    }

    /// Adds a piece of a peer's snapshot; returns the image, its state and the configuration it
    /// carries once it is whole and verified. A piece of another snapshot starts over; a bad one drops the transfer.
    pub(super) fn on_piece(
        &mut self,
        from: NodeId,
        piece: SnapshotPiece,
        chosen_through: Slot,
    ) -> Option<(Arc<SnapshotImage>, StateMachine, Option<Configuration>)> {
        if piece.meta.slot <= chosen_through {
            self.incoming = None; // already past it
            return None;
        }
        let same = matches!(&self.incoming, Some((_, a)) if *a.meta() == piece.meta);
        if !same {
            self.incoming = Some((from, SnapshotAssembly::new(piece.meta)));
        }
        let (_, assembly) = self.incoming.as_mut().expect("set above");
        if assembly.offer(piece.offset, &piece.bytes).is_err() {
            self.incoming = None; // start over
            return None;
        }
        if !assembly.is_complete() {
            return None; // the caller asks for the next chunk
        }
        let (_, assembly) = self.incoming.take().expect("set above");
        let verified = assembly
            .finish()
            .and_then(|i| i.restore_configured().map(|(s, c)| (i, s, c)));
        verified
            .ok()
            .map(|(image, state, members)| (Arc::new(image), state, members))
    }

    /// A retry is pending only for a target, and a transfer never runs past its image.
    pub(super) fn check_invariants(&self) {
        assert!(
            self.retry_at_ns.is_none() || self.target.is_some(),
            "a catch-up retry without a target"
        );
        if let Some((_, assembly)) = &self.incoming {
            assert!(assembly.next_offset() <= assembly.meta().body_len);
        }
    }
}
