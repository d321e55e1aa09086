//! Real processes: membership commands over RESP. Any replica answers `MEMBER LIST`; changes
//! sent to a follower reach the master; refusals say why; a removed replica stops with exit
//! status 3 while the rest of the group keeps taking writes.

use keyspace_node::resp_client::Value;

mod cluster_common;
use cluster_common::{free_port, wait_until, Client, Cluster, NODES};

/// The lines of a `MEMBER LIST` answer.
fn member_list(client: &mut Client) -> Vec<String> {
    match client.call(&[b"MEMBER", b"LIST"]).unwrap() {
        Value::Array(rows) => rows
            .into_iter()
            .map(|row| match row {
                Value::Bulk(line) => String::from_utf8(line).unwrap(),
                other => panic!("a MEMBER LIST row is {other:?}"),
            })
            .collect(),
        other => panic!("MEMBER LIST answered {other:?}"),
    }
}

/// Sends a membership change, again while the answer is "a change is in progress" (the master
/// may still be settling the one before: the refusal asks to retry).
fn change(client: &mut Client, args: &[&[u8]]) -> Value {
    let mut answer = None;
    wait_until("no membership change in progress", || {
        let value = client.call(args).unwrap();
        let busy = matches!(&value, Value::Error(e) if e.contains("in progress"));
        answer = Some(value);
        !busy
    });
    answer.unwrap()
}

fn error_of(value: Value) -> String {
    match value {
        Value::Error(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn member_changes_sent_to_a_follower_apply_and_a_removed_replica_stops_with_status_3() {
    let mut cluster = Cluster::start();
    let master = cluster.wait_for_master(None);
    let mut followers = (1..=NODES).filter(|id| *id != master);
    let (asked, removed) = (followers.next().unwrap(), followers.next().unwrap());
    let mut client = cluster.client(asked);
    let rows = member_list(&mut client);
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().all(|r| r.contains("kind=voter")), "{rows:?}");
    assert_eq!(cluster.field(asked, "config_epoch").as_deref(), Some("0"));
    assert_eq!(
        cluster.field(asked, "member_kind").as_deref(),
        Some("voter")
    );

    let unknown = error_of(client.call(&[b"MEMBER", b"REMOVE", b"9"]).unwrap());
    assert!(unknown.contains("replica 9 is not a member"), "{unknown}");
    // A learner that never starts: added, but not promoted while it is behind.
    let (peer, client_port) = (free_port(), free_port());
    let add = client
        .call(&[
            b"MEMBER",
            b"ADD",
            b"4",
            format!("127.0.0.1:{peer}").as_bytes(),
            format!("127.0.0.1:{client_port}").as_bytes(),
        ])
        .unwrap();
    assert_eq!(add, Value::Int(1));
    let promote = error_of(change(&mut client, &[b"MEMBER", b"PROMOTE", b"4"]));
    assert!(
        promote.contains("promote it once it has caught up"),
        "{promote}"
    );
    let again = error_of(
        client
            .call(&[b"MEMBER", b"ADD", b"4", b"127.0.0.1:1", b"127.0.0.1:2"])
            .unwrap(),
    );
    assert!(again.contains("never reused"), "{again}");

    let remove = change(
        &mut client,
        &[b"MEMBER", b"REMOVE", removed.to_string().as_bytes()],
    );
    assert_eq!(remove, Value::Int(2));
    let status = cluster.wait_exit(removed);
    assert_eq!(status.code(), Some(3), "{}", cluster.node_log(removed));
    assert!(cluster
        .node_log(removed)
        .contains("was removed from the group"));

    assert_eq!(
        client.call(&[b"SET", b"after-removal", b"1"]).unwrap(),
        Value::Simple("OK".into())
    );
    wait_until("the asked replica applied epoch 2", || {
        cluster.field(asked, "config_epoch").as_deref() == Some("2")
    });
    let rows = member_list(&mut client);
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(
        !rows
            .iter()
            .any(|r| r.starts_with(&format!("id={removed} "))),
        "{rows:?}"
    );
    let learner = rows.iter().find(|r| r.starts_with("id=4 ")).unwrap();
    assert!(
        learner.contains("kind=learner")
            && learner.contains(&format!("peer_addr=127.0.0.1:{peer}")),
        "{learner}"
    );
}
