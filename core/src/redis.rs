//! Redis commands as the store sees them: the table of every command name and arity
//! ([`table`]), the parser of a command's arguments into store commands ([`parse`]), and how
//! store replies are shown to a client ([`shape`]). Plain data, no I/O: the node uses it for
//! its clients, and a script run at apply time uses the very same functions, so that
//! `redis.call` parses and answers exactly as a client sees.
//!
//! Adding a store command: one row in [`table::COMMANDS`], one arm in [`parse::parse_store`],
//! and (only if its reply is shown in a new way) one [`Shape`] variant.

pub mod args;
pub mod collections;
pub mod expiry;
pub mod getkeys;
pub mod lists;
pub mod noscript;
pub mod parse;
pub mod shape;
pub mod strings;
pub mod table;
pub mod zsets;

pub use args::{arity_error, parse_db, parse_i64, text, DB_OUT_OF_RANGE, NOT_AN_INTEGER};
pub use noscript::noscript;
pub use parse::{parse_store, per_key, StoreCall};
pub use shape::{show, show_replies, value_range, Resp, Shape};
pub use table::{arity_ok, lookup, spec, Kind, Spec, COMMANDS};

#[cfg(test)]
mod tests;
