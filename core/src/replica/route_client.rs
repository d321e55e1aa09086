//! How the replica routes client requests: writes to the leader's batches, linearizable
//! reads to the master's memory (or to wait for its mastership to be ready), dirty reads to
//! the local state.

use super::Replica;
use crate::command::{ClientRequest, CommandKind, Outcome, Rejection};
use crate::types::Nanos;

impl Replica {
    pub(super) fn route_request(&mut self, now_ns: Nanos, request: ClientRequest) {
        if let Err(error) = request.command.validate() {
            let invalid = Rejection::Invalid(error);
            return self.outbox.reply(&request, Outcome::Rejected(invalid));
        }
        match request.command.kind() {
            CommandKind::DirtyRead => {
                let reply = self.learner.read(&request.command);
                self.outbox.reply(&request, Outcome::Done(reply));
            }
            CommandKind::LinearizableRead => self.request_read(now_ns, request),
            CommandKind::Write => self.request_write(request),
        }
    }

    pub(super) fn refuse_not_master(&mut self, request: &ClientRequest) {
        let hint = self.master_hint();
        self.outbox.reply(
            request,
            Outcome::Rejected(Rejection::NotMaster { master_hint: hint }),
        );
    }

    pub(super) fn request_write(&mut self, request: ClientRequest) {
        let pending_max = self.config.pending_requests_max;
        let Some(leader) = &mut self.leader else {
            return self.refuse_not_master(&request);
        };
        if let Err(request) = leader.enqueue_write(request, pending_max) {
            return self
                .outbox
                .reply(&request, Outcome::Rejected(Rejection::Busy));
        }
        self.fill_window();
    }

    pub(super) fn request_read(&mut self, now_ns: Nanos, request: ClientRequest) {
        if self.serves_reads(now_ns) {
            let reply = self.learner.read(&request.command);
            return self.outbox.reply(&request, Outcome::Done(reply));
        }
        let pending_max = self.config.pending_requests_max;
        let Some(leader) = &mut self.leader else {
            return self.refuse_not_master(&request);
        };
        // Served once the mastership is ready.
        if let Err(request) = leader.enqueue_read(request, pending_max) {
            self.outbox
                .reply(&request, Outcome::Rejected(Rejection::Busy));
        }
    }

    /// Serves reads that waited for this mastership to become ready. Called after applying;
    /// reads are only served while the lease is held, which `tick_lease` enforces by stepping
    /// down (and refusing them) once it is not.
    pub(super) fn serve_pending_reads(&mut self) {
        let Some(leader) = &mut self.leader else {
            return;
        };
        for request in leader.take_ready_reads(self.learner.applied_through()) {
            let reply = self.learner.read(&request.command);
            self.outbox.reply(&request, Outcome::Done(reply));
        }
    }
}
