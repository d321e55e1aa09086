//! The trace hash: a digest of every processed event, to prove two runs of a seed identical.

use std::hash::{Hash, Hasher};

use keyspace_checker::FxHasher;
use keyspace_core::{ClientRequest, ClientResponse, Message, Outcome, Rejection};

/// A hash of any hashable value.
pub fn digest<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut h = FxHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// A digest of a replica-to-replica message, every field included.
pub fn message_digest(msg: &Message) -> u64 {
    digest(msg)
}

pub fn request_digest(request: &ClientRequest) -> u64 {
    digest(request)
}

pub fn response_digest(response: &ClientResponse) -> u64 {
    let mut h = FxHasher::new();
    (response.client_id, response.seq).hash(&mut h);
    match &response.outcome {
        Outcome::Done(reply) => (0u8, reply).hash(&mut h),
        Outcome::Rejected(Rejection::NotMaster { master_hint }) => (1u8, master_hint).hash(&mut h),
        Outcome::Rejected(Rejection::Busy) => 2u8.hash(&mut h),
        Outcome::Rejected(Rejection::Invalid(error)) => (3u8, error).hash(&mut h),
        Outcome::Indeterminate => 4u8.hash(&mut h),
    }
    h.finish()
}
