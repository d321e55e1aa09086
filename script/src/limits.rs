//! The fixed bounds every replica applies identically.

/// Instructions one script run may execute; counted, never timed.
pub const INSTRUCTIONS_MAX: u64 = 50_000_000;

/// Instructions a FUNCTION LOAD may execute while registering its functions.
pub const LOAD_INSTRUCTIONS_MAX: u64 = 5_000_000;

/// The hook fires every this many instructions; the budget is checked there.
pub const HOOK_INSTRUCTIONS: u32 = 10_000;

/// Memory one Lua state may allocate.
pub const MEMORY_BYTES_MAX: usize = 64 << 20;

/// Nesting of a table converted to a reply (and of cjson values).
pub const NESTING_MAX: usize = 1000;

/// The reply of a script that ran out of its instruction budget.
pub const BUDGET_ERROR: &str = "ERR script exceeded the instruction budget";

/// The reply of a library whose loading ran out of its instruction budget.
pub const LOAD_BUDGET_ERROR: &str = "ERR FUNCTION LOAD timeout (instruction budget exceeded)";

const _: () = assert!(INSTRUCTIONS_MAX.is_multiple_of(HOOK_INSTRUCTIONS as u64));
const _: () = assert!(LOAD_INSTRUCTIONS_MAX < INSTRUCTIONS_MAX);
