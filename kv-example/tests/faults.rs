//! Crashes and restarts of real node processes: a SIGKILLed leader, a whole cluster
//! killed at once, a retried write; no acknowledged write may be lost.

mod support;

use std::collections::BTreeMap;

use kv_example::client::Answer;
use support::{wait_for, Cluster};

/// Every acknowledged value is there, on every listed node, read linearizably.
fn assert_all_present(cluster: &Cluster, nodes: &[u64], acked: &BTreeMap<String, String>) {
    for id in nodes {
        for (key, value) in acked {
            assert_eq!(
                cluster.get(*id, key).as_deref(),
                Some(value.as_str()),
                "node {id} lost acknowledged {key}={value}"
            );
        }
    }
}

#[test]
fn a_killed_leader_is_replaced_and_catches_up_when_it_returns() {
    killed_leader_scenario(Cluster::start(3));
}

#[test]
fn over_tls_a_killed_leader_is_replaced_and_catches_up_when_it_returns() {
    killed_leader_scenario(Cluster::start_tls(3));
}

fn killed_leader_scenario(mut cluster: Cluster) {
    let mut acked = BTreeMap::new();
    for i in 0..20 {
        cluster.put(&format!("k{i}"), &format!("before{i}"));
        acked.insert(format!("k{i}"), format!("before{i}"));
    }
    let old_leader = cluster.wait_for_leader();
    cluster.kill(old_leader);

    let rest: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|id| *id != old_leader)
        .collect();
    let new_leader = cluster.wait_for_leader_among(&rest);
    assert_ne!(new_leader, old_leader);
    // Writes continue on the majority; some overwrite keys written before the kill.
    for i in 10..30 {
        cluster.put(&format!("k{i}"), &format!("after{i}"));
        acked.insert(format!("k{i}"), format!("after{i}"));
    }
    assert_all_present(&cluster, &rest, &acked);

    cluster.restart(old_leader);
    // The old leader replays its log from disk and learns the rest from the leader.
    wait_for("the old leader to catch up", || {
        acked
            .iter()
            .all(|(k, v)| cluster.get_stale(old_leader, k).as_deref() == Some(v))
            .then_some(())
    });
    assert_all_present(&cluster, &cluster.ids(), &acked);
}

#[test]
fn a_cluster_killed_all_at_once_restarts_with_every_acknowledged_key() {
    let mut cluster = Cluster::start(3);
    let mut acked = BTreeMap::new();
    for i in 0..40 {
        let key = format!("key{}", i % 25);
        let value = format!("v{i}");
        cluster.put(&key, &value);
        acked.insert(key, value);
    }
    // A crash of every process at once: only what was fsynced survives, and every
    // acknowledged write was.
    for id in cluster.ids() {
        cluster.kill(id);
    }
    for id in cluster.ids() {
        cluster.restart(id);
    }
    cluster.wait_for_leader();
    assert_all_present(&cluster, &cluster.ids(), &acked);
}

#[test]
fn a_cleanly_stopped_follower_keeps_its_data_and_a_retried_write_applies_once() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_for_leader();
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    cluster.put("a", "1");
    cluster.stop(follower);
    cluster.restart(follower);
    wait_for("the follower to have `a` again", || {
        (cluster.get_stale(follower, "a").as_deref() == Some("1")).then_some(())
    });

    // Client 77's request 2 arrives twice (a retry after a lost answer) with request 3
    // in between: the retry must not undo request 3.
    let ask = |line: &str| cluster.request(leader, line).expect("the leader answers");
    assert!(ask("put --req 77:2 a first").appended_index().is_some());
    assert!(ask("put --req 77:3 a second").appended_index().is_some());
    let retry = ask("put --req 77:2 a first");
    assert!(
        matches!(&retry, Answer::Error(e) if e.contains("request 77:2 is older")),
        "{retry:?}"
    );
    // Another client writes; then a late retry of client 77's latest request answers
    // as the first time did, without applying again over the other client's write.
    assert!(ask("put --req 88:1 a other").appended_index().is_some());
    assert!(ask("put --req 77:3 a second").appended_index().is_some());
    for id in cluster.ids() {
        assert_eq!(cluster.get(id, "a").as_deref(), Some("other"), "node {id}");
    }
}

fn status_json(cluster: &Cluster, id: u64) -> serde_json::Value {
    let status = support::http::request(cluster.http_addr(id), "GET", "/status", None).unwrap();
    serde_json::from_str(&status.body).unwrap()
}

fn applied_index(cluster: &Cluster, id: u64) -> u64 {
    status_json(cluster, id)["applied_index"].as_u64().unwrap()
}

#[test]
fn a_follower_behind_the_leaders_snapshot_catches_up_through_it() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_for_leader();
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let mut acked = BTreeMap::new();
    cluster.put("s0", "v0");
    acked.insert("s0".to_string(), "v0".to_string());
    let behind = applied_index(&cluster, follower);
    // The follower misses everything from here on...
    cluster.stop(follower);
    for i in 1..30 {
        cluster.put(&format!("s{i}"), &format!("v{i}"));
        acked.insert(format!("s{i}"), format!("v{i}"));
    }
    // ...and the running nodes snapshot: their logs before that are gone.
    for id in cluster.ids().into_iter().filter(|id| *id != follower) {
        let answer = cluster.request(id, "snapshot").unwrap();
        let Answer::Ok(text) = answer else {
            panic!("node {id} did not snapshot: {answer:?}");
        };
        let index: u64 = text.strip_prefix("snapshot at ").unwrap().parse().unwrap();
        assert!(index > behind + 1, "node {id} snapshotted at {index}");
    }
    for i in 30..40 {
        cluster.put(&format!("s{i}"), &format!("v{i}"));
        acked.insert(format!("s{i}"), format!("v{i}"));
    }

    // A leader keeps what it sent to a node that is down in the connection's queue
    // and delivers it on reconnection; a restart empties the queues (and makes the
    // leader recover from its own snapshot). Then the follower, back, can only
    // catch up from a snapshot.
    cluster.stop(leader);
    cluster.restart(leader);
    let running: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|id| *id != follower)
        .collect();
    cluster.wait_for_leader_among(&running);
    for id in &running {
        assert_eq!(cluster.get(*id, "s5").as_deref(), Some("v5"), "node {id}");
    }
    cluster.restart(follower);
    wait_for("the follower to catch up", || {
        acked
            .iter()
            .all(|(k, v)| cluster.get_stale(follower, k).as_deref() == Some(v))
            .then_some(())
    });
    let json = status_json(&cluster, follower);
    assert!(
        json["snapshot_index"].as_u64().unwrap() > behind,
        "the follower caught up through a snapshot: {json}"
    );
    assert_all_present(&cluster, &cluster.ids(), &acked);
}
