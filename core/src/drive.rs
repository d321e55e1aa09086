//! The drain loop every shell runs (see "Driving a replica" in [`crate::replica`]): hand the
//! replica an input, take every output it emitted, in order, then ask when its timer is next
//! due. The simulator, the node, the tests and the throughput benchmark all drive a replica
//! through these functions, so the order the crate promises is the order each of them keeps.

use crate::command::ClientRequest;
use crate::msg::Message;
use crate::replica::{Output, Replica};
use crate::types::{Nanos, NodeId};

/// One input to a replica, at the replica's local time.
#[derive(Debug)]
pub enum Input {
    /// A protocol message from peer `from`.
    Message { from: NodeId, msg: Message },
    /// A client's request.
    Request(ClientRequest),
    /// The timer [`Replica::poll_timeout`] asked for is due (or the shell checks early).
    Timeout,
    /// Every write up to `token` is durable.
    Persisted { token: u64 },
}

/// Hands `input` to `replica` at local time `now_ns`, without draining what it emits.
pub fn apply(replica: &mut Replica, now_ns: Nanos, input: Input) {
    match input {
        Input::Message { from, msg } => replica.handle_message(now_ns, from, msg),
        Input::Request(request) => replica.handle_request(now_ns, request),
        Input::Timeout => replica.handle_timeout(now_ns),
        Input::Persisted { token } => replica.handle_persisted(now_ns, token),
    }
}

/// Appends every output `replica` has waiting to `outputs`, in the order it emitted them,
/// which is the order they are to be carried out in. Afterwards the replica has none left.
pub fn drain(replica: &mut Replica, outputs: &mut Vec<Output>) {
    while let Some(output) = replica.poll_output() {
        outputs.push(output);
    }
}

/// One step of a shell that hands the replica one input at a time: applies `input`, appends
/// every output to `outputs` in order, and returns when the replica next needs
/// [`Input::Timeout`] (its local time), if ever.
pub fn step(
    replica: &mut Replica,
    now_ns: Nanos,
    input: Input,
    outputs: &mut Vec<Output>,
) -> Option<Nanos> {
    apply(replica, now_ns, input);
    drain(replica, outputs);
    replica.poll_timeout()
}
