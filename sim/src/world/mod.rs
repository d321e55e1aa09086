//! The simulated cluster and the event loop that drives it in true time. Each part owns its
//! state: [`events`] the queue, [`replicas`] the replicas with their clocks and disks,
//! [`network`] the links and the partition, [`clients`] the clients and what they learned,
//! [`faults`] the fault schedule, [`phases`] the liveness phase and the final checks.

mod clients;
mod events;
mod faults;
mod lagging;
mod membership;
mod network;
mod phases;
mod replicas;

use std::hash::Hasher;

use keyspace_checker::{FxHasher, Recorder};
use keyspace_core::{Input, Nanos};

use crate::checks::Ledger;
use crate::plan::{FaultPlan, Streams, NANOS_PER_SEC};
use crate::{Failure, FailureKind, SimOptions, Stats};

use clients::Clients;
use events::{Event, EventQueue};
use faults::Faults;
use lagging::Lagging;
use membership::Membership;
use network::Network;
use replicas::Replicas;

pub use phases::{LIVENESS_BOUND_NS, LIVENESS_WRITES};

/// Events one run may process; healthy runs of the default size take well under 100,000.
const EVENTS_MAX: u64 = 3_000_000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Faults,
    Liveness,
    Settle,
}

pub struct World {
    opts: SimOptions,
    pub plan: FaultPlan,
    now: Nanos,
    queue: EventQueue,
    replicas: Replicas,
    net: Network,
    clients: Clients,
    faults: Faults,
    membership: Membership,
    lagging: Lagging,
    pub recorder: Recorder,
    ledger: Ledger,
    /// The trace hash: every processed event, in order.
    trace: FxHasher,
    pub stats: Stats,
    phase: Phase,
    liveness_left: u64,
}

fn safety(message: String) -> Failure {
    Failure {
        kind: FailureKind::Safety,
        message,
    }
}

impl World {
    pub fn new(opts: &SimOptions) -> World {
        let Streams {
            plan: mut plan_rng,
            net,
            disk,
            faults,
            workload,
            node_seeds,
            storage,
            membership: mut membership_rng,
            lagging: mut lagging_rng,
        } = Streams::new(opts.seed);
        let mut plan = FaultPlan::draw(opts.faults, opts.nodes, &mut plan_rng);
        plan.draw_membership(&mut membership_rng);
        plan.draw_lagging_voter(&mut lagging_rng);
        if opts.storage_beyond_budget {
            plan.exceed_storage_budget();
        }
        // Room for the spare replicas the membership changes may add.
        let n = opts.nodes + plan.spare_ids;
        World {
            opts: opts.clone(),
            now: 0,
            queue: EventQueue::new(),
            replicas: Replicas::new(n, &plan, opts.mutant, disk, node_seeds),
            net: Network::new(n, &plan, net),
            clients: Clients::new(opts, &plan, workload),
            faults: Faults::new(faults, storage),
            membership: Membership::new(membership_rng, opts.nodes),
            lagging: Lagging::new(lagging_rng),
            plan,
            recorder: Recorder::with_capacity(2048),
            ledger: Ledger::default(),
            trace: FxHasher::new(),
            stats: Stats::default(),
            phase: Phase::Faults,
            liveness_left: LIVENESS_WRITES,
        }
    }

    pub fn trace_hash(&self) -> u64 {
        self.trace.finish()
    }

    fn schedule(&mut self, at: Nanos, event: Event) {
        self.queue.push(at, event);
    }

    /// Runs both phases; the first failure ends the run.
    pub fn run(&mut self) -> Result<(), Failure> {
        self.start()?;
        while let Some((at, event)) = self.queue.pop() {
            assert!(at >= self.now, "events run in time order");
            self.now = at;
            if let Some(node) = event.target() {
                let until = self.replicas.nodes[node].paused_until;
                if until > at {
                    self.schedule(until, event);
                    continue;
                }
            }
            if self.is_stale(&event) {
                continue;
            }
            self.record_event(&event);
            if self.stats.events > EVENTS_MAX {
                return Err(self.storm());
            }
            let end = matches!(event, Event::End);
            self.stats.sim_ns = self.now;
            self.stats.slots = self.ledger.slots_applied() as u64;
            self.handle(event)?;
            let configs = &self.membership.configs;
            self.replicas.check_lease_holders(self.now, configs)?;
            if end {
                self.stats.sim_ns = self.now;
                return self.final_checks();
            }
        }
        unreachable!("the event queue never empties before the end event")
    }

    /// The run processed far more events than any healthy run: messages multiply.
    fn storm(&self) -> Failure {
        Failure {
            kind: FailureKind::Liveness,
            message: format!(
                "no end in sight: {EVENTS_MAX} events processed by simulated time {:.3}s (a message storm?)",
                self.now as f64 / 1e9
            ),
        }
    }

    fn start(&mut self) -> Result<(), Failure> {
        for i in 0..self.opts.nodes {
            self.restart(i)?;
        }
        self.start_clients();
        let duration = self.opts.duration_s * NANOS_PER_SEC;
        self.schedule(duration, Event::PhaseEnd);
        self.start_faults();
        self.start_membership();
        self.start_lagging();
        Ok(())
    }

    fn is_stale(&self, event: &Event) -> bool {
        match event {
            Event::Timer { node, gen } => self.replicas.nodes[*node].timer_gen != *gen,
            Event::Synced {
                node, incarnation, ..
            }
            | Event::EarlyAck {
                node, incarnation, ..
            }
            | Event::CrashMidWrite { node, incarnation } => {
                self.replicas.nodes[*node].incarnation != *incarnation
            }
            Event::ClientTimer { client, gen, .. } => self.clients.list[*client].timer_gen != *gen,
            _ => false,
        }
    }

    fn record_event(&mut self, event: &Event) {
        self.stats.events += 1;
        self.trace.write_u64(self.now);
        for word in event.trace_words() {
            self.trace.write_u64(word);
        }
        if self.opts.trace {
            eprintln!("{:>14.9} {:?}", self.now as f64 / 1e9, event);
        }
    }

    fn handle(&mut self, event: Event) -> Result<(), Failure> {
        match event {
            Event::Peer { from, to, msg } => {
                if self.net.is_blocked(from, to) {
                    return Ok(()); // a partition began while it was in flight
                }
                self.stats.messages_delivered += 1;
                let from_id = self.replicas.nodes[from].id;
                self.drive(to, Input::Message { from: from_id, msg })
            }
            Event::Request {
                client,
                to,
                request,
            } => self.deliver_request(client, to, request),
            Event::Response {
                from,
                client,
                id,
                response,
            } => {
                self.client_response(client, from, id, response);
                Ok(())
            }
            Event::Timer { node, .. } => self.timer_fired(node),
            Event::Synced { node, token, .. } => self.synced(node, token),
            Event::EarlyAck { node, token, .. } => self.drive(node, Input::Persisted { token }),
            Event::Restart { node, incarnation } => self.restart_after_crash(node, incarnation),
            Event::Membership => self.membership_change(),
            Event::Lagging => self.lagging_step(),
            Event::PhaseEnd => self.end_faults(),
            Event::LivenessDeadline => self.liveness_deadline(),
            Event::End => Ok(()),
            other => {
                self.handle_infallible(other);
                Ok(())
            }
        }
    }

    /// The events that cannot fail a run: client wake-ups and timers, and the faults.
    fn handle_infallible(&mut self, event: Event) {
        match event {
            Event::ClientWake { client } => self.client_wake(client),
            Event::ClientTimer { client, retry, .. } => self.client_timer(client, retry),
            Event::Partition => self.fault_partition(),
            Event::Heal { gen } => self.heal(gen),
            Event::Crash => self.fault_crash(),
            Event::CrashMidWrite { node, .. } => self.crash_mid_write(node),
            Event::Pause => self.fault_pause(),
            Event::StorageFault => self.fault_storage(),
            other => unreachable!("{other:?} is handled by `handle`"),
        }
    }
}
