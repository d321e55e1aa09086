//! The sequential specifications the checker knows.

pub mod keyspace;
pub mod register;
pub mod string_map;
