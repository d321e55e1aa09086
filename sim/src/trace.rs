//! The trace hash: a digest of every processed event, to prove two runs of a seed identical.

use std::hash::{Hash, Hasher};

use keyspace_core::{ClientRequest, ClientResponse, Message, Outcome, Rejection};

/// FxHash: fast, and the same on every run and platform.
#[derive(Clone, Copy, Debug, Default)]
pub struct Fx(u64);

const K: u64 = 0x517c_c1b7_2722_0a95;

impl Fx {
    pub fn new() -> Self {
        Fx(0)
    }
}

impl Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(n as u64);
    }

    fn write_u16(&mut self, n: u16) {
        self.write_u64(n as u64);
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(n as u64);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn write_i64(&mut self, n: i64) {
        self.write_u64(n as u64);
    }
}

/// A hash of any hashable value.
pub fn digest<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut h = Fx::new();
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
    let mut h = Fx::new();
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
