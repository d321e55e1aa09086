//! `SYNC` and `PSYNC`: a connection becomes a Redis replication stream. It is answered with an
//! empty RDB (`$<len>` and the file), then every write this replica applies from then on, as
//! Redis 7.0 propagates it to its replicas (the core translates: `keyspace_core::kv::Effect`),
//! with a `SELECT` whenever the database changes.
//!
//! The core records effects only while this replica has a stream ([`Streams`], owned by the
//! shell, turns it on and off), so replicas without one pay nothing. Each stream is bounded
//! like Redis's `client-output-buffer-limit replica`: a reader that falls more than
//! [`STREAM_QUEUED_BYTES_MAX`] behind is disconnected, and so is every stream when the core
//! could not record what was applied (a snapshot installed, or too much left untaken).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use keyspace_core::kv::{Effect, Propagated};
use keyspace_core::Db;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use crate::connection::ClientContext;
use crate::event::Event;

/// Most bytes a stream may have queued and not yet written to its socket (Redis's hard
/// `client-output-buffer-limit` for replicas).
pub const STREAM_QUEUED_BYTES_MAX: usize = 256 * 1024 * 1024;
/// Most chunks (one per core turn with effects) queued for one stream.
pub const STREAM_QUEUED_CHUNKS_MAX: usize = 64 * 1024;

/// The core task's end of one stream.
pub struct Subscriber {
    chunks: mpsc::Sender<Vec<u8>>,
    queued_bytes: Arc<AtomicUsize>,
    /// The database the stream's last command acted on (`None`: nothing sent yet).
    selected: Option<Db>,
}

/// Every stream of this replica.
#[derive(Default)]
pub struct Streams {
    subscribers: Vec<Subscriber>,
}

impl Streams {
    pub fn add(&mut self, subscriber: Subscriber) {
        self.subscribers.push(subscriber);
    }

    pub fn len(&self) -> usize {
        self.subscribers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.subscribers.is_empty()
    }

    /// Sends `propagated` to every stream; drops the streams that are gone, that fell too far
    /// behind, or all of them when the effects were lost.
    pub fn forward(&mut self, propagated: Propagated) {
        let effects = match propagated {
            Propagated::Effects(effects) => effects,
            Propagated::Lost => {
                tracing::warn!(
                    streams = self.subscribers.len(),
                    "replication streams closed: writes were applied without being recorded (a snapshot installed)"
                );
                self.subscribers.clear();
                return;
            }
        };
        self.subscribers.retain_mut(|s| s.send(&effects));
    }
}

impl Subscriber {
    pub fn new(chunks: mpsc::Sender<Vec<u8>>, queued_bytes: Arc<AtomicUsize>) -> Subscriber {
        Subscriber {
            chunks,
            queued_bytes,
            selected: None,
        }
    }

    /// Queues `effects`; false when the stream is to be dropped.
    fn send(&mut self, effects: &[Effect]) -> bool {
        if self.chunks.is_closed() {
            return false;
        }
        if effects.is_empty() {
            return true;
        }
        let bytes = encode(effects, &mut self.selected);
        let queued = self.queued_bytes.load(Ordering::Acquire);
        if queued + bytes.len() > STREAM_QUEUED_BYTES_MAX {
            tracing::warn!(
                queued,
                "replication stream closed: its reader fell behind (client-output-buffer-limit)"
            );
            return false;
        }
        let len = bytes.len();
        self.queued_bytes.fetch_add(len, Ordering::AcqRel);
        self.chunks.try_send(bytes).is_ok()
    }
}

/// `effects` in the Redis protocol, each an array of bulk strings, with a `SELECT` before the
/// first and whenever the database changes (`selected` is the stream's current one).
pub fn encode(effects: &[Effect], selected: &mut Option<Db>) -> Vec<u8> {
    let mut out = Vec::new();
    for effect in effects {
        if *selected != Some(effect.db) {
            let db = effect.db.to_string();
            write_array(&mut out, &[b"SELECT", db.as_bytes()]);
            *selected = Some(effect.db);
        }
        let argv: Vec<&[u8]> = effect.argv.iter().map(Vec::as_slice).collect();
        write_array(&mut out, &argv);
    }
    assert_eq!(*selected, effects.last().map(|e| e.db).or(*selected));
    out
}

fn write_array(out: &mut Vec<u8>, argv: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", argv.len()).as_bytes());
    for arg in argv {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// An empty Redis 7.0 RDB file (format version 10): the magic, a few auxiliary fields, the
/// end-of-file opcode and the CRC-64 of all that.
pub fn empty_rdb() -> Vec<u8> {
    const AUX: u8 = 0xFA;
    const EOF: u8 = 0xFF;
    let mut rdb = b"REDIS0010".to_vec();
    for (key, value) in [("redis-ver", "7.0.15"), ("redis-bits", "64")] {
        rdb.push(AUX);
        for text in [key, value] {
            assert!(text.len() < 64, "a 6-bit length");
            rdb.push(text.len() as u8);
            rdb.extend_from_slice(text.as_bytes());
        }
    }
    rdb.push(EOF);
    let crc = crc64_jones(&rdb);
    rdb.extend_from_slice(&crc.to_le_bytes());
    rdb
}

/// Redis's CRC-64 (Jones polynomial, reflected, no final xor).
pub fn crc64_jones(bytes: &[u8]) -> u64 {
    const POLY_REFLECTED: u64 = 0x95ac_9329_ac4b_c9b5;
    let mut crc = 0u64;
    for byte in bytes {
        crc ^= u64::from(*byte);
        for _ in 0..8 {
            crc = match crc & 1 {
                1 => (crc >> 1) ^ POLY_REFLECTED,
                _ => crc >> 1,
            };
        }
    }
    crc
}

/// Serves `stream` as a replication stream until its reader closes it or it is dropped:
/// subscribes with the core task, answers (`+FULLRESYNC` first for PSYNC), then writes what
/// the core sends. `out` holds replies to commands before it, not yet written.
pub async fn serve(
    mut stream: TcpStream,
    context: &ClientContext,
    psync: bool,
    out: Vec<u8>,
) -> std::io::Result<()> {
    let (chunks_tx, mut chunks) = mpsc::channel(STREAM_QUEUED_CHUNKS_MAX);
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    let (done_tx, done) = oneshot::channel();
    let subscribe = Event::Subscribe {
        chunks: chunks_tx,
        queued_bytes: queued_bytes.clone(),
        subscribed: done_tx,
    };
    if context.core.send(subscribe).await.is_err() || done.await.is_err() {
        return Ok(());
    }
    let mut head = out;
    if psync {
        let replid = crate::info::run_id();
        head.extend_from_slice(format!("+FULLRESYNC {replid} 0\r\n").as_bytes());
    }
    let rdb = empty_rdb();
    head.extend_from_slice(format!("${}\r\n", rdb.len()).as_bytes());
    head.extend_from_slice(&rdb);
    stream.write_all(&head).await?;
    let mut ignored = vec![0u8; 4096];
    loop {
        tokio::select! {
            chunk = chunks.recv() => {
                let Some(chunk) = chunk else { return Ok(()) };
                stream.write_all(&chunk).await?;
                stream.flush().await?; // a no-op on real TCP; madsim sends on flush
                queued_bytes.fetch_sub(chunk.len(), Ordering::AcqRel);
            }
            // A replica's REPLCONF ACKs are read and ignored; end of input ends the stream.
            read = stream.read(&mut ignored) => {
                if read? == 0 {
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn effect(db: Db, words: &[&str]) -> Effect {
        Effect {
            db,
            argv: words.iter().map(|w| w.as_bytes().to_vec()).collect(),
        }
    }

    #[test]
    fn the_stream_selects_the_database_first_and_whenever_it_changes() {
        let mut selected = None;
        let first = encode(&[effect(9, &["SET", "k", "v"])], &mut selected);
        assert_eq!(
            first,
            b"*2\r\n$6\r\nSELECT\r\n$1\r\n9\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
        );
        let next = encode(
            &[effect(9, &["DEL", "k"]), effect(1, &["DEL", "k"])],
            &mut selected,
        );
        let text = String::from_utf8(next).unwrap();
        assert_eq!(text.matches("SELECT").count(), 1);
        assert!(text.starts_with("*2\r\n$3\r\nDEL"));
        assert_eq!(selected, Some(1));
    }

    #[test]
    fn crc64_matches_redis_check_value() {
        assert_eq!(crc64_jones(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }

    #[test]
    fn the_empty_rdb_is_version_10_and_ends_with_its_checksum() {
        let rdb = empty_rdb();
        assert!(rdb.starts_with(b"REDIS0010"));
        let (body, crc) = rdb.split_at(rdb.len() - 8);
        assert_eq!(body.last(), Some(&0xFF));
        assert_eq!(crc, crc64_jones(body).to_le_bytes());
    }

    #[test]
    fn a_stream_that_falls_behind_past_its_limit_is_dropped() {
        let (chunks, mut rx) = mpsc::channel(STREAM_QUEUED_CHUNKS_MAX);
        let queued_bytes = Arc::new(AtomicUsize::new(STREAM_QUEUED_BYTES_MAX - 10));
        let mut streams = Streams::default();
        streams.add(Subscriber::new(chunks, queued_bytes));
        streams.forward(Propagated::Effects(vec![effect(0, &["SET", "k", "v"])]));
        assert!(streams.is_empty());
        assert!(rx.try_recv().is_err(), "nothing queued past the limit");
    }

    #[test]
    fn a_lost_stream_closes_every_subscriber() {
        let (chunks, _rx) = mpsc::channel(4);
        let mut streams = Streams::default();
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        streams.add(Subscriber::new(chunks, queued_bytes));
        streams.forward(Propagated::Effects(vec![effect(0, &["SET", "k", "v"])]));
        assert_eq!(streams.len(), 1);
        streams.forward(Propagated::Lost);
        assert!(streams.is_empty());
    }
}
