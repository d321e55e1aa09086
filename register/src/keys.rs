//! Timestamps and the names of the keys a register keeps in every store.
//!
//! A register `NAME` owns the keys that start with `NAME/`:
//! - `NAME/e`, the eternal key, overwritten by every write (a store's put is unconditional, so it
//!   may hold an older value than the newest write once a slow put lands late);
//! - `NAME/w/CCCCCCCCCCCCCCCC.IIIIIIIIIIIIIIII`, one write-once key per timestamp (counter and
//!   client id in fixed-width hex, so the names sort like the timestamps they carry).

use thiserror::Error;

/// Longest register name accepted, in bytes.
pub const NAME_MAX_BYTES: usize = 200;

/// A write's timestamp: ordered by counter, then by the writer's client id. Client ids are unique,
/// so two writes never share a timestamp.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    pub counter: u64,
    pub client: u64,
}

impl Timestamp {
    /// The timestamp of the initial (empty) value: below every write's.
    pub const ZERO: Timestamp = Timestamp {
        counter: 0,
        client: 0,
    };

    /// The next timestamp for `client` after `seen`, the highest it found.
    pub fn after(seen: Timestamp, client: u64) -> Timestamp {
        let counter = seen
            .counter
            .checked_add(1)
            .expect("timestamp counter overflow");
        Timestamp { counter, client }
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:x}", self.counter, self.client)
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum NameError {
    #[error("register name is empty: give a name such as `config`")]
    Empty,
    #[error("register name is {0} bytes; at most {NAME_MAX_BYTES} are allowed")]
    TooLong(usize),
    #[error("register name `{0}` has a character other than A-Z, a-z, 0-9, `_`, `-`, `.`, `:`; use only those")]
    BadCharacter(String),
}

/// The key names of one register.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
    eternal: String,
}

impl Keys {
    /// The names for register `name`. Names keep to characters that no listing command treats
    /// as a pattern, so a listing by prefix matches exactly this register's keys.
    pub fn new(name: &str) -> Result<Keys, NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.len() > NAME_MAX_BYTES {
            return Err(NameError::TooLong(name.len()));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':');
        if !name.chars().all(allowed) {
            return Err(NameError::BadCharacter(name.to_string()));
        }
        Ok(Keys {
            prefix: format!("{name}/"),
            eternal: format!("{name}/e"),
        })
    }

    /// Every key of this register starts with this.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn eternal(&self) -> &str {
        &self.eternal
    }

    /// The write-once key of `ts`.
    pub fn write_once(&self, ts: Timestamp) -> String {
        format!("{}w/{:016x}.{:016x}", self.prefix, ts.counter, ts.client)
    }

    /// The timestamp named by a listed key, if it is one of this register's write-once keys.
    pub fn parse_write_once(&self, key: &str) -> Option<Timestamp> {
        let rest = key.strip_prefix(&self.prefix)?.strip_prefix("w/")?;
        let (counter, client) = rest.split_once('.')?;
        if counter.len() != 16 || client.len() != 16 {
            return None;
        }
        Some(Timestamp {
            counter: u64::from_str_radix(counter, 16).ok()?,
            client: u64::from_str_radix(client, 16).ok()?,
        })
    }

    /// Whether `key` holds a copy of a value of this register (the eternal or a write-once key).
    pub fn is_copy(&self, key: &str) -> bool {
        key == self.eternal || self.parse_write_once(key).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_once_names_sort_like_their_timestamps_and_parse_back() {
        let keys = Keys::new("reg").unwrap();
        let a = Timestamp {
            counter: 9,
            client: u64::MAX,
        };
        let b = Timestamp {
            counter: 10,
            client: 1,
        };
        assert!(a < b);
        assert!(keys.write_once(a) < keys.write_once(b));
        assert_eq!(keys.parse_write_once(&keys.write_once(b)), Some(b));
        assert_eq!(keys.parse_write_once("reg/e"), None);
        assert_eq!(keys.parse_write_once("other/w/0.0"), None);
        assert!(keys.is_copy("reg/e"));
    }

    #[test]
    fn names_with_pattern_characters_are_refused() {
        assert_eq!(
            Keys::new("a*"),
            Err(NameError::BadCharacter("a*".to_string()))
        );
        assert_eq!(Keys::new(""), Err(NameError::Empty));
        assert!(Keys::new(&"x".repeat(NAME_MAX_BYTES + 1)).is_err());
    }
}
