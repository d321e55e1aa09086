//! What a replica emits, in the order the shell carries it out, and the rule that a message
//! backed by a write leaves only once that write is durable.

use std::collections::VecDeque;

use crate::command::{ClientRequest, ClientResponse, Outcome};
use crate::msg::Message;
use crate::mutant::{self, Mutant};
use crate::storage::StorageWrite;
use crate::types::NodeId;

/// Plain-data effects for the shell to carry out; see the module docs for the order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Send {
        to: NodeId,
        msg: Message,
    },
    Persist {
        token: u64,
        writes: Vec<StorageWrite>,
    },
    Reply(ClientResponse),
}

/// The replica's outputs, its messages to itself, and the messages held for persistence.
pub(super) struct Outbox {
    me: NodeId,
    mutant: Option<Mutant>,
    outputs: VecDeque<Output>,
    /// Messages to this replica itself, handled before the current input returns.
    loopback: VecDeque<Message>,
    /// Messages waiting for the writes of their token to become durable, in token order.
    held: VecDeque<(u64, NodeId, Message)>,
    next_token: u64,
    persisted_token: u64,
}

impl Outbox {
    pub(super) fn new(me: NodeId, mutant: Option<Mutant>) -> Self {
        Self {
            me,
            mutant,
            outputs: VecDeque::new(),
            loopback: VecDeque::new(),
            held: VecDeque::new(),
            next_token: 1,
            persisted_token: 0,
        }
    }

    pub(super) fn send(&mut self, to: NodeId, msg: Message) {
        if to == self.me {
            self.loopback.push_back(msg);
        } else {
            self.outputs.push_back(Output::Send { to, msg });
        }
    }

    /// Sends `msg` to every member of `nodes`, this replica included.
    pub(super) fn broadcast(&mut self, nodes: &[NodeId], msg: Message) {
        for &to in nodes {
            self.send(to, msg.clone());
        }
    }

    /// Sends `msg` to every member of `nodes` but this replica.
    pub(super) fn broadcast_to_others(&mut self, nodes: &[NodeId], msg: Message) {
        for &to in nodes {
            if to != self.me {
                self.send(to, msg.clone());
            }
        }
    }

    /// Emits `writes` and returns their token; sends made with [`Self::send_after`] for this
    /// token leave only once it is durable.
    pub(super) fn persist(&mut self, writes: Vec<StorageWrite>) -> u64 {
        let token = self.next_token;
        self.next_token += 1;
        self.outputs.push_back(Output::Persist { token, writes });
        token
    }

    /// The newest token issued (0 before the first).
    pub(super) fn last_token(&self) -> u64 {
        self.next_token - 1
    }

    pub(super) fn send_after(&mut self, token: u64, to: NodeId, msg: Message) {
        if mutant::is(self.mutant, Mutant::AckBeforePersist) {
            self.send(to, msg); // wrong on purpose: the answer races the disk
            return;
        }
        assert!(token < self.next_token, "token {token} was never issued");
        if token <= self.persisted_token {
            self.send(to, msg);
        } else {
            let last = self.held.back().map_or(0, |(t, _, _)| *t);
            assert!(token >= last, "held messages out of token order");
            self.held.push_back((token, to, msg));
        }
    }

    pub(super) fn reply(&mut self, request: &ClientRequest, outcome: Outcome) {
        self.push_reply(ClientResponse {
            client_id: request.client_id,
            seq: request.seq,
            outcome,
        });
    }

    pub(super) fn push_reply(&mut self, response: ClientResponse) {
        self.outputs.push_back(Output::Reply(response));
    }

    /// Notes that every token up to `token` is durable; false if that was known already.
    pub(super) fn mark_persisted(&mut self, token: u64) -> bool {
        assert!(
            token < self.next_token,
            "persisted token {token} was never issued"
        );
        if token <= self.persisted_token {
            return false;
        }
        self.persisted_token = token;
        true
    }

    /// Sends the held messages whose writes are now durable.
    pub(super) fn release_held(&mut self) {
        while let Some((t, _, _)) = self.held.front() {
            if *t > self.persisted_token {
                break;
            }
            let (_, to, msg) = self.held.pop_front().expect("front exists");
            self.send(to, msg);
        }
    }

    /// Held messages wait only for tokens issued and not yet durable; an input leaves no
    /// message to itself unhandled.
    pub(super) fn check_invariants(&self) {
        assert!(self.persisted_token < self.next_token);
        if let Some((first, _, _)) = self.held.front() {
            assert!(
                *first > self.persisted_token,
                "a message held behind a durable token"
            );
        }
        if let Some((last, _, _)) = self.held.back() {
            assert!(*last < self.next_token);
        }
        assert!(
            self.loopback.is_empty(),
            "messages to itself left unhandled"
        );
    }

    pub(super) fn persisted_token(&self) -> u64 {
        self.persisted_token
    }

    pub(super) fn pop_loopback(&mut self) -> Option<Message> {
        self.loopback.pop_front()
    }

    pub(super) fn poll(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::{Accepted, Commit};
    use crate::types::Ballot;

    fn accepted(slot: u64) -> Message {
        Message::Accepted(Accepted {
            ballot: Ballot { round: 1, node: 2 },
            slot,
        })
    }

    #[test]
    fn a_message_backed_by_a_write_leaves_only_once_the_write_is_durable() {
        let mut outbox = Outbox::new(1, None);
        let first = outbox.persist(Vec::new());
        outbox.send_after(first, 2, accepted(1));
        let second = outbox.persist(Vec::new());
        outbox.send_after(second, 2, accepted(2));
        outbox.check_invariants();
        let persists = [outbox.poll(), outbox.poll()];
        assert!(persists
            .iter()
            .all(|o| matches!(o, Some(Output::Persist { .. }))));
        assert_eq!(outbox.poll(), None, "both answers held");
        assert!(outbox.mark_persisted(first));
        outbox.release_held();
        let sent = Output::Send {
            to: 2,
            msg: accepted(1),
        };
        assert_eq!(outbox.poll(), Some(sent));
        assert_eq!(outbox.poll(), None, "the second still waits");
        assert!(!outbox.mark_persisted(first), "already known durable");
        outbox.check_invariants();
    }

    #[test]
    fn messages_to_itself_are_looped_back_not_sent() {
        let mut outbox = Outbox::new(1, None);
        let commit = Message::Commit(Commit {
            ballot: Ballot::ZERO,
            chosen_through: 0,
            durable_floor: 0,
        });
        outbox.broadcast(&[1, 2, 3], commit.clone());
        assert_eq!(outbox.pop_loopback(), Some(commit));
        let sent: Vec<NodeId> = std::iter::from_fn(|| outbox.poll())
            .map(|o| match o {
                Output::Send { to, .. } => to,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(sent, [2, 3]);
    }

    #[test]
    #[should_panic(expected = "never issued")]
    fn a_token_never_issued_cannot_be_reported_durable() {
        let mut outbox = Outbox::new(1, None);
        outbox.persist(Vec::new());
        outbox.mark_persisted(2);
    }

    #[test]
    #[should_panic(expected = "held behind a durable token")]
    fn the_invariant_check_catches_a_message_held_past_its_write() {
        let mut outbox = Outbox::new(1, None);
        let token = outbox.persist(Vec::new());
        outbox.send_after(token, 2, accepted(1));
        outbox.persisted_token = token; // durable, but the message was not released
        outbox.check_invariants();
    }
}
