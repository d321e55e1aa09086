//! The record stored under every key: a value and its timestamp, checksummed.
//!
//! Layout (little-endian): magic `KSRG` (4), version (1), counter (8), client (8), value length
//! (4), CRC32C of everything before it and of the value (4), then the value.

use thiserror::Error;

use crate::keys::Timestamp;

const MAGIC: [u8; 4] = *b"KSRG";
const VERSION: u8 = 1;
const HEADER_BYTES: usize = 4 + 1 + 8 + 8 + 4 + 4;

/// Largest value a register holds, in bytes.
pub const VALUE_MAX_BYTES: usize = 64 << 20;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("record of {0} bytes is shorter than its {HEADER_BYTES}-byte header: the key holds something this register did not write")]
    Short(usize),
    #[error("record does not start with the register's magic: the key holds something this register did not write")]
    BadMagic,
    #[error("record version {0} is not known to this build (it reads version {VERSION})")]
    BadVersion(u8),
    #[error("record says its value has {said} bytes but carries {carried}")]
    BadLength { said: usize, carried: usize },
    #[error("record checksum mismatch: the stored bytes were corrupted")]
    BadChecksum,
}

/// A timestamped value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub ts: Timestamp,
    pub value: Vec<u8>,
}

impl Record {
    pub fn encode(&self) -> Vec<u8> {
        assert!(self.value.len() <= VALUE_MAX_BYTES, "value over the limit");
        let mut out = Vec::with_capacity(HEADER_BYTES + self.value.len());
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.ts.counter.to_le_bytes());
        out.extend_from_slice(&self.ts.client.to_le_bytes());
        let len = u32::try_from(self.value.len()).expect("value length fits u32");
        out.extend_from_slice(&len.to_le_bytes());
        let crc = crc32c::crc32c_append(crc32c::crc32c(&out), &self.value);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&self.value);
        out
    }

    /// Decodes and verifies a record.
    pub fn decode(bytes: &[u8]) -> Result<Record, RecordError> {
        if bytes.len() < HEADER_BYTES {
            return Err(RecordError::Short(bytes.len()));
        }
        if bytes[..4] != MAGIC {
            return Err(RecordError::BadMagic);
        }
        if bytes[4] != VERSION {
            return Err(RecordError::BadVersion(bytes[4]));
        }
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let said = u32_at(21) as usize;
        let value = &bytes[HEADER_BYTES..];
        if said != value.len() {
            return Err(RecordError::BadLength {
                said,
                carried: value.len(),
            });
        }
        let crc = crc32c::crc32c_append(crc32c::crc32c(&bytes[..25]), value);
        if crc != u32_at(25) {
            return Err(RecordError::BadChecksum);
        }
        Ok(Record {
            ts: Timestamp {
                counter: u64_at(5),
                client: u64_at(13),
            },
            value: value.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            ts: Timestamp {
                counter: 7,
                client: 0xabc,
            },
            value: b"hello".to_vec(),
        }
    }

    #[test]
    fn a_record_decodes_to_what_was_encoded() {
        assert_eq!(Record::decode(&record().encode()), Ok(record()));
    }

    #[test]
    fn every_flipped_bit_is_refused() {
        let bytes = record().encode();
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(Record::decode(&flipped).is_err(), "bit {bit} passed");
        }
    }

    #[test]
    fn truncated_and_foreign_values_are_refused() {
        let bytes = record().encode();
        assert!(Record::decode(&bytes[..bytes.len() - 1]).is_err());
        assert_eq!(Record::decode(b"abc"), Err(RecordError::Short(3)));
        assert_eq!(
            Record::decode(&[0u8; HEADER_BYTES]),
            Err(RecordError::BadMagic)
        );
    }
}
