//! A bounded Lua 5.1 state: only the libraries Redis exposes, a seeded PRNG, a memory cap and
//! an instruction budget counted by a hook. The budget, the PRNG and cjson's options are reset
//! at the start of every run ([`Handles::start_run`]), so a state may serve many runs.

use std::cell::Cell;
use std::rc::Rc;

use mlua::{Error, HookTriggers, Lua, LuaOptions, Result, StdLib, Table, Variadic, VmState};

use crate::limits::{HOOK_INSTRUCTIONS, MEMORY_BYTES_MAX};
use crate::{bit, cjson, cmsgpack, sha};

/// Counts hook firings; once over the limit every later firing fails again, so a script that
/// catches the error with pcall still cannot run on.
#[derive(Clone)]
pub(crate) struct Budget {
    hooks: Rc<Cell<u64>>,
    hooks_max: Rc<Cell<u64>>,
}

impl Budget {
    pub(crate) fn exceeded(&self) -> bool {
        self.hooks.get() > self.hooks_max.get()
    }

    /// A new budget of `instructions_max` for the run (or the host's own Lua) that starts.
    pub(crate) fn start(&self, instructions_max: u64) {
        self.hooks.set(0);
        self.hooks_max
            .set(instructions_max / u64::from(HOOK_INSTRUCTIONS));
        assert!(!self.exceeded(), "a run starts within its budget");
    }
}

/// What a run resets in its state: the budget, `math.random`'s generator, cjson's options.
pub(crate) struct Handles {
    pub(crate) budget: Budget,
    generator: Rc<Cell<Option<Drand48>>>,
    cjson: cjson::Options,
}

impl Handles {
    /// Resets what one run may have changed, for a run seeded with `seed`.
    pub(crate) fn start_run(&self, seed: u64, instructions_max: u64) {
        self.budget.start(instructions_max);
        self.generator
            .set(Some(Drand48::seeded(seed as i32 ^ (seed >> 32) as i32)));
        self.cjson.reset();
    }
}

/// drand48 as Redis's rand.c has it, so `math.random` gives Redis's sequence for a seed.
struct Drand48 {
    x: u64,
}

impl Drand48 {
    const MASK: u64 = (1 << 48) - 1;
    const LRAND48_MAX: i64 = i32::MAX as i64;

    fn seeded(seed: i32) -> Drand48 {
        Drand48 {
            x: ((u64::from(seed as u32) << 16) | 0x330E) & Self::MASK,
        }
    }

    fn lrand48(&mut self) -> i64 {
        self.x = (self.x.wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB)) & Self::MASK;
        let value = (self.x >> 17) as i64;
        assert!((0..=Self::LRAND48_MAX).contains(&value));
        value
    }

    /// Lua 5.1's math.random with Redis's generator.
    fn random(&mut self, args: &[f64]) -> Result<f64> {
        let r = (self.lrand48() % Self::LRAND48_MAX) as f64 / Self::LRAND48_MAX as f64;
        match *args {
            [] => Ok(r),
            [u] if u as i32 >= 1 => Ok((r * f64::from(u as i32)).floor() + 1.0),
            [l, u] if l as i32 <= u as i32 => {
                let (l, u) = (f64::from(l as i32), f64::from(u as i32));
                Ok((r * (u - l + 1.0)).floor() + l)
            }
            [_] | [_, _] => Err(Error::RuntimeError(
                "bad argument to 'random' (interval is empty)".into(),
            )),
            _ => Err(Error::RuntimeError("wrong number of arguments".into())),
        }
    }
}

fn install_random(lua: &Lua) -> Result<Rc<Cell<Option<Drand48>>>> {
    let generator = Rc::new(Cell::new(Some(Drand48::seeded(0))));
    let handle = generator.clone();
    let math: Table = lua.globals().get("math")?;
    let g = generator.clone();
    math.set(
        "random",
        lua.create_function(move |_, args: Variadic<f64>| {
            let mut state = g.take().expect("the generator is always put back");
            let result = state.random(&args);
            g.set(Some(state));
            result
        })?,
    )?;
    math.set(
        "randomseed",
        lua.create_function(move |_, seed: f64| {
            generator.set(Some(Drand48::seeded(seed as i32)));
            Ok(())
        })?,
    )?;
    Ok(handle)
}

/// A new state; [`Handles::start_run`] seeds it and gives it its budget before each run.
pub(crate) fn new_state() -> Result<(Lua, Handles)> {
    let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG;
    // SAFETY: the debug library is needed by the prelude's error handler (getinfo) and is not
    // handed to scripts: they see a `debug` with only getinfo and traceback.
    let lua = unsafe { Lua::unsafe_new_with(libs, LuaOptions::new()) };
    lua.set_memory_limit(MEMORY_BYTES_MAX)?;
    let budget = Budget {
        hooks: Rc::new(Cell::new(0)),
        hooks_max: Rc::new(Cell::new(0)),
    };
    let counter = budget.clone();
    lua.set_global_hook(
        HookTriggers::new().every_nth_instruction(HOOK_INSTRUCTIONS),
        move |_, _| {
            counter.hooks.set(counter.hooks.get() + 1);
            if counter.exceeded() {
                return Err(Error::RuntimeError(
                    "script exceeded the instruction budget".into(),
                ));
            }
            Ok(VmState::Continue)
        },
    )?;
    let generator = install_random(&lua)?;
    let globals = lua.globals();
    globals.set("bit", bit::library(&lua)?)?;
    let (cjson_table, cjson) = cjson::library(&lua)?;
    globals.set("cjson", cjson_table)?;
    globals.set("cmsgpack", cmsgpack::library(&lua)?)?;
    let handles = Handles {
        budget,
        generator,
        cjson,
    };
    Ok((lua, handles))
}

/// The host side of the prelude: `sha1hex`, `over_budget`; `call` is added per run by the caller.
pub(crate) fn host_table(lua: &Lua, budget: &Budget) -> Result<Table> {
    let host = lua.create_table()?;
    let budget = budget.clone();
    host.set(
        "over_budget",
        lua.create_function(move |_, ()| Ok(budget.exceeded()))?,
    )?;
    host.set(
        "sha1hex",
        lua.create_function(|_, body: mlua::LuaString| Ok(sha::sha1_hex(&body.as_bytes())))?,
    )?;
    Ok(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drand48_is_reproducible_for_a_seed() {
        let mut a = Drand48::seeded(10);
        let mut b = Drand48::seeded(10);
        let mut c = Drand48::seeded(20);
        let first = a.lrand48();
        assert_eq!(first, b.lrand48());
        assert_ne!(first, c.lrand48());
    }
}
