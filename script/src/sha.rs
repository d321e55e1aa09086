//! Script identity: Redis's SHA1 of the body, lowercase hex.

use sha1::{Digest, Sha1};

/// Lowercase hex SHA1 of `body`, as `SCRIPT LOAD` and `redis.sha1hex` answer.
pub fn sha1_hex(body: &[u8]) -> String {
    let digest = Sha1::digest(body);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex.len(), 40);
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_hex_of_empty_body_matches_redis() {
        assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            sha1_hex(b"return 1"),
            "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"
        );
    }
}
