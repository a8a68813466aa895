//! What a client is told about writes in flight when their leader goes away: "fate
//! unknown" with the request id to retry with, never "not applied", because the
//! writes are in the leader's durable log and a later leader may commit them. And
//! retried under those ids, each is applied exactly once.

mod support;

use std::sync::mpsc;

use kv_example::client::TextClient;
use kv_example::layout::{Layout, NodeOptions};
use support::http;
use support::{wait_for, wait_for_ok, Cluster, WAIT_MAX};

const WRITES: u64 = 3;

/// The leader's last log index, from `GET /status`.
fn last_index(cluster: &Cluster, id: u64) -> Option<u64> {
    let response = http::request(cluster.http_addr(id), "GET", "/status", None).ok()?;
    let json: serde_json::Value = serde_json::from_str(&response.body).ok()?;
    json["last_index"].as_u64()
}

#[test]
fn writes_in_flight_on_a_stopped_leader_are_unknown_and_a_retry_applies_them_once() {
    // A long request timeout: the answers must come from the stop, not a timeout.
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::free_local_ports(3, dir.path()).unwrap();
    let options = NodeOptions {
        extra_args: vec!["--request-timeout-ms".into(), "120000".into()],
        ..NodeOptions::default()
    };
    let mut cluster = Cluster::start_with(layout, dir, options, |_| Vec::new());
    cluster.put("before", "0");
    let leader = cluster.wait_for_leader();
    let followers: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|id| *id != leader)
        .collect();
    for id in &followers {
        cluster.kill(*id);
    }
    let appended_before = last_index(&cluster, leader).expect("the leader's status");

    // Writes the leader appends but cannot commit without its followers: three
    // clients (55i), one request each.
    let (answers_tx, answers) = mpsc::channel();
    for i in 1..=WRITES {
        let addr = cluster.client_addr(leader).to_string();
        let answers_tx = answers_tx.clone();
        std::thread::spawn(move || {
            let answer = TextClient::connect(&addr, WAIT_MAX)
                .and_then(|mut c| c.request_line(&format!("put --req 55{i}:1 k{i} v{i}")));
            let _ = answers_tx.send((i, answer));
        });
    }
    wait_for("the leader to append the writes", || {
        (last_index(&cluster, leader)? >= appended_before + WRITES).then_some(())
    });
    // A clean stop: the leader finishes its fsync, so the writes are durable there.
    cluster.stop(leader);
    for _ in 0..WRITES {
        let (i, answer) = answers
            .recv_timeout(WAIT_MAX)
            .expect("every write is answered");
        let answer = answer.expect("an answer line, not a cut connection");
        assert!(
            answer.contains("fate is unknown") && answer.contains(&format!("--req 55{i}:1")),
            "write {i}: {answer}"
        );
        assert!(!answer.contains("not applied"), "write {i}: {answer}");
    }

    // Whoever leads next, the retries under the same ids apply each write once.
    cluster.restart(leader);
    for id in &followers {
        cluster.restart(*id);
    }
    for i in 1..=WRITES {
        let leader = cluster.wait_for_leader();
        wait_for_ok(&format!("write {i} retried under its id"), || {
            let mut c = TextClient::connect(cluster.client_addr(leader), WAIT_MAX)
                .map_err(|e| e.to_string())?;
            let answer = c
                .request_line(&format!("put --req 55{i}:1 k{i} v{i}"))
                .map_err(|e| e.to_string())?;
            answer
                .strip_prefix("Ok: Appended at ")
                .map(drop)
                .ok_or(answer)
        });
        assert_eq!(cluster.get(leader, &format!("k{i}")), Some(format!("v{i}")));
    }
}
