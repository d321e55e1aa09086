//! LuaBitOp 1.0 (`bit.*`), which Redis bundles: 32-bit operations on Lua numbers.

use mlua::{Lua, Result, Table, Variadic};

/// Lua number → int32 the way LuaBitOp does: round to nearest even, then wrap modulo 2^32.
fn tobit(n: f64) -> i32 {
    if !n.is_finite() {
        return 0;
    }
    let wrapped = n.round_ties_even().rem_euclid(4_294_967_296.0);
    assert!((0.0..4_294_967_296.0).contains(&wrapped));
    wrapped as u32 as i32
}

fn fold(args: &[f64], init: i32, op: fn(i32, i32) -> i32) -> f64 {
    f64::from(args.iter().fold(init, |acc, n| op(acc, tobit(*n))))
}

fn tohex(n: f64, digits: Option<f64>) -> String {
    let digits = digits.map(tobit).unwrap_or(8);
    let upper = digits < 0;
    let count = digits.unsigned_abs().min(8) as usize;
    let text = if upper {
        format!("{:08X}", tobit(n) as u32)
    } else {
        format!("{:08x}", tobit(n) as u32)
    };
    text[8 - count..].to_string()
}

type Shift = fn(i32, u32) -> i32;

/// Builds the `bit` table.
pub(crate) fn library(lua: &Lua) -> Result<Table> {
    let bit = lua.create_table()?;
    bit.set(
        "tobit",
        lua.create_function(|_, n: f64| Ok(f64::from(tobit(n))))?,
    )?;
    bit.set(
        "bnot",
        lua.create_function(|_, n: f64| Ok(f64::from(!tobit(n))))?,
    )?;
    bit.set(
        "bswap",
        lua.create_function(|_, n: f64| Ok(f64::from(tobit(n).swap_bytes())))?,
    )?;
    bit.set(
        "tohex",
        lua.create_function(|_, (n, d): (f64, Option<f64>)| Ok(tohex(n, d)))?,
    )?;
    bit.set(
        "band",
        lua.create_function(|_, a: Variadic<f64>| Ok(fold(&a, -1, |x, y| x & y)))?,
    )?;
    bit.set(
        "bor",
        lua.create_function(|_, a: Variadic<f64>| Ok(fold(&a, 0, |x, y| x | y)))?,
    )?;
    bit.set(
        "bxor",
        lua.create_function(|_, a: Variadic<f64>| Ok(fold(&a, 0, |x, y| x ^ y)))?,
    )?;
    let shifts: [(&str, Shift); 5] = [
        ("lshift", |x, s| ((x as u32) << s) as i32),
        ("rshift", |x, s| ((x as u32) >> s) as i32),
        ("arshift", |x, s| x >> s),
        ("rol", |x, s| (x as u32).rotate_left(s) as i32),
        ("ror", |x, s| (x as u32).rotate_right(s) as i32),
    ];
    for (name, op) in shifts {
        let f = lua.create_function(move |_, (x, s): (f64, f64)| {
            Ok(f64::from(op(tobit(x), (tobit(s) & 31) as u32)))
        })?;
        bit.set(name, f)?;
    }
    Ok(bit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tobit_wraps_modulo_two_to_the_32() {
        assert_eq!(tobit(4_294_967_295.0), -1);
        assert_eq!(tobit(4_294_967_296.0), 0);
        assert_eq!(tobit(-1.0), -1);
        assert_eq!(tobit(2.5), 2);
    }

    #[test]
    fn tohex_keeps_the_last_digits_and_uppercases_for_negative_counts() {
        assert_eq!(tohex(255.0, None), "000000ff");
        assert_eq!(tohex(255.0, Some(-2.0)), "FF");
        assert_eq!(tohex(-1.0, Some(4.0)), "ffff");
    }
}
