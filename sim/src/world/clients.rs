//! The clients: sequential request loops that retry on timeouts and rejections, follow master
//! hints, open sessions through the log, and record every operation to the history.

use std::collections::BTreeMap;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use keyspace_core::{
    ClientId, ClientRequest, ClientResponse, Command, CommandError, Input, Nanos, Outcome,
    Rejection, Reply, Seq, OPENED_SESSION_BIT,
};

use super::events::Event;
use super::{Phase, World};
use crate::plan::{FaultPlan, NANOS_PER_MILLI, NANOS_PER_SEC};
use crate::workload::{random_command, Client, Pending};
use crate::workload_tx::follow_up;
use crate::{Failure, SimOptions};

/// A client gives up on an attempt after this long and tries another replica.
const CLIENT_TIMEOUT_NS: Nanos = 500 * NANOS_PER_MILLI;
/// A client gives up on a request after this many attempts or this long.
const CLIENT_ATTEMPTS_MAX: u32 = 10;
const CLIENT_BUDGET_NS: Nanos = 5 * NANOS_PER_SEC;
/// Think time between a client's requests.
const THINK_MIN_NS: Nanos = 20 * NANOS_PER_MILLI;
const THINK_MAX_NS: Nanos = 150 * NANOS_PER_MILLI;
/// Wait before retrying when no replica said where the master is.
const BACKOFF_MAX_NS: Nanos = 100 * NANOS_PER_MILLI;
/// Master hints a client follows in a row before it tries a random replica.
const HINT_HOPS_MAX: u32 = 2;

/// What a client does after an answer that was not `Done`.
enum Next {
    Now,
    Backoff,
    GiveUp,
}

/// The workload's clients (the last one issues the liveness phase's writes) and what their
/// answers established.
pub(super) struct Clients {
    pub(super) list: Vec<Client>,
    /// The client each opened session belongs to (replies carry the session's id).
    session_clients: BTreeMap<ClientId, usize>,
    /// Writes answered `Done`: they must never be lost.
    pub(super) acked: Vec<(ClientId, Seq)>,
    /// The workload's random stream: commands, think times, targets, backoffs.
    rng: ChaCha8Rng,
}

impl Clients {
    pub(super) fn new(opts: &SimOptions, plan: &FaultPlan, rng: ChaCha8Rng) -> Clients {
        // Every second client opens its sessions through the log, as node connections do, and
        // every client does where the store forgets sessions: a retry under a client-chosen id
        // the store forgot would start the session again and apply a second time.
        let opened =
            |c: usize| !opts.client_chosen_sessions && (c % 2 == 1 || plan.forgets_sessions());
        let mut list: Vec<Client> = (0..opts.clients)
            .map(|c| Client::new(c as ClientId + 1, false, opened(c)))
            .collect();
        let liveness_id = opts.clients as ClientId + 1;
        let liveness_opens = !opts.client_chosen_sessions && plan.forgets_sessions();
        list.push(Client::new(liveness_id, true, liveness_opens));
        Clients {
            list,
            session_clients: BTreeMap::new(),
            acked: Vec::new(),
            rng,
        }
    }

    /// The client that issues the liveness phase's writes.
    pub(super) fn liveness_client(&self) -> usize {
        self.list.len() - 1
    }

    /// The client a reply to `client_id` goes to: a client's own id is its index plus one.
    pub(super) fn client_of(&self, client_id: ClientId) -> usize {
        if client_id & OPENED_SESSION_BIT == 0 {
            return client_id as usize - 1;
        }
        *self
            .session_clients
            .get(&client_id)
            .unwrap_or_else(|| panic!("a reply to session {client_id}, which no client opened"))
    }
}

impl World {
    /// Wakes the workload's clients at random times within one think time.
    pub(super) fn start_clients(&mut self) {
        for c in 0..self.opts.clients {
            let at = self.clients.rng.gen_range(0..=THINK_MAX_NS);
            self.schedule(at, Event::ClientWake { client: c });
        }
    }

    pub(super) fn deliver_request(
        &mut self,
        c: usize,
        to: usize,
        request: ClientRequest,
    ) -> Result<(), Failure> {
        let up = self.replicas.nodes[to].is_up();
        if let Some(pending) = &mut self.clients.list[c].pending {
            if pending.request_id == (request.client_id, request.seq) {
                pending.copies_in_flight -= 1;
                pending.copies_delivered += up as u32;
            }
        }
        self.drive(to, Input::Request(request))
    }

    pub(super) fn client_wake(&mut self, c: usize) {
        let client = &self.clients.list[c];
        let active = if client.liveness {
            self.phase == Phase::Liveness
        } else {
            self.phase == Phase::Faults
        };
        if !active || client.pending.is_some() {
            return;
        }
        let command = if client.liveness {
            let value = format!("{}", client.seq + 1).into_bytes();
            Command::Set {
                key: b"live".to_vec(),
                value,
            }
        } else {
            let client = &mut self.clients.list[c];
            let command = match client.next.take() {
                Some(next) => next,
                None => random_command(&mut self.clients.rng),
            };
            let first = client.first_needed(command.clone());
            if first != command && matches!(command, Command::Transaction { .. }) {
                client.next = Some(command); // after the session opens
            }
            first
        };
        let client = &mut self.clients.list[c];
        let request_id = client.next_request_id(&command);
        let op = self.recorder.invoke(client.id, self.now, command.clone());
        client.pending = Some(Pending {
            op,
            command,
            request_id,
            invoked_ns: self.now,
            attempts: 0,
            copies_in_flight: 0,
            copies_delivered: 0,
            rejections: 0,
            indeterminate: false,
            answers: Vec::new(),
            hint_hops: 0,
        });
        self.stats.ops_invoked += 1;
        self.send_attempt(c);
    }

    fn send_attempt(&mut self, c: usize) {
        let n = self.replicas.len();
        let target = match self.clients.list[c].master {
            Some(m) => m,
            None => self.clients.rng.gen_range(0..n),
        };
        let client = &mut self.clients.list[c];
        let pending = client.pending.as_mut().expect("an attempt needs a request");
        pending.attempts += 1;
        let (client_id, seq) = pending.request_id;
        let request = ClientRequest {
            client_id,
            seq,
            command: pending.command.clone(),
        };
        self.send_request(c, target, request);
        self.set_client_timer(c, CLIENT_TIMEOUT_NS, false);
    }

    fn set_client_timer(&mut self, c: usize, after: Nanos, retry: bool) {
        let client = &mut self.clients.list[c];
        client.timer_gen += 1;
        let gen = client.timer_gen;
        self.schedule(
            self.now + after,
            Event::ClientTimer {
                client: c,
                gen,
                retry,
            },
        );
    }

    pub(super) fn client_timer(&mut self, c: usize, retry: bool) {
        if self.clients.list[c].pending.is_none() {
            return;
        }
        if !retry {
            self.clients.list[c].master = None; // no answer: try someone else
        }
        self.retry_or_give_up(c, 0);
    }

    fn retry_or_give_up(&mut self, c: usize, backoff: Nanos) {
        let client = &self.clients.list[c];
        let pending = client.pending.as_ref().expect("retrying a request");
        let exhausted = pending.attempts >= CLIENT_ATTEMPTS_MAX
            || self.now >= pending.invoked_ns + CLIENT_BUDGET_NS;
        if exhausted && !client.liveness {
            return self.give_up(c);
        }
        if backoff == 0 {
            self.send_attempt(c);
        } else {
            self.set_client_timer(c, backoff, true);
        }
    }

    fn give_up(&mut self, c: usize) {
        let pending = self.clients.list[c]
            .pending
            .take()
            .expect("giving up a request");
        self.clients.list[c].next = None;
        if pending.certainly_not_applied() {
            self.recorder.fail(pending.op, self.now);
            self.stats.ops_failed += 1;
        } else {
            self.stats.ops_unknown += 1; // never completed: may take effect any time, or never
        }
        self.next_op_later(c);
    }

    fn next_op_later(&mut self, c: usize) {
        self.clients.list[c].timer_gen += 1;
        let think = if self.clients.list[c].liveness {
            0
        } else {
            self.clients.rng.gen_range(THINK_MIN_NS..=THINK_MAX_NS)
        };
        self.schedule(self.now + think, Event::ClientWake { client: c });
    }

    pub(super) fn client_response(
        &mut self,
        c: usize,
        from: usize,
        id: u64,
        response: ClientResponse,
    ) {
        let client = &mut self.clients.list[c];
        let Some(pending) = client.pending.as_mut() else {
            return;
        };
        let answers_this = pending.request_id == (response.client_id, response.seq);
        if !answers_this || pending.answers.contains(&id) {
            return; // an answer to an earlier request, or a copy of one already handled
        }
        pending.answers.push(id);
        let next = match response.outcome {
            Outcome::Done(reply) => return self.client_done(c, reply),
            Outcome::Rejected(rejection) => rejected(client, from, rejection),
            Outcome::Indeterminate => {
                pending.indeterminate = true;
                client.master = None;
                Next::Backoff
            }
        };
        match next {
            Next::Now => self.retry_or_give_up(c, 0),
            Next::Backoff => {
                let backoff = self.clients.rng.gen_range(1..=BACKOFF_MAX_NS);
                self.retry_or_give_up(c, backoff);
            }
            Next::GiveUp => self.give_up(c),
        }
    }

    fn client_done(&mut self, c: usize, reply: Reply) {
        let client = &mut self.clients.list[c];
        let mut pending = client.pending.take().expect("a request to complete");
        let stale = matches!(reply, Reply::Error(CommandError::StaleRequest { .. }));
        if pending.command.is_write() && !stale {
            self.clients.acked.push(pending.request_id);
        }
        let follow_up = follow_up(&pending.command, &reply, &mut client.tx_retries);
        if follow_up.is_none() && pending.command != Command::OpenSession {
            client.tx_retries = 0;
        }
        client.next = follow_up.or(client.next.take());
        if let Some(session) = client.learn(&pending.command, &reply) {
            self.clients.session_clients.insert(session, c);
            self.stats.sessions_opened += 1;
        }
        // A `StaleRequest` refuses the copy it answers (the store forgot the session, so that
        // copy was not applied); an earlier copy may still have been applied, its answer lost,
        // and then the op is recorded with its StaleRequest reply, which the checker reads as
        // unknown (applied or not).
        pending.rejections += stale as u32;
        if stale && pending.certainly_not_applied() {
            self.recorder.fail(pending.op, self.now);
            self.stats.ops_failed += 1;
        } else {
            self.recorder.ok(pending.op, self.now, reply);
            self.stats.ops_ok += 1;
        }
        if self.clients.list[c].liveness && self.liveness_write_done() {
            return;
        }
        self.next_op_later(c);
    }
}

/// What client `client` does after replica `from` refused its pending request.
fn rejected(client: &mut Client, from: usize, rejection: Rejection) -> Next {
    let pending = client.pending.as_mut().expect("a refused request");
    pending.rejections += 1;
    match rejection {
        Rejection::NotMaster { master_hint } => {
            // Hints can be stale: two cut-off replicas may name each other. Follow at most
            // HINT_HOPS_MAX in a row, then back off and pick a replica at random.
            pending.hint_hops += 1;
            let hint = master_hint.map(|id| id as usize - 1).filter(|m| *m != from);
            client.master = hint.filter(|_| pending.hint_hops <= HINT_HOPS_MAX);
            if client.master.is_some() {
                Next::Now
            } else {
                pending.hint_hops = 0;
                Next::Backoff
            }
        }
        Rejection::Busy => Next::Backoff,
        Rejection::Invalid(_) => Next::GiveUp,
    }
}
