//! `CONFIG …` on a node: `RESETSTAT` starts the node's counters again; the parameters
//! themselves are [`crate::server_config`]'s.

use crate::connection::ClientContext;
use crate::resp::Writer;

pub fn run(context: &ClientContext, args: &[Vec<u8>], w: &mut Writer<'_>) {
    let resetstat = args.len() == 2 && args[1].eq_ignore_ascii_case(b"RESETSTAT");
    if resetstat {
        context.reset_stats();
    }
    crate::server_config::run(&context.config, args, w);
}
