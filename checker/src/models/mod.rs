//! The sequential specifications the checker knows.

pub mod keyspace;
pub mod keyspace_check;
pub mod keyspace_scripts;
mod keyspace_state;
pub mod keyspace_timed;
mod keyspace_tx;
pub mod register;
pub mod string_map;
