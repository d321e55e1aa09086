//! `keyspace node --join`: a replica that is not yet a member asks the group to add it, catches
//! up, and (with `--promote`) makes itself a voter once it is close enough.
//!
//! Before the replica starts, [`survey`] asks the group for its founders (the replica needs
//! them to read the log from its first slot) and its members (to dial them). Then, while the
//! replica runs, [`follow`] sends `MEMBER ADD` (unless it is a member already: a restarted
//! join), reports the catch-up, and sends `MEMBER PROMOTE` until it is done.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use keyspace_core::NodeId;
use keyspace_node::peer;
use keyspace_node::resp_client::{info_field, Client, Value};

/// Pause between two attempts of a refused or failed request.
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// Longest the joiner keeps asking for its addition (the group may be electing a master).
const ADD_TIMEOUT: Duration = Duration::from_secs(60);
/// How often catch-up progress is printed.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);
/// Longest the replica's own client port may take to answer after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What the group told the joiner before it starts.
#[derive(Debug, PartialEq, Eq)]
pub struct Survey {
    pub founders: BTreeMap<NodeId, SocketAddr>,
    /// Members and the peer addresses the answering replica knows for them.
    pub members: BTreeMap<NodeId, SocketAddr>,
    /// Members' client addresses, to fall back on when the --join replica is down.
    pub client_addrs: Vec<SocketAddr>,
    /// The joiner is listed already (a restart of a join that got as far as its addition).
    pub already_member: bool,
}

/// How the joiner talks to the group.
pub struct Group {
    /// The --join address first, then the members' client addresses.
    pub addrs: Vec<SocketAddr>,
    pub password: Option<String>,
}

impl Group {
    /// `args` answered by the first of the group's addresses that answers at all.
    pub(crate) async fn call(&self, args: &[&[u8]]) -> Result<Value, String> {
        let mut last = String::from("no address to ask");
        for addr in &self.addrs {
            match call_one(*addr, self.password.as_deref(), args).await {
                Ok(answer) => return Ok(answer),
                Err(e) => last = format!("cannot talk to {addr}: {e}"),
            }
        }
        Err(last)
    }
}

async fn call_one(
    addr: SocketAddr,
    password: Option<&str>,
    args: &[&[u8]],
) -> std::io::Result<Value> {
    let mut client = Client::connect(addr).await?;
    if let Some(password) = password {
        if let Value::Error(e) = client.call(&[b"AUTH", password.as_bytes()]).await? {
            return Ok(Value::Error(e));
        }
    }
    client.call(args).await
}

/// The `field=value` pairs of one `MEMBER LIST` or `MEMBER FOUNDERS` row.
fn row_fields(row: &Value) -> Result<BTreeMap<String, String>, String> {
    let Value::Bulk(line) = row else {
        return Err(format!("unexpected member row {row:?}"));
    };
    let line = String::from_utf8_lossy(line);
    let pairs = line.split(' ').filter_map(|w| w.split_once('='));
    Ok(pairs.map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

pub(crate) fn rows(answer: Value, what: &str) -> Result<Vec<BTreeMap<String, String>>, String> {
    match answer {
        Value::Array(rows) => rows.iter().map(row_fields).collect(),
        Value::Error(e) => Err(format!("{what}: {e}")),
        other => Err(format!("{what}: unexpected answer {other:?}")),
    }
}

/// The id and address of a row, when it has both (`-`: unknown).
fn id_and_addr(row: &BTreeMap<String, String>, field: &str) -> Option<(NodeId, SocketAddr)> {
    let id = row.get("id")?.parse().ok()?;
    let addr = row.get(field)?.parse().ok()?;
    Some((id, addr))
}

/// Asks the group at `group` for its founders and members.
pub async fn survey(group: &Group, me: NodeId) -> Result<Survey, String> {
    let founders = rows(
        group.call(&[b"MEMBER", b"FOUNDERS"]).await?,
        "MEMBER FOUNDERS",
    )?;
    let founders: BTreeMap<NodeId, SocketAddr> = founders
        .iter()
        .map(|row| id_and_addr(row, "peer_addr").ok_or(format!("bad founder row {row:?}")))
        .collect::<Result<_, _>>()?;
    if founders.is_empty() {
        return Err("the group named no founders".into());
    }
    let members = rows(group.call(&[b"MEMBER", b"LIST"]).await?, "MEMBER LIST")?;
    let already_member = members
        .iter()
        .any(|row| row.get("id") == Some(&me.to_string()));
    Ok(Survey {
        founders,
        members: members
            .iter()
            .filter_map(|row| id_and_addr(row, "peer_addr"))
            .collect(),
        client_addrs: members
            .iter()
            .filter_map(|row| id_and_addr(row, "client_addr").map(|(_, a)| a))
            .collect(),
        already_member,
    })
}

/// What the joiner asks for once its replica runs.
pub struct Plan {
    pub id: NodeId,
    pub peer_addr: SocketAddr,
    pub client_addr: SocketAddr,
    pub witness: bool,
    pub promote: bool,
    pub already_member: bool,
}

/// Runs the join: waits for the local replica, asks for the addition, reports the catch-up and
/// promotes. Returns once done (the replica keeps running); an error ends the process.
pub async fn follow(group: Group, plan: Plan) -> Result<(), String> {
    let local = Group {
        addrs: vec![plan.client_addr],
        password: group.password.clone(),
    };
    wait_until_serving(&local).await?;
    let kind = if plan.witness { "witness" } else { "learner" };
    if plan.already_member {
        println!("replica {} is a member already; catching up", plan.id);
    } else {
        let epoch = add(&group, &plan).await?;
        println!(
            "replica {} added as a {kind} (configuration epoch {epoch}); catching up",
            plan.id
        );
    }
    let took = catch_up(&group, &local).await?;
    println!("caught up in {:.1} s", took.as_secs_f64());
    if plan.promote {
        let epoch = promote(&group, plan.id).await?;
        println!(
            "replica {} is a voter (configuration epoch {epoch})",
            plan.id
        );
    } else {
        println!(
            "make it a voter with: keyspace member promote {} --addr {}",
            plan.id, group.addrs[0]
        );
    }
    Ok(())
}

async fn wait_until_serving(local: &Group) -> Result<(), String> {
    let began = Instant::now();
    loop {
        if let Ok(Value::Simple(_)) = local.call(&[b"PING"]).await {
            return Ok(());
        }
        if began.elapsed() > START_TIMEOUT {
            return Err(format!(
                "the replica did not serve clients within {START_TIMEOUT:?}"
            ));
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// Whether a refusal may pass by itself (another change finishing, a master being elected).
fn passing(error: &str) -> bool {
    [
        "in progress",
        "TRYAGAIN",
        "not master",
        "NOTMASTER",
        "no master",
        "MOVED",
        "CLUSTERDOWN",
    ]
    .iter()
    .any(|s| error.contains(s))
}

async fn add(group: &Group, plan: &Plan) -> Result<i64, String> {
    let id = plan.id.to_string();
    let (peer_addr, client_addr) = (plan.peer_addr.to_string(), plan.client_addr.to_string());
    let kind: &[u8] = if plan.witness { b"WITNESS" } else { b"LEARNER" };
    let args: [&[u8]; 6] = [
        b"MEMBER",
        b"ADD",
        id.as_bytes(),
        peer_addr.as_bytes(),
        client_addr.as_bytes(),
        kind,
    ];
    let began = Instant::now();
    loop {
        let error = match group.call(&args).await {
            Ok(Value::Int(epoch)) => return Ok(epoch),
            Ok(Value::Error(e)) if !passing(&e) => {
                return Err(format!("the group refused to add replica {id}: {e}"))
            }
            Ok(Value::Error(e)) => e,
            Ok(other) => return Err(format!("MEMBER ADD: unexpected answer {other:?}")),
            Err(e) => e,
        };
        if began.elapsed() > ADD_TIMEOUT {
            return Err(format!(
                "MEMBER ADD did not succeed within {ADD_TIMEOUT:?}: {error}"
            ));
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// A replica's INFO replication field as a number.
async fn info_number(group: &Group, field: &str) -> Option<u64> {
    let info = group.call(&[b"INFO", b"replication"]).await.ok()?;
    info_field(&info, field)?.parse().ok()
}

/// Waits until the local replica applied what the group had chosen when the wait began, and
/// knows it is a member; prints progress meanwhile. Returns how long it took.
async fn catch_up(group: &Group, local: &Group) -> Result<Duration, String> {
    let began = Instant::now();
    let target = loop {
        match info_number(group, "commit_index").await {
            Some(target) => break target,
            None => tokio::time::sleep(RETRY_PAUSE).await,
        }
    };
    let mut next_report = Instant::now();
    loop {
        let applied = info_number(local, "applied_index").await.unwrap_or(0);
        let info = local.call(&[b"INFO", b"replication"]).await.ok();
        let kind = info.as_ref().and_then(|i| info_field(i, "member_kind"));
        let member = matches!(
            kind.as_deref(),
            Some("learner" | "voter" | "witness-learner" | "witness")
        );
        if applied >= target && member {
            return Ok(began.elapsed());
        }
        if Instant::now() >= next_report {
            println!("catching up: applied slot {applied} of {target}");
            next_report += PROGRESS_INTERVAL;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends `MEMBER PROMOTE` until it is done; "not caught up" and "in progress" are retried.
async fn promote(group: &Group, id: NodeId) -> Result<i64, String> {
    let id_text = id.to_string();
    let args: [&[u8]; 3] = [b"MEMBER", b"PROMOTE", id_text.as_bytes()];
    loop {
        match group.call(&args).await {
            Ok(Value::Int(epoch)) => return Ok(epoch),
            Ok(Value::Error(e)) if e.contains("votes already") => {
                return Ok(info_number(group, "config_epoch").await.unwrap_or(0) as i64)
            }
            Ok(Value::Error(e)) if e.contains("behind") || passing(&e) => {
                println!("promotion not yet: {e}");
            }
            Ok(Value::Error(e)) => {
                return Err(format!("the group refused to promote replica {id}: {e}"))
            }
            Ok(other) => return Err(format!("MEMBER PROMOTE: unexpected answer {other:?}")),
            Err(e) => println!("promotion not yet: {e}"),
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// The group's addresses to ask: `join` first, then what `survey` listed.
pub fn group_addrs(join: SocketAddr, survey_addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let mut addrs = vec![join];
    addrs.extend(survey_addrs.iter().filter(|a| **a != join));
    addrs
}

/// Parses `--join`.
pub fn parse_join(text: &str) -> Result<SocketAddr, String> {
    peer::parse_addr(text).map_err(|e| format!("--join: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_rows_give_ids_and_addresses_and_dashes_are_unknown() {
        let row = Value::Bulk(
            b"id=2 peer_addr=127.0.0.1:7002 client_addr=- kind=voter connected=yes behind_slots=0"
                .to_vec(),
        );
        let fields = row_fields(&row).unwrap();
        assert_eq!(
            id_and_addr(&fields, "peer_addr"),
            Some((2, "127.0.0.1:7002".parse().unwrap()))
        );
        assert_eq!(id_and_addr(&fields, "client_addr"), None);
        assert!(row_fields(&Value::Int(1)).is_err());
    }

    #[test]
    fn only_refusals_that_pass_by_themselves_are_retried() {
        assert!(passing(
            "ERR membership change refused: a membership change is in progress; retry once it is done"
        ));
        assert!(!passing("ERR membership change refused: id 4 is or was in use; ids are never reused, pick a new one"));
        assert!(!passing(
            "ERR membership change refused: the last full voter cannot be removed: a witness never leads; add and promote a full replica first"
        ));
    }
}
