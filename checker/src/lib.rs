//! keyspace-checker: decides whether a history of concurrent operations is linearizable.
//!
//! What it promises:
//! - **Exact verdicts.** [`CheckResult::Linearizable`] means a linearization exists;
//!   [`CheckResult::Violation`] means none does, with the longest linearizable prefix found and
//!   the operation that cannot follow it. A time or memory limit gives [`CheckResult::Unknown`],
//!   never a verdict.
//! - **Unknown outcomes handled.** An operation without a return may have taken effect at any
//!   instant after its invoke, or never; a read without a return constrains nothing.
//! - **Models:** the store's own commands ([`check_kv`], partitioned by key, with multi-key
//!   commands joining the parts they touch), a compare-and-set register ([`check_register`],
//!   Jepsen's etcd test) and a string map with get/put/append ([`check_string_map`]); keys with
//!   deadlines judged within a drift bound ([`LogClock`], [`TimedKeyspaceModel`]).
//! - **Multi-writer regularity** of a read/write register ([`check_regular`]), decided exactly
//!   in polynomial time (definition in [`regular`]).
//! - **Recording** for the simulator and cluster tests: [`Recorder`], which writes the JSON-lines
//!   format that `keyspace-check` reads.
//!
//! The search is in [`engine`](crate::engine)'s docs; formats and figures in the crate README.

mod engine;
pub mod formats;
pub mod fxhash;
pub mod history;
pub mod html;
pub mod log_clock;
pub mod model;
pub mod models;
mod recorder;
pub mod regular;
mod runner;

pub use fxhash::FxHasher;
pub use history::{End, Operation, Outcome, Recorded};
pub use log_clock::LogClock;
pub use model::Model;
pub use models::keyspace::{History, KeyspaceModel};
pub use models::keyspace_check::check_kv;
pub use models::keyspace_timed::TimedKeyspaceModel;
pub use models::register::{check_register, CasRegister, RegisterInput, RegisterOutput};
pub use models::string_map::{check_string_map, MapInput, MapOutput, StringMap};
pub use recorder::{OpId, Recorder};
pub use regular::{check_regular, Irregular};
pub use runner::{CheckOptions, CheckResult, LinearizedOp, Violation, MEMORY_MAX_BYTES_DEFAULT};
