//! Reading Redis arguments: names, integers, database numbers, and the error strings Redis
//! answers for them.

use crate::{Db, DATABASES};

pub const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";
pub const DB_OUT_OF_RANGE: &str = "ERR DB index is out of range";
pub const SYNTAX_ERROR: &str = "ERR syntax error";

/// A command name or option as the table spells it: upper case.
pub fn text(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).to_uppercase()
}

/// An integer argument by Redis's rules: the same as a stored integer (no `+`, no leading zero).
pub fn parse_i64(arg: &[u8]) -> Option<i64> {
    crate::kv::parse_integer(arg)
}

/// Redis's error for a wrong number of arguments to `name`.
pub fn arity_error(name: &str) -> String {
    format!(
        "ERR wrong number of arguments for '{}' command",
        name.to_lowercase()
    )
}

/// A database number as Redis reads one: `not_a_number` if it is no integer, out of range
/// if it is not below [`DATABASES`].
pub fn parse_db(arg: &[u8], not_a_number: &str) -> Result<Db, String> {
    match parse_i64(arg) {
        Some(db) if (0..i64::from(DATABASES)).contains(&db) => {
            let db = db as Db;
            assert!(db < DATABASES, "a database number is below DATABASES");
            Ok(db)
        }
        Some(_) => Err(DB_OUT_OF_RANGE.into()),
        None => Err(not_a_number.into()),
    }
}
