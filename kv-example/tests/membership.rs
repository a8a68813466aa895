//! Membership changes on real node processes: a node replaced while clients keep
//! writing; a wiped node brought back through a snapshot, the safe way (removed,
//! wiped, added again as a learner, promoted) and in place under the same id; and a
//! node that learns where the others serve although its configuration got it wrong.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kv_example::client::{Answer, TextClient};
use support::http::request;
use support::{wait_for, Cluster, REQUEST_TIMEOUT, WAIT_MAX};

/// The most writes one writer makes (a bound; the test stops them much earlier).
const WRITES_PER_WRITER_MAX: u64 = 100_000;
/// The most attempts at one write.
const WRITE_ATTEMPTS_MAX: u32 = 500;

fn status_json(cluster: &Cluster, id: u64) -> serde_json::Value {
    let status = request(cluster.http_addr(id), "GET", "/status", None).unwrap();
    serde_json::from_str(&status.body).unwrap()
}

/// A number after `name=` in a status line.
fn field(line: &str, name: &str) -> u64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name}= in {line}"))
}

/// Puts distinct keys until `stop`, each retried under its request id (to the node
/// a `Leader is` answer names, or the next one) until acknowledged; returns the
/// acknowledged writes. `acks` counts them as they come.
fn writer(
    client_id: u64,
    addrs: &[String],
    stop: &AtomicBool,
    acks: &AtomicU64,
) -> Vec<(String, String)> {
    let mut acked = Vec::new();
    let mut target = 0usize;
    let mut conn: Option<TextClient> = None;
    for seq in 1..=WRITES_PER_WRITER_MAX {
        if stop.load(Ordering::Acquire) {
            break;
        }
        let (key, value) = (format!("w{client_id}-{seq}"), format!("v{seq}"));
        let line = format!("put --req {client_id}:{seq} {key} {value}");
        let give_up = Instant::now() + WAIT_MAX;
        for _ in 0..WRITE_ATTEMPTS_MAX {
            if Instant::now() > give_up {
                break;
            }
            if conn.is_none() {
                conn = TextClient::connect(&addrs[target], REQUEST_TIMEOUT).ok();
            }
            let answer = conn.as_mut().and_then(|c| c.request(&line).ok());
            match answer {
                Some(answer) if answer.appended_index().is_some() => {
                    acked.push((key.clone(), value.clone()));
                    acks.fetch_add(1, Ordering::AcqRel);
                    break;
                }
                Some(answer) if answer.leader_redirect().is_some() => {
                    let leader = answer.leader_redirect().unwrap();
                    target = addrs.iter().position(|a| a == leader).unwrap_or(0);
                    conn = None;
                }
                _ => {
                    target = (target + 1) % addrs.len();
                    conn = None;
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
    acked
}

/// Waits until every node of `ids` has applied what the leader committed.
fn wait_for_convergence(cluster: &Cluster, ids: &[u64]) {
    wait_for(&format!("nodes {ids:?} to converge"), || {
        let lines: Vec<String> = ids
            .iter()
            .map(|id| cluster.status(*id))
            .collect::<Option<_>>()?;
        let leader = lines.iter().find(|l| l.contains(" role=leader "))?;
        let commit = field(leader, "commit");
        lines
            .iter()
            .all(|l| field(l, "applied") == commit)
            .then_some(())
    });
}

/// Every acknowledged value is on node `id` (read locally, after convergence).
fn assert_present(cluster: &Cluster, id: u64, acked: &[(String, String)]) {
    let mut conn = TextClient::connect(cluster.client_addr(id), REQUEST_TIMEOUT).unwrap();
    for (key, value) in acked {
        let answer = conn.request_line(&format!("get --stale {key}")).unwrap();
        assert_eq!(
            answer,
            format!("Ok: {value}"),
            "node {id} lost the acknowledged {key}={value}"
        );
    }
}

#[test]
fn a_node_replaced_while_clients_write_loses_no_acknowledged_write() {
    let mut cluster = Cluster::start(3);
    cluster.plan_node(4);
    // The writers know node 4's address from the start; it answers once it runs.
    let addrs: Vec<String> = cluster
        .ids()
        .iter()
        .map(|id| cluster.client_addr(*id).to_string())
        .collect();
    let stop = AtomicBool::new(false);
    let acks = AtomicU64::new(0);
    let acked: Vec<(String, String)> = std::thread::scope(|scope| {
        let writers: Vec<_> = (1..=3)
            .map(|c| {
                let (addrs, stop, acks) = (&addrs, &stop, &acks);
                scope.spawn(move || writer(1000 + c, addrs, stop, acks))
            })
            .collect();
        let at_least = |n: u64| {
            wait_for(&format!("{n} acknowledged writes"), || {
                (acks.load(Ordering::Acquire) >= n).then_some(())
            })
        };
        at_least(20);
        cluster.start_joining(4, &[]);
        let added = cluster.add_node(4);
        assert!(added.ends_with("voters=1,2,3,4 learners=-"), "{added}");
        let removed = cluster.remove_node(3);
        assert!(removed.ends_with("voters=1,2,4 learners=-"), "{removed}");
        // Writes go on with the new member.
        at_least(acks.load(Ordering::Acquire) + 30);
        stop.store(true, Ordering::Release);
        writers
            .into_iter()
            .flat_map(|w| w.join().expect("a writer panicked"))
            .collect()
    });
    println!("{} acknowledged writes", acked.len());

    let members = [1, 2, 4];
    wait_for_convergence(&cluster, &members);
    for id in members {
        let line = cluster.status(id).expect("a member answers");
        assert!(
            line.ends_with(" voters=1,2,4 learners=-"),
            "node {id}: {line}"
        );
        assert_present(&cluster, id, &acked);
    }
    let keys: Vec<u64> = members
        .iter()
        .map(|id| field(&cluster.status(*id).unwrap(), "keys"))
        .collect();
    assert!(
        keys.iter().all(|k| *k == keys[0]),
        "keys per member: {keys:?}"
    );
}

/// Snapshots every node of `ids`; the smallest index they snapshotted at.
fn snapshot_all(cluster: &Cluster, ids: &[u64]) -> u64 {
    ids.iter()
        .map(|id| match cluster.request(*id, "snapshot").unwrap() {
            Answer::Ok(text) => text.strip_prefix("snapshot at ").unwrap().parse().unwrap(),
            other => panic!("node {id} did not snapshot: {other:?}"),
        })
        .min()
        .expect("some node")
}

fn put_all(cluster: &Cluster, range: std::ops::Range<u64>, acked: &mut Vec<(String, String)>) {
    for i in range {
        let (key, value) = (format!("k{i}"), format!("v{i}"));
        cluster.put(&key, &value);
        acked.push((key, value));
    }
}

#[test]
fn a_wiped_voter_removed_and_added_again_catches_up_through_a_snapshot() {
    let mut cluster = Cluster::start(3);
    let mut acked = Vec::new();
    put_all(&cluster, 0..20, &mut acked);
    let leader = cluster.wait_for_leader();
    let wiped = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let spec = cluster.layout.node(wiped).unwrap().clone();

    // The safe procedure for a voter that lost its disk: take it out first, so that
    // it never votes with a forgotten vote.
    let removed = cluster.remove_node(wiped);
    let rest: Vec<String> = cluster.ids().iter().map(u64::to_string).collect();
    assert!(
        removed.ends_with(&format!("voters={} learners=-", rest.join(","))),
        "{removed}"
    );
    std::fs::remove_dir_all(&spec.data_dir).unwrap();
    put_all(&cluster, 20..40, &mut acked);
    let snapshot_index = snapshot_all(&cluster, &cluster.ids());

    cluster.layout.insert(spec);
    cluster.start_joining(wiped, &[]);
    let added = cluster.add_node(wiped);
    assert!(added.ends_with("voters=1,2,3 learners=-"), "{added}");
    // It came back through the leader's snapshot: its log was empty and the
    // leader's no longer starts at 1.
    let json = status_json(&cluster, wiped);
    assert!(
        json["snapshot_index"].as_u64().unwrap() >= snapshot_index,
        "node {wiped} did not install the snapshot at {snapshot_index}: {json}"
    );
    wait_for_convergence(&cluster, &cluster.ids());
    assert_present(&cluster, wiped, &acked);
}

#[test]
fn a_voter_wiped_in_place_catches_up_through_a_snapshot() {
    // The core tolerates this (the leader probes the empty node from what it holds),
    // but the node forgot its term and vote: the README explains why removing and
    // adding it again is the safe procedure.
    let mut cluster = Cluster::start(3);
    let mut acked = Vec::new();
    put_all(&cluster, 0..20, &mut acked);
    let leader = cluster.wait_for_leader();
    let wiped = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    cluster.stop(wiped);
    let data_dir = cluster.layout.node(wiped).unwrap().data_dir.clone();
    std::fs::remove_dir_all(&data_dir).unwrap();
    put_all(&cluster, 20..40, &mut acked);
    let running: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|id| *id != wiped)
        .collect();
    let snapshot_index = snapshot_all(&cluster, &running);

    cluster.restart(wiped);
    wait_for_convergence(&cluster, &cluster.ids());
    let json = status_json(&cluster, wiped);
    assert!(
        json["snapshot_index"].as_u64().unwrap() >= snapshot_index,
        "node {wiped} did not install the snapshot at {snapshot_index}: {json}"
    );
    assert_present(&cluster, wiped, &acked);
}

#[test]
fn a_joined_node_and_the_founders_learn_each_others_client_addresses_from_the_log() {
    let mut cluster = Cluster::start(3);
    cluster.put("k", "v");
    let four = cluster.plan_node(4);
    // Node 4 is told its own client and HTTP addresses only: by default it would take
    // the founders' to be on its own ports. The replicated table corrects that.
    cluster.start_joining_with(4, &[], |args| {
        for (flag, own) in [
            ("--peer-client-addrs", &four.client_addr),
            ("--peer-http-addrs", &four.http_addr),
        ] {
            let at = args.iter().position(|a| a == flag).unwrap();
            args[at + 1] = format!("4={own}");
        }
    });
    let added = cluster.add_node(4);
    // Asked again, the leader finds nothing to do.
    assert_eq!(cluster.add_node(4), added);

    // A write to a follower names the leader's client address and redirects to its
    // HTTP address, whichever of node 4 and the founders leads: node 4 learned the
    // founders' addresses, and they learned node 4's, from the log alone.
    let leader = cluster.wait_for_leader();
    let follower = if leader == 4 { 1 } else { 4 };
    let answer = cluster.request(follower, "put k w").unwrap();
    assert_eq!(
        answer,
        Answer::Error(format!("Leader is {}", cluster.client_addr(leader))),
        "node {follower} (node {leader} leads)"
    );
    let redirect = request(cluster.http_addr(follower), "PUT", "/kv/k", Some("w")).unwrap();
    assert_eq!(redirect.status, 307, "{redirect:?}");
    assert_eq!(
        redirect.header("location"),
        Some(
            format!(
                "{}://{}/kv/k",
                support::http::scheme(),
                cluster.http_addr(leader)
            )
            .as_str()
        )
    );
    // /status lists every member with its addresses.
    let json = status_json(&cluster, follower);
    let members = json["membership"]["members"].as_array().unwrap();
    assert_eq!(members.len(), 4, "{json}");
    for member in members {
        let id = member["id"].as_u64().unwrap();
        assert_eq!(member["client_addr"], cluster.client_addr(id), "{json}");
        assert_eq!(member["http_addr"], cluster.http_addr(id), "{json}");
    }
}
