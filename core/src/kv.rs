//! The replicated key-value state machine (in progress).
