//! The simulated network: one link per direction between replicas, which a partition blocks,
//! and delivery with loss, duplication, independent delays (so reordering) and a long tail.
//! Client traffic crosses the same lossy network but no partition.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use keyspace_core::{ClientRequest, ClientResponse, Message, Nanos};

use super::events::Event;
use super::World;
use crate::plan::{chance, FaultPlan, NANOS_PER_SEC};

/// When the copies of one message arrive, in the order they are scheduled: none (lost), one,
/// or two (duplicated).
#[derive(Default)]
pub(super) struct Arrivals {
    at_ns: [Nanos; 2],
    len: usize,
}

impl Arrivals {
    fn push(&mut self, at_ns: Nanos) {
        assert!(self.len < 2, "a message has at most two copies");
        self.at_ns[self.len] = at_ns;
        self.len += 1;
    }

    fn as_slice(&self) -> &[Nanos] {
        &self.at_ns[..self.len]
    }
}

/// The links, the partition that blocks some of them, and the network's random stream.
pub(super) struct Network {
    nodes: usize,
    /// `blocked[from * nodes + to]`: messages from `from` to `to` are dropped.
    blocked: Vec<bool>,
    /// Counts partitions; a `Heal` ends only the partition it was scheduled for.
    partition_gen: u64,
    /// The faults are over: no loss, no duplicates, no long tails.
    calm: bool,
    rng: ChaCha8Rng,
    delay_min_ns: Nanos,
    delay_jitter_ns: Nanos,
    tail_ppm: u32,
    tail_max_ns: Nanos,
    loss_ppm: u32,
    dup_ppm: u32,
    /// Ids of replies sent so far (a client handles each reply once, duplicates aside).
    responses_sent: u64,
}

impl Network {
    pub(super) fn new(nodes: usize, plan: &FaultPlan, rng: ChaCha8Rng) -> Network {
        Network {
            nodes,
            blocked: vec![false; nodes * nodes],
            partition_gen: 0,
            calm: false,
            rng,
            delay_min_ns: plan.delay_min_ns,
            delay_jitter_ns: plan.delay_jitter_ns,
            tail_ppm: plan.tail_ppm,
            tail_max_ns: plan.tail_max_ns,
            loss_ppm: plan.loss_ppm,
            dup_ppm: plan.dup_ppm,
            responses_sent: 0,
        }
    }

    pub(super) fn is_blocked(&self, from: usize, to: usize) -> bool {
        self.blocked[from * self.nodes + to]
    }

    /// Arrival times of a replica-to-replica message sent at `now`: none across a blocked link.
    pub(super) fn peer_arrivals(&mut self, now: Nanos, from: usize, to: usize) -> Arrivals {
        let mut arrivals = Arrivals::default();
        if self.is_blocked(from, to) {
            return arrivals;
        }
        let copies = self.copies();
        if copies == 2 {
            arrivals.push(now + self.delay() + self.duplicate_lag());
        }
        if copies >= 1 {
            arrivals.push(now + self.delay());
        }
        arrivals
    }

    /// Arrival times of a client's request or a replica's reply sent at `now`.
    pub(super) fn client_arrivals(&mut self, now: Nanos) -> Arrivals {
        let mut arrivals = Arrivals::default();
        for _ in 0..self.copies() {
            arrivals.push(now + self.delay());
        }
        arrivals
    }

    /// A new reply's id.
    pub(super) fn next_response_id(&mut self) -> u64 {
        self.responses_sent += 1;
        self.responses_sent
    }

    fn delay(&mut self) -> Nanos {
        let rng = &mut self.rng;
        let mut delay = self.delay_min_ns + rng.gen_range(0..=self.delay_jitter_ns);
        if !self.calm && chance(rng, self.tail_ppm) {
            delay += rng.gen_range(0..=self.tail_max_ns);
        }
        delay
    }

    /// Longest extra delay of a duplicate: networks replay stale packets long after the original.
    fn duplicate_lag_max_ns(&self) -> Nanos {
        self.tail_max_ns.max(NANOS_PER_SEC)
    }

    fn duplicate_lag(&mut self) -> Nanos {
        let max = self.duplicate_lag_max_ns();
        self.rng.gen_range(0..=max)
    }

    /// How many copies of a message the network delivers: 0 (lost), 1, or 2 (duplicated).
    fn copies(&mut self) -> u32 {
        if self.calm {
            return 1;
        }
        if chance(&mut self.rng, self.loss_ppm) {
            return 0;
        }
        1 + chance(&mut self.rng, self.dup_ppm) as u32
    }

    /// Cuts the replicas in `side` off from the others: both ways, or (`direction` 1 or 2) one
    /// way only, so a side can send but not hear, or the reverse. Returns the partition's
    /// generation, which its `Heal` names.
    pub(super) fn partition(&mut self, side: &[bool], direction: u32) -> u64 {
        let n = self.nodes;
        self.blocked.fill(false);
        for a in 0..n {
            for b in 0..n {
                if side[a] && !side[b] {
                    self.blocked[a * n + b] = direction != 1;
                    self.blocked[b * n + a] = direction != 2;
                }
            }
        }
        self.partition_gen += 1;
        self.partition_gen
    }

    /// Ends partition `gen`, unless a newer one replaced it.
    pub(super) fn heal(&mut self, gen: u64) {
        if gen == self.partition_gen {
            self.blocked.fill(false);
        }
    }

    /// The faults are over: every link heals, and from now on messages are neither lost nor
    /// duplicated nor held in a long tail.
    pub(super) fn calm_down(&mut self) {
        self.calm = true;
        self.blocked.fill(false);
        self.partition_gen += 1;
    }

    /// Cuts replica `i` off from every replica in `others`, both ways.
    pub(super) fn cut_off(&mut self, i: usize, others: impl Iterator<Item = usize>) {
        let n = self.nodes;
        for j in others {
            self.blocked[i * n + j] = true;
            self.blocked[j * n + i] = true;
        }
    }

    /// How long a message sent now may still be on the wire: a long-tail delay plus a
    /// duplicate's lag.
    pub(super) fn in_flight_max_ns(&self) -> Nanos {
        self.delay_min_ns + self.delay_jitter_ns + self.tail_max_ns + self.duplicate_lag_max_ns()
    }
}

impl World {
    pub(super) fn send_peer(&mut self, from: usize, to: usize, msg: Message) {
        self.stats.messages_sent += 1;
        let arrivals = self.net.peer_arrivals(self.now, from, to);
        self.schedule_copies(&arrivals, msg, |msg| Event::Peer { from, to, msg });
    }

    pub(super) fn send_request(&mut self, client: usize, to: usize, request: ClientRequest) {
        let arrivals = self.net.client_arrivals(self.now);
        if let Some(pending) = &mut self.clients.list[client].pending {
            pending.copies_in_flight += arrivals.as_slice().len() as u32;
        }
        self.schedule_copies(&arrivals, request, |request| Event::Request {
            client,
            to,
            request,
        });
    }

    pub(super) fn send_response(&mut self, from: usize, client: usize, response: ClientResponse) {
        let arrivals = self.net.client_arrivals(self.now);
        let id = self.net.next_response_id();
        self.schedule_copies(&arrivals, response, |response| Event::Response {
            from,
            client,
            id,
            response,
        });
    }

    /// Schedules one event per copy of `payload` at its arrival time.
    fn schedule_copies<T: Clone>(
        &mut self,
        arrivals: &Arrivals,
        payload: T,
        event: impl Fn(T) -> Event,
    ) {
        if let Some((&last, earlier)) = arrivals.as_slice().split_last() {
            for &at in earlier {
                self.schedule(at, event(payload.clone()));
            }
            self.schedule(last, event(payload));
        }
    }
}
