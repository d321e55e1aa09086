//! Multi-writer regularity of a read/write register history (a weaker condition than
//! linearizability: a read concurrent with writes may return any of them, and two reads need
//! not agree on their order).
//!
//! Definition. A history of writes (each of a distinct value) and reads is *regular* when there
//! is one total order `<` of all its writes such that
//! - (real time) if write `a` returned before write `b` was invoked, then `a < b`;
//! - (reads) every read that returned, returned either nil, and then no write returned before
//!   the read was invoked, or the value of a write `w` that was invoked before the read returned
//!   and such that no write `w'` with `w < w'` returned before the read was invoked.
//!
//! A write whose outcome is unknown is in the order too (it may have taken effect at any time
//! after its invoke) but never returned, so it never forces anything to follow it. A read whose
//! outcome is unknown constrains nothing. Every linearizable history is regular; the converse
//! fails (a read may return a new value and a later read the old one while the write is still
//! in progress).
//!
//! Deciding it: each condition is an edge `a -> b` ("a before b") between writes, and a
//! suitable order exists exactly when the graph of these edges has no cycle. The check is
//! polynomial: `O(W^2 + R * W)` for `W` writes and `R` reads.

use std::collections::HashMap;

use crate::history::Operation;
use crate::models::register::{RegisterInput, RegisterOutput};

/// Why a history is not regular, or cannot be judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Irregular {
    /// The history is not of the kind this check decides (a compare-and-set, a value written
    /// twice, an output that does not fit its input).
    Unsupported(String),
    /// A read returned a value that no write of the history wrote.
    UnknownValue { read: usize, value: i64 },
    /// A read returned the value of a write invoked only after the read returned.
    FromTheFuture { read: usize, write: usize },
    /// A read returned nil although a write returned before the read was invoked.
    NilAfterWrite { read: usize, write: usize },
    /// No order of the writes fits: the writes of `cycle` would each have to come before the
    /// next (and the last before the first); `reasons[i]` says why `cycle[i]` precedes the next.
    Cycle {
        cycle: Vec<usize>,
        reasons: Vec<String>,
    },
}

impl std::fmt::Display for Irregular {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Irregular::Unsupported(why) => write!(f, "cannot judge regularity: {why}"),
            Irregular::UnknownValue { read, value } => {
                write!(f, "op {read} read {value}, which no write wrote")
            }
            Irregular::FromTheFuture { read, write } => write!(
                f,
                "op {read} read the value of op {write}, invoked only after the read returned"
            ),
            Irregular::NilAfterWrite { read, write } => write!(
                f,
                "op {read} read nil although write op {write} returned before it was invoked"
            ),
            Irregular::Cycle { cycle, reasons } => {
                write!(f, "no order of the writes fits:")?;
                for (op, reason) in cycle.iter().zip(reasons) {
                    write!(f, " op {op} before the next ({reason});")?;
                }
                write!(f, " and back to op {}", cycle[0])
            }
        }
    }
}

/// Decides whether `ops` (reads and writes of one register, each write of a distinct value) is
/// regular in the sense of the module docs. Indices in the answer are positions in `ops`.
pub fn check_regular(ops: &[Operation<RegisterInput, RegisterOutput>]) -> Result<(), Irregular> {
    let writes = writes_by_value(ops)?;
    let write_ops: Vec<usize> = {
        let mut w: Vec<usize> = writes.values().copied().collect();
        w.sort_unstable();
        w
    };
    let mut graph = Graph::new(ops.len());
    for &a in &write_ops {
        for &b in &write_ops {
            if a != b && returned_before(&ops[a], &ops[b]) {
                graph.add(a, b, "real time".to_string());
            }
        }
    }
    for (r, op) in ops.iter().enumerate() {
        let Some(RegisterOutput::Read(value)) = op.output() else {
            continue;
        };
        let finished_before: Vec<usize> = write_ops
            .iter()
            .copied()
            .filter(|&w| returned_before(&ops[w], op))
            .collect();
        let Some(value) = value else {
            if let Some(&write) = finished_before.first() {
                return Err(Irregular::NilAfterWrite { read: r, write });
            }
            continue;
        };
        let &w = writes.get(value).ok_or(Irregular::UnknownValue {
            read: r,
            value: *value,
        })?;
        if op.return_ns().is_some_and(|ret| ops[w].invoke_ns > ret) {
            return Err(Irregular::FromTheFuture { read: r, write: w });
        }
        for earlier in finished_before.into_iter().filter(|&e| e != w) {
            graph.add(
                earlier,
                w,
                format!("op {r} read op {w}'s value after op {earlier} returned"),
            );
        }
    }
    match graph.find_cycle() {
        None => Ok(()),
        Some((cycle, reasons)) => Err(Irregular::Cycle { cycle, reasons }),
    }
}

/// Every write, by the value it wrote.
fn writes_by_value(
    ops: &[Operation<RegisterInput, RegisterOutput>],
) -> Result<HashMap<i64, usize>, Irregular> {
    let mut writes = HashMap::new();
    for (i, op) in ops.iter().enumerate() {
        match (&op.input, op.output()) {
            (RegisterInput::Write(value), None | Some(RegisterOutput::Write)) => {
                if writes.insert(*value, i).is_some() {
                    return Err(Irregular::Unsupported(format!(
                        "the value {value} is written twice; give every write its own value"
                    )));
                }
            }
            (RegisterInput::Read, None | Some(RegisterOutput::Read(_))) => {}
            (RegisterInput::Cas { .. }, _) => {
                return Err(Irregular::Unsupported(format!(
                    "op {i} is a compare-and-set; regularity is defined for reads and writes"
                )))
            }
            _ => {
                return Err(Irregular::Unsupported(format!(
                    "op {i}'s output does not fit its input"
                )))
            }
        }
    }
    Ok(writes)
}

/// Whether `a` returned strictly before `b` was invoked (equal times are concurrent).
fn returned_before<I, O>(a: &Operation<I, O>, b: &Operation<I, O>) -> bool {
    a.return_ns().is_some_and(|ret| ret < b.invoke_ns)
}

/// "Before" edges between operations, each with its reason.
struct Graph {
    edges: Vec<Vec<(usize, String)>>,
}

impl Graph {
    fn new(nodes: usize) -> Graph {
        Graph {
            edges: vec![Vec::new(); nodes],
        }
    }

    fn add(&mut self, from: usize, to: usize, reason: String) {
        self.edges[from].push((to, reason));
    }

    /// A cycle, as its nodes in order and the reason of each edge, if there is one.
    fn find_cycle(&self) -> Option<(Vec<usize>, Vec<String>)> {
        const WHITE: u8 = 0;
        const GREY: u8 = 1;
        const BLACK: u8 = 2;
        let mut colour = vec![WHITE; self.edges.len()];
        for root in 0..self.edges.len() {
            if colour[root] != WHITE {
                continue;
            }
            // Iterative depth-first search: (node, next edge to try), the path on the stack.
            let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
            colour[root] = GREY;
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                let Some((to, _)) = self.edges[node].get(*next) else {
                    colour[node] = BLACK;
                    stack.pop();
                    continue;
                };
                *next += 1;
                match colour[*to] {
                    WHITE => {
                        colour[*to] = GREY;
                        stack.push((*to, 0));
                    }
                    GREY => return Some(self.cycle_from(&stack, *to)),
                    _ => {}
                }
            }
        }
        None
    }

    fn cycle_from(&self, stack: &[(usize, usize)], start: usize) -> (Vec<usize>, Vec<String>) {
        let from = stack
            .iter()
            .position(|&(node, _)| node == start)
            .expect("a grey node is on the path");
        let path = &stack[from..];
        let nodes: Vec<usize> = path.iter().map(|&(node, _)| node).collect();
        let reasons = path
            .iter()
            .map(|&(node, next)| self.edges[node][next - 1].1.clone())
            .collect();
        (nodes, reasons)
    }
}
