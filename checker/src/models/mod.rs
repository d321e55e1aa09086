//! The sequential specifications the checker knows.

pub mod keyspace;
mod keyspace_tx;
pub mod register;
pub mod string_map;
