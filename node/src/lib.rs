//! keyspace-node: the real-I/O shell around `keyspace-core` (TCP peers, files, RESP clients).
//! Filled in by the production-node issue; the crate exists so the workspace is whole.
