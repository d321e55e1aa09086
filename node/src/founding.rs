//! The data directory's membership record: who this replica is and whom the group was founded
//! with, so that a restart needs no `--peers`.
//!
//! Everything else about the group (members added later, with their addresses, and removals)
//! is in the log and in the snapshot image; what they cannot tell is the configuration of
//! epoch 0, whose founding voters carry no addresses in the log (`--peers` gave them). The
//! record is written once, before the replica takes part (a founder's first start, or a
//! joiner's before it asks to be added), atomically (a temporary file, `fsync`, rename, and an
//! `fsync` of the directory), and verified by its CRC32C whenever it is read.
//!
//! Format, text so an operator can read it:
//! ```text
//! keyspace-membership 1
//! id 4
//! peer_addr 127.0.0.1:7004
//! founder 1 127.0.0.1:7001
//! founder 2 127.0.0.1:7002
//! founder 3 127.0.0.1:7003
//! crc32c 1a2b3c4d
//! ```

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use keyspace_core::NodeId;

/// The record's file name in the data directory.
pub const FILE_NAME: &str = "membership";
const TEMP_NAME: &str = "membership.tmp";
const HEADER: &str = "keyspace-membership 1";
/// Most bytes a record may take (64 founders at most, each a short line).
const RECORD_BYTES_MAX: u64 = 16 * 1024;

/// Who this replica is and whom the group was founded with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundingRecord {
    pub id: NodeId,
    /// Where this replica's peers reach it.
    pub peer_addr: SocketAddr,
    /// The voters of the group's configuration of epoch 0, with their peer addresses.
    pub founders: BTreeMap<NodeId, SocketAddr>,
    /// This replica runs as a witness (it joined with `--witness`): a restart needs no flag.
    pub witness: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot read or write {path}: {source}; check the path and its permissions")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is damaged ({what}); it cannot be trusted: restore it from a backup, or empty the data directory and add the replica under a new id")]
    Damaged { path: PathBuf, what: String },
}

impl FoundingRecord {
    /// The record's text, checksum line included.
    pub fn encode(&self) -> String {
        let mut body = format!("{HEADER}\nid {}\npeer_addr {}\n", self.id, self.peer_addr);
        for (id, addr) in &self.founders {
            body.push_str(&format!("founder {id} {addr}\n"));
        }
        if self.witness {
            body.push_str("witness\n");
        }
        let crc = crc32c::crc32c(body.as_bytes());
        body.push_str(&format!("crc32c {crc:08x}\n"));
        body
    }

    /// Parses and verifies a record's text; the error says what is wrong.
    pub fn decode(text: &str) -> Result<FoundingRecord, String> {
        let Some(body_len) = text.rfind("crc32c ") else {
            return Err("no checksum line".into());
        };
        let (body, crc_line) = text.split_at(body_len);
        let stored = crc_line
            .trim_end()
            .strip_prefix("crc32c ")
            .and_then(|hex| u32::from_str_radix(hex, 16).ok())
            .ok_or("unreadable checksum line")?;
        if crc32c::crc32c(body.as_bytes()) != stored {
            return Err("checksum mismatch".into());
        }
        let mut lines = body.lines();
        if lines.next() != Some(HEADER) {
            return Err(format!("the first line is not '{HEADER}'"));
        }
        let (mut id, mut peer_addr, mut founders) = (None, None, BTreeMap::new());
        let mut witness = false;
        for line in lines {
            let words: Vec<&str> = line.split(' ').collect();
            match words.as_slice() {
                ["id", n] => id = Some(parse_id(n)?),
                ["peer_addr", a] => peer_addr = Some(parse_addr(a)?),
                ["founder", n, a] => {
                    founders.insert(parse_id(n)?, parse_addr(a)?);
                }
                ["witness"] => witness = true,
                _ => return Err(format!("unexpected line '{line}'")),
            }
        }
        let record = FoundingRecord {
            id: id.ok_or("no id line")?,
            peer_addr: peer_addr.ok_or("no peer_addr line")?,
            founders,
            witness,
        };
        if record.founders.is_empty() {
            return Err("no founder lines".into());
        }
        Ok(record)
    }

    /// Reads the record in `dir`; `None` when there is none (a data directory from before
    /// records, or a new one).
    pub fn load(dir: &Path) -> Result<Option<FoundingRecord>, RecordError> {
        let path = dir.join(FILE_NAME);
        let io = |source| RecordError::Io {
            path: path.clone(),
            source,
        };
        let text = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        let damaged = |what: String| RecordError::Damaged {
            path: path.clone(),
            what,
        };
        if text.len() as u64 > RECORD_BYTES_MAX {
            return Err(damaged(format!("longer than {RECORD_BYTES_MAX} bytes")));
        }
        let text = String::from_utf8(text).map_err(|_| damaged("not text".into()))?;
        FoundingRecord::decode(&text).map(Some).map_err(damaged)
    }

    /// Writes the record to `dir` durably and atomically, and reads it back to verify it.
    pub fn store(&self, dir: &Path) -> Result<(), RecordError> {
        let (temp, path) = (dir.join(TEMP_NAME), dir.join(FILE_NAME));
        let io = |source| RecordError::Io {
            path: path.clone(),
            source,
        };
        let mut file = File::create(&temp).map_err(io)?;
        file.write_all(self.encode().as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        fs::rename(&temp, &path).map_err(io)?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        let read_back = FoundingRecord::load(dir)?;
        assert_eq!(
            read_back.as_ref(),
            Some(self),
            "the record read back differs"
        );
        Ok(())
    }
}

fn parse_id(text: &str) -> Result<NodeId, String> {
    match text.parse::<NodeId>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(format!("bad replica id '{text}'")),
    }
}

fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| format!("bad address '{text}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> FoundingRecord {
        let addr = |port| SocketAddr::from(([127, 0, 0, 1], port));
        FoundingRecord {
            id: 4,
            peer_addr: addr(7004),
            founders: (1..=3).map(|id| (id, addr(7000 + id))).collect(),
            witness: false,
        }
    }

    #[test]
    fn a_witness_record_reads_back_as_one() {
        let witness = FoundingRecord {
            witness: true,
            ..record()
        };
        let text = witness.encode();
        assert!(text.contains("\nwitness\n"), "{text}");
        assert_eq!(FoundingRecord::decode(&text), Ok(witness));
    }

    #[test]
    fn record_reads_back_as_written() {
        let text = record().encode();
        assert!(text.contains("founder 2 127.0.0.1:7002\n"), "{text}");
        assert_eq!(FoundingRecord::decode(&text), Ok(record()));
    }

    #[test]
    fn record_with_any_byte_changed_is_refused() {
        let text = record().encode();
        let crc_at = text.rfind("crc32c ").unwrap();
        for at in 0..crc_at {
            let mut bytes = text.clone().into_bytes();
            bytes[at] ^= 0x01;
            let Ok(changed) = String::from_utf8(bytes) else {
                continue;
            };
            assert!(FoundingRecord::decode(&changed).is_err(), "byte {at}");
        }
        let truncated = &text[..text.len() / 2];
        assert!(FoundingRecord::decode(truncated).is_err());
    }

    #[test]
    fn record_stored_in_a_directory_is_loaded_and_a_missing_one_is_none() {
        let dir = std::env::temp_dir().join(format!("ks-founding-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        assert!(FoundingRecord::load(&dir).unwrap().is_none());
        record().store(&dir).unwrap();
        assert_eq!(FoundingRecord::load(&dir).unwrap(), Some(record()));
        fs::write(dir.join(FILE_NAME), "keyspace-membership 1\nid 4\n").unwrap();
        assert!(matches!(
            FoundingRecord::load(&dir),
            Err(RecordError::Damaged { .. })
        ));
        fs::remove_dir_all(&dir).unwrap();
    }
}
