//! The event queue: every event of a run in true-time order, ties in the order they were
//! scheduled, so a seed replays identically.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use keyspace_core::{ClientRequest, ClientResponse, Message, Nanos};

use crate::trace::{message_digest, request_digest, response_digest};

#[derive(Debug)]
pub(super) enum Event {
    Peer {
        from: usize,
        to: usize,
        msg: Message,
    },
    Request {
        client: usize,
        to: usize,
        request: ClientRequest,
    },
    /// `id` names one reply a replica sent; a duplicate on the wire has the same id.
    Response {
        from: usize,
        client: usize,
        id: u64,
        response: ClientResponse,
    },
    Timer {
        node: usize,
        gen: u64,
    },
    Synced {
        node: usize,
        incarnation: u32,
        token: u64,
    },
    Restart {
        node: usize,
        incarnation: u32,
    },
    ClientWake {
        client: usize,
    },
    ClientTimer {
        client: usize,
        gen: u64,
        retry: bool,
    },
    Partition,
    Heal {
        gen: u64,
    },
    Crash,
    Pause,
    /// A fault at rest on a replica of the fault atlas.
    StorageFault,
    /// The `ack-before-fsync` mutant: the disk reports `token` durable before its sync.
    EarlyAck {
        node: usize,
        incarnation: u32,
        token: u64,
    },
    /// A crash fault that waited for replica `node`'s next write: it dies before the write
    /// is synced.
    CrashMidWrite {
        node: usize,
        incarnation: u32,
    },
    /// The simulator asks the master for a membership change.
    Membership,
    /// The next step of the lagging-voter fault (see `lagging`).
    Lagging,
    PhaseEnd,
    LivenessDeadline,
    End,
}

impl Event {
    /// The replica an event is for, if it must wait while that replica is paused.
    pub(super) fn target(&self) -> Option<usize> {
        match self {
            Event::Peer { to, .. } | Event::Request { to, .. } => Some(*to),
            Event::Timer { node, .. }
            | Event::Synced { node, .. }
            | Event::EarlyAck { node, .. } => Some(*node),
            _ => None,
        }
    }

    /// What the trace hash takes of this event besides its time: its kind, whom it concerns
    /// and a digest of what it carries.
    pub(super) fn trace_words(&self) -> [u64; 3] {
        let (node, digest) = match self {
            Event::Peer { from, to, msg } => ((from * 8 + to) as u64, message_digest(msg)),
            Event::Request {
                client,
                to,
                request,
            } => ((client * 8 + to) as u64, request_digest(request)),
            Event::Response {
                from,
                client,
                response,
                ..
            } => ((client * 8 + from) as u64, response_digest(response)),
            Event::Timer { node, .. }
            | Event::Restart { node, .. }
            | Event::CrashMidWrite { node, .. } => (*node as u64, 0),
            Event::Synced { node, token, .. } | Event::EarlyAck { node, token, .. } => {
                (*node as u64, *token)
            }
            Event::ClientWake { client } | Event::ClientTimer { client, .. } => (*client as u64, 0),
            _ => (0, 0),
        };
        [self.tag(), node, digest]
    }

    fn tag(&self) -> u64 {
        match self {
            Event::Peer { .. } => 1,
            Event::Request { .. } => 2,
            Event::Response { .. } => 3,
            Event::Timer { .. } => 4,
            Event::Synced { .. } => 5,
            Event::Restart { .. } => 6,
            Event::ClientWake { .. } => 7,
            Event::ClientTimer { .. } => 8,
            Event::Partition => 9,
            Event::Heal { .. } => 10,
            Event::Crash => 11,
            Event::Pause => 12,
            Event::PhaseEnd => 13,
            Event::LivenessDeadline => 14,
            Event::End => 15,
            Event::StorageFault => 16,
            Event::EarlyAck { .. } => 17,
            Event::CrashMidWrite { .. } => 18,
            Event::Membership => 19,
            Event::Lagging => 20,
        }
    }
}

struct Queued {
    at: Nanos,
    seq: u64,
    event: Event,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Queued {}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Queued {
    /// Reversed: the heap pops the earliest event, ties in insertion order.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// Events waiting for their time.
pub(super) struct EventQueue {
    heap: BinaryHeap<Queued>,
    /// Insertion counter: breaks ties between events of the same instant.
    next_seq: u64,
}

impl EventQueue {
    pub(super) fn new() -> EventQueue {
        EventQueue {
            heap: BinaryHeap::with_capacity(1024),
            next_seq: 0,
        }
    }

    pub(super) fn push(&mut self, at: Nanos, event: Event) {
        self.next_seq += 1;
        self.heap.push(Queued {
            at,
            seq: self.next_seq,
            event,
        });
    }

    /// The earliest event and its time.
    pub(super) fn pop(&mut self) -> Option<(Nanos, Event)> {
        self.heap.pop().map(|queued| (queued.at, queued.event))
    }
}
