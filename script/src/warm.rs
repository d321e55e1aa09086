//! One Lua state kept warm per thread for the runs of that thread, with the compiled chunks
//! of the scripts and libraries it ran cached by their SHA1.
//!
//! Determinism does not depend on it: a run in the warm state gives what a run in a new state
//! gives. Every run starts with a new budget, its own seed and cjson's default options; KEYS
//! and ARGV are removed after it; the tables reachable from the globals are checked after it
//! (the prelude's `end_run`), and a state that is not intact, whose run failed inside the
//! host, or whose run spent its budget, is dropped. [`reset`] drops it on SCRIPT FLUSH,
//! FUNCTION FLUSH and when a state machine is restored from a snapshot.

use std::cell::RefCell;
use std::collections::HashMap;

use mlua::{Function, Lua, Result, Table};

use crate::limits::{INSTRUCTIONS_MAX, MEMORY_BYTES_MAX};
use crate::state::{host_table, new_state, Handles};

const PRELUDE: &str = include_str!("prelude.lua");

/// Compiled chunks kept; past this the cache starts over.
pub(crate) const COMPILED_MAX: usize = 1_000;

/// A compiled chunk's key: its chunk name and the SHA1 of its code.
pub(crate) type ChunkKey = (&'static str, String);

pub(crate) struct Warm {
    pub(crate) lua: Lua,
    pub(crate) handles: Handles,
    pub(crate) host: Table,
    pub(crate) internals: Table,
    pub(crate) compiled: RefCell<HashMap<ChunkKey, Function>>,
}

thread_local! {
    static WARM: RefCell<Option<Warm>> = const { RefCell::new(None) };
}

impl Warm {
    fn new() -> Result<Warm> {
        let (lua, handles) = new_state()?;
        handles.budget.start(INSTRUCTIONS_MAX);
        let host = host_table(&lua, &handles.budget)?;
        let internals: Table = lua
            .load(PRELUDE)
            .set_name("=[internal]")
            .call(host.clone())?;
        Ok(Warm {
            lua,
            handles,
            host,
            internals,
            compiled: RefCell::new(HashMap::new()),
        })
    }

    /// The thread's warm state, or a new one.
    pub(crate) fn take() -> Result<Warm> {
        match WARM.with(|warm| warm.borrow_mut().take()) {
            Some(warm) => Ok(warm),
            None => Warm::new(),
        }
    }

    /// Gives the state back for the next run.
    pub(crate) fn keep(self) {
        assert!(
            self.compiled.borrow().len() <= COMPILED_MAX,
            "the compiled cache stays bounded"
        );
        WARM.with(|warm| *warm.borrow_mut() = Some(self));
    }

    /// Resets what a run may change and bounds its memory: the state's memory now plus
    /// [`MEMORY_BYTES_MAX`].
    pub(crate) fn start_run(&self, seed: u64, instructions_max: u64) -> Result<()> {
        self.handles.start_run(seed, instructions_max);
        self.lua.gc_restart();
        self.lua
            .set_memory_limit(self.lua.used_memory() + MEMORY_BYTES_MAX)?;
        Ok(())
    }

    /// Ends a run: whether the state is as the run found it (see the module's comment).
    pub(crate) fn end_run(&self) -> Result<bool> {
        self.lua.set_memory_limit(0)?;
        self.handles.budget.start(INSTRUCTIONS_MAX);
        self.host.set("call", mlua::Value::Nil)?;
        let end: Function = self.internals.get("end_run")?;
        end.call(())
    }
}

/// Drops this thread's warm state: the next run starts in a new one.
pub fn reset() {
    WARM.with(|warm| *warm.borrow_mut() = None);
}

/// Whether this thread's warm state is as its prelude left it (every table reachable from the
/// globals, their metatables, the functions' environments); None without a warm state. For
/// tests: too slow to run after every script.
pub fn warm_state_intact() -> Option<bool> {
    let warm = WARM.with(|warm| warm.borrow_mut().take())?;
    let intact = warm
        .internals
        .get::<Function>("intact")
        .and_then(|intact| intact.call::<bool>(()))
        .expect("the check runs");
    warm.keep();
    Some(intact)
}
