//! One self-contained HTML page that draws checked histories: a lane per client, each
//! operation a bar over (compressed) real time; for a violation, the partial linearization
//! numbered in green and the operation that cannot be placed in red.

use crate::history::Operation;
use crate::model::Model;
use crate::runner::CheckResult;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// One operation as drawn.
#[derive(Clone, Debug)]
pub struct OpView {
    pub client: u64,
    pub invoke: u64,
    /// `None`: unknown outcome (drawn to the end of the history).
    pub ret: Option<u64>,
    pub text: String,
}

/// One checked history.
#[derive(Clone, Debug)]
pub struct FileView {
    pub title: String,
    pub ops: Vec<OpView>,
    pub result: CheckResult,
}

/// Describes every operation of a history with `model`.
pub fn views<M: Model>(model: &M, ops: &[Operation<M::Input, M::Output>]) -> Vec<OpView> {
    ops.iter()
        .map(|op| OpView {
            client: op.client,
            invoke: op.invoke_ns,
            ret: op.return_ns(),
            text: model.describe_op(&op.input, op.output()),
        })
        .collect()
}

/// Pixels per distinct instant, per lane, and for the lane labels.
const STEP_PX: usize = 18;
const LANE_PX: usize = 28;
const LABEL_PX: usize = 90;
/// Operations drawn at most per history: a larger one shows only the part that fails.
const DRAWN_OPS_MAX: usize = 2_000;

/// The whole page.
pub fn render(files: &[FileView]) -> String {
    let mut page = String::new();
    page.push_str(HEAD);
    for file in files {
        render_file(&mut page, file);
    }
    page.push_str("</body></html>\n");
    page
}

fn render_file(page: &mut String, file: &FileView) {
    let _ = write!(
        page,
        "<section><h2>{} — {}</h2>",
        escape(&file.title),
        file.result.word()
    );
    let (shown, order, blocked): (Vec<usize>, BTreeMap<usize, usize>, Option<usize>) = match &file
        .result
    {
        CheckResult::Violation(v) => {
            let order = v
                .linearized
                .iter()
                .enumerate()
                .map(|(i, step)| (step.op, i + 1))
                .collect();
            let _ = write!(
                page,
                "<p class=\"why\">{}</p><p>Showing the {} operations of the independent part that fails \
                 (of {} in the history). <span class=\"key lin\">n</span> the longest linearizable prefix \
                 found, in order; <span class=\"key bad\">!</span> the operation that cannot follow it; \
                 dashed: outcome unknown. Hover over a bar for details.</p>",
                escape(&v.to_string()),
                v.partition.len(),
                file.ops.len()
            );
            (v.partition.clone(), order, v.blocked)
        }
        CheckResult::Unknown(reason) => {
            let _ = write!(page, "<p class=\"why\">unknown: {}</p>", escape(reason));
            ((0..file.ops.len()).collect(), BTreeMap::new(), None)
        }
        CheckResult::Linearizable => ((0..file.ops.len()).collect(), BTreeMap::new(), None),
    };
    if shown.len() > DRAWN_OPS_MAX {
        let _ = write!(
            page,
            "<p>{} operations: too many to draw.</p></section>",
            shown.len()
        );
        return;
    }
    draw(page, &file.ops, &shown, &order, blocked);
    if let CheckResult::Violation(v) = &file.result {
        page.push_str("<ol class=\"steps\">");
        for step in &v.linearized {
            let _ = write!(
                page,
                "<li>op {} <code>{}</code> → state <code>{}</code></li>",
                step.op,
                escape(&step.text),
                escape(&step.state_after)
            );
        }
        if let Some(op) = v.blocked {
            let _ = write!(
                page,
                "<li class=\"bad\">op {op} <code>{}</code> cannot be placed</li>",
                escape(&v.blocked_text)
            );
        }
        page.push_str("</ol>");
    }
    page.push_str("</section>");
}

/// Where the shown operations land: time compressed to the rank of each distinct instant, so
/// every bar is visible, and one lane per client.
struct Layout {
    rank: BTreeMap<u64, usize>,
    /// The column after the last instant, where unknown outcomes end.
    end: usize,
    lane: BTreeMap<u64, usize>,
}

impl Layout {
    fn new(ops: &[OpView], shown: &[usize]) -> Layout {
        let instants: BTreeSet<u64> = shown
            .iter()
            .flat_map(|&i| [Some(ops[i].invoke), ops[i].ret])
            .flatten()
            .collect();
        let rank = instants.iter().enumerate().map(|(r, &t)| (t, r)).collect();
        let clients: BTreeSet<u64> = shown.iter().map(|&i| ops[i].client).collect();
        let lane = clients.iter().enumerate().map(|(l, &c)| (c, l)).collect();
        Layout {
            rank,
            end: instants.len() + 1,
            lane,
        }
    }

    fn width(&self) -> usize {
        LABEL_PX + (self.end + 1) * STEP_PX
    }
}

fn draw(
    page: &mut String,
    ops: &[OpView],
    shown: &[usize],
    order: &BTreeMap<usize, usize>,
    blocked: Option<usize>,
) {
    let layout = Layout::new(ops, shown);
    let width = layout.width();
    let height = layout.lane.len() * LANE_PX + 10;
    let _ = write!(
        page,
        "<div class=\"scroll\"><svg width=\"{width}\" height=\"{height}\">"
    );
    for (&client, &l) in &layout.lane {
        let y = l * LANE_PX;
        let _ = write!(
            page,
            "<text x=\"4\" y=\"{}\" class=\"lane\">client {client}</text><line x1=\"{LABEL_PX}\" x2=\"{width}\" y1=\"{}\" y2=\"{}\" class=\"grid\"/>",
            y + 18,
            y + LANE_PX - 1,
            y + LANE_PX - 1
        );
    }
    for &i in shown {
        draw_op(page, &layout, i, &ops[i], order.get(&i), blocked == Some(i));
    }
    page.push_str("</svg></div>");
}

/// One operation's bar: `linearized` is its place in the linearization found, `blocked` marks
/// the operation that cannot follow it.
fn draw_op(
    page: &mut String,
    layout: &Layout,
    i: usize,
    op: &OpView,
    linearized: Option<&usize>,
    blocked: bool,
) {
    let x0 = LABEL_PX + layout.rank[&op.invoke] * STEP_PX;
    let x1 = LABEL_PX + op.ret.map_or(layout.end, |t| layout.rank[&t]) * STEP_PX + STEP_PX / 2;
    let y = layout.lane[&op.client] * LANE_PX + 3;
    let mut class = String::from("op");
    if op.ret.is_none() {
        class.push_str(" unknown");
    }
    let mark = if blocked {
        class.push_str(" bad");
        "!".to_string()
    } else if let Some(n) = linearized {
        class.push_str(" lin");
        n.to_string()
    } else {
        String::new()
    };
    let ret = op
        .ret
        .map_or("never (unknown outcome)".to_string(), |t| t.to_string());
    let _ = write!(
        page,
        "<g class=\"{class}\"><title>op {i}, client {}: {}\ninvoked {}, returned {ret}{}</title>\
         <rect x=\"{x0}\" y=\"{y}\" width=\"{}\" height=\"{}\" rx=\"3\"/>\
         <text x=\"{}\" y=\"{}\">{} {}</text></g>",
        op.client,
        escape(&op.text),
        op.invoke,
        linearized.map_or(String::new(), |n| format!("\nlinearized #{n}")),
        x1.saturating_sub(x0).max(4),
        LANE_PX - 8,
        x0 + 3,
        y + 15,
        escape(&mark),
        escape(&op.text)
    );
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const HEAD: &str = r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>keyspace-check</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1em 2em; color: #222; }
h2 { font-size: 1.1em; margin-top: 2em; }
.why { font-weight: 600; }
.scroll { overflow-x: auto; border: 1px solid #ddd; padding: 4px; }
svg text { font-size: 11px; font-family: ui-monospace, monospace; }
.lane { fill: #555; }
.grid { stroke: #eee; }
.op rect { fill: #cfd8e3; stroke: #7a8ca3; }
.op text { fill: #222; pointer-events: none; }
.op.unknown rect { fill: #f3f3f3; stroke-dasharray: 4 3; }
.op.lin rect { fill: #b7e4c0; stroke: #2f8f46; }
.op.bad rect { fill: #f4b4b4; stroke: #c0392b; stroke-width: 2; }
.op:hover rect { stroke: #000; stroke-width: 2; }
.key { display: inline-block; padding: 0 .4em; border-radius: 3px; font-family: monospace; }
.key.lin { background: #b7e4c0; } .key.bad { background: #f4b4b4; }
.steps li.bad { color: #c0392b; font-weight: 600; }
code { font-size: .9em; }
</style></head><body>
<h1>Linearizability check</h1>
"#;
