//! The payload of `FUNCTION DUMP` / `FUNCTION RESTORE`: the libraries' codes, versioned and
//! checksummed. keyspace's own format (Redis's is an RDB blob with a CRC64 footer):
//!
//! ```text
//! "KSFN" | version: u16 LE | count: u32 LE | (len: u32 LE, code)* | crc32c of all before: u32 LE
//! ```
//!
//! A payload of another version, with a wrong checksum or a bad frame is refused whole with
//! Redis's error, so a bad RESTORE changes nothing.

use super::LIBRARIES_MAX;

const MAGIC: &[u8; 4] = b"KSFN";
/// The payload format this build writes and reads.
pub const DUMP_VERSION: u16 = 1;
/// Redis's reply to a payload it cannot take.
pub const BAD_PAYLOAD: &str = "ERR DUMP payload version or checksum are wrong";
const HEADER_BYTES: usize = MAGIC.len() + 2 + 4;
const CRC_BYTES: usize = 4;

/// The payload of `codes` (each a library's code, as FUNCTION LOAD took it).
pub fn encode<'a>(codes: impl ExactSizeIterator<Item = &'a [u8]>) -> Vec<u8> {
    let count = codes.len();
    assert!(
        count <= LIBRARIES_MAX,
        "a dump holds the libraries the state keeps"
    );
    let mut out = Vec::with_capacity(HEADER_BYTES + CRC_BYTES);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&DUMP_VERSION.to_le_bytes());
    out.extend_from_slice(&u32::try_from(count).expect("bounded").to_le_bytes());
    for code in codes {
        out.extend_from_slice(
            &u32::try_from(code.len())
                .expect("a value fits")
                .to_le_bytes(),
        );
        out.extend_from_slice(code);
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    assert!(out.len() >= HEADER_BYTES + CRC_BYTES);
    out
}

/// The libraries' codes of a payload, or [`BAD_PAYLOAD`].
pub fn decode(payload: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    framed(payload).ok_or_else(|| BAD_PAYLOAD.to_string())
}

fn framed(payload: &[u8]) -> Option<Vec<Vec<u8>>> {
    let body_len = payload.len().checked_sub(CRC_BYTES)?;
    let (body, crc) = payload.split_at(body_len);
    if body.len() < HEADER_BYTES || !body.starts_with(MAGIC) {
        return None;
    }
    if u32::from_le_bytes(crc.try_into().ok()?) != crc32c::crc32c(body) {
        return None;
    }
    let mut reader = Reader {
        rest: &body[MAGIC.len()..],
    };
    if u16::from_le_bytes(reader.take(2)?.try_into().ok()?) != DUMP_VERSION {
        return None;
    }
    let count = usize::try_from(reader.u32()?).ok()?;
    if count > LIBRARIES_MAX {
        return None;
    }
    let mut codes = Vec::with_capacity(count);
    for _ in 0..count {
        let len = usize::try_from(reader.u32()?).ok()?;
        codes.push(reader.take(len)?.to_vec());
    }
    assert_eq!(codes.len(), count, "every library announced was read");
    reader.rest.is_empty().then_some(codes)
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.rest.len() < n {
            return None;
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes() -> Vec<Vec<u8>> {
        vec![
            b"#!lua name=a\ncode a".to_vec(),
            Vec::new(),
            b"#!lua name=b\n".to_vec(),
        ]
    }

    #[test]
    fn a_payload_gives_back_the_codes_it_was_made_of() {
        let payload = encode(codes().iter().map(Vec::as_slice));
        assert_eq!(decode(&payload), Ok(codes()));
        assert_eq!(decode(&encode(std::iter::empty())), Ok(vec![]));
    }

    #[test]
    fn any_changed_byte_or_cut_makes_the_payload_bad() {
        let payload = encode(codes().iter().map(Vec::as_slice));
        for i in 0..payload.len() {
            let mut bad = payload.clone();
            bad[i] ^= 0x01;
            assert_eq!(decode(&bad), Err(BAD_PAYLOAD.to_string()), "byte {i}");
            assert!(decode(&payload[..i]).is_err(), "cut at {i}");
        }
        assert!(decode(b"bad_payload").is_err());
    }

    #[test]
    fn a_payload_of_another_version_is_refused_even_with_a_good_checksum() {
        let mut payload = encode(codes().iter().map(Vec::as_slice));
        payload.truncate(payload.len() - CRC_BYTES);
        payload[MAGIC.len()..MAGIC.len() + 2].copy_from_slice(&(DUMP_VERSION + 1).to_le_bytes());
        let crc = crc32c::crc32c(&payload);
        payload.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(decode(&payload), Err(BAD_PAYLOAD.to_string()));
    }
}
