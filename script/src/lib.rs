//! Redis 7.0 Lua scripts and functions as a pure library: compile and run a script body (or a
//! function of a library) with KEYS and ARGV, calling back into the caller for every
//! `redis.call`/`redis.pcall`, and return the reply as plain data.
//!
//! Promises:
//! - Deterministic: a run in the thread's warm Lua 5.1 state gives what it gives in a new one
//!   (see `warm`: what a run may change is reset or checked after it); there is no os, io,
//!   clock or unseeded randomness (`math.random` is a drand48 seeded by the caller), so the same script,
//!   arguments, seed and callback replies give the same reply and the same calls on every replica.
//! - Bounded: an instruction budget ([`INSTRUCTIONS_MAX`]) counted by a hook turns a runaway
//!   script into [`BUDGET_ERROR`] on every replica (never a wall clock), and the state's memory is
//!   capped at [`MEMORY_BYTES_MAX`].
//! - Redis 7.0's behaviour: the `redis` API, Lua↔RESP conversions, read-only globals and library
//!   tables, the error formats, `bit`, `cjson` and `cmsgpack`, and FUNCTION libraries (`#!lua name=lib`).

mod bit;
mod cjson;
mod cmsgpack;
mod convert;
mod library;
mod limits;
mod resp;
mod run;
mod sha;
mod shebang;
mod state;
mod warm;

pub use library::{load_library, Function, Library};
pub use limits::{BUDGET_ERROR, INSTRUCTIONS_MAX, MEMORY_BYTES_MAX};
pub use resp::Resp;
pub use run::{eval, fcall, Invocation};
pub use sha::sha1_hex;
pub use shebang::{script_flags, ScriptFlags};
pub use warm::{reset, warm_state_intact};
