//! Real processes: a blocking pop waits at the connection until a list has an element, then
//! pops it through the log; a client that goes away while blocked stops the wait (its
//! connection ends, instead of polling for nobody until the timeout, never for `0`).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use keyspace_node::resp_client::{info_field, Value};

mod cluster_common;
use cluster_common::{wait_until, Cluster};

/// This replica's `connected_clients` (the asking connection included).
fn connected_clients(cluster: &Cluster, id: u16) -> u64 {
    let mut client = cluster.client(id);
    let info = client.call(&[b"INFO", b"clients"]).unwrap();
    info_field(&info, "connected_clients")
        .expect("INFO clients has connected_clients")
        .parse()
        .unwrap()
}

/// Sends `BLPOP key 0` without waiting for its answer.
fn blocked_client(cluster: &Cluster, id: u16, key: &str) -> TcpStream {
    let mut socket = TcpStream::connect(cluster.addr(id)).unwrap();
    let request = format!(
        "*3\r\n$5\r\nBLPOP\r\n${}\r\n{key}\r\n$1\r\n0\r\n",
        key.len()
    );
    socket.write_all(request.as_bytes()).unwrap();
    socket
}

#[test]
fn a_blocked_pop_gets_the_element_pushed_later_and_a_client_gone_while_blocked_is_let_go() {
    let cluster = Cluster::start();
    let master = cluster.wait_for_master(None);
    let alone = connected_clients(&cluster, master);

    let mut waiting = blocked_client(&cluster, master, "jobs");
    wait_until("the blocked client is connected", || {
        connected_clients(&cluster, master) == alone + 1
    });
    std::thread::sleep(Duration::from_millis(300));
    let mut pusher = cluster.client(master);
    let pushed = pusher.call(&[b"RPUSH", b"jobs", b"first"]).unwrap();
    assert_eq!(pushed, Value::Int(1));
    waiting
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut answer = vec![0u8; 64];
    let n = waiting
        .read(&mut answer)
        .expect("BLPOP answers once pushed");
    assert_eq!(
        &answer[..n],
        b"*2\r\n$4\r\njobs\r\n$5\r\nfirst\r\n",
        "the key and the element"
    );
    let left = pusher.call(&[b"LLEN", b"jobs"]).unwrap();
    assert_eq!(left, Value::Int(0), "the pop went through the log");
    drop(pusher);
    drop(waiting);

    let gone = blocked_client(&cluster, master, "never-pushed");
    wait_until("the second blocked client is connected", || {
        connected_clients(&cluster, master) == alone + 1
    });
    gone.shutdown(Shutdown::Both).unwrap();
    drop(gone);
    wait_until("the connection of a client gone while blocked ends", || {
        connected_clients(&cluster, master) == alone
    });
}
