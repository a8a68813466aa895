//! The callback forms of the client calls (`submit_then`, `read_index_then`), for
//! applications that run their own event loop: each callback runs once, with what the
//! blocking call would have returned, including after the node stopped.

mod support;

use std::sync::mpsc;
use std::time::Duration;

use raft_core::LogIndex;
use raft_mio::{AppendError, ReadError};
use support::{Cluster, Cmd};

/// How long a callback may take to be called.
const ANSWER_WAIT_MAX: Duration = Duration::from_secs(10);

#[test]
fn callbacks_hear_commits_barriers_and_refusals_once_each() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_for_leader();
    let client = cluster.node(leader).client.clone();
    let (tx, rx) = mpsc::channel();
    for n in 1..=100 {
        let tx = tx.clone();
        client.submit_then(&Cmd(n), move |result| tx.send((n, result)).unwrap());
    }
    let mut indexes: Vec<(u64, LogIndex)> = (0..100)
        .map(|_| {
            let (n, result) = rx.recv_timeout(ANSWER_WAIT_MAX).expect("an answer");
            (n, result.expect("committed on the leader"))
        })
        .collect();
    indexes.sort();
    assert!(
        indexes.windows(2).all(|w| w[0].1 < w[1].1),
        "submitted in order, committed in order: {indexes:?}"
    );

    // A barrier covers every write committed before it was asked for.
    let (read_tx, read_rx) = mpsc::channel();
    client.read_index_then(move |result| read_tx.send(result).unwrap());
    let barrier = read_rx.recv_timeout(ANSWER_WAIT_MAX).unwrap().unwrap();
    assert!(barrier >= indexes[99].1, "{barrier} < {}", indexes[99].1);

    // A follower refuses a proposal, naming the leader.
    let follower = *cluster.nodes.keys().find(|id| **id != leader).unwrap();
    let (tx, rx) = mpsc::channel();
    cluster
        .node(follower)
        .client
        .submit_then(&Cmd(0), move |result| tx.send(result).unwrap());
    match rx.recv_timeout(ANSWER_WAIT_MAX).unwrap() {
        Err(AppendError::NotLeader(Some(hint))) => assert_eq!(hint.id, leader),
        other => panic!("expected NotLeader naming {leader}, got {other:?}"),
    }

    // Once the node has stopped, the callbacks still run, on the caller's thread.
    cluster.stop(leader);
    let (tx, rx) = mpsc::channel();
    client.submit_then(&Cmd(1000), move |result| tx.send(result).unwrap());
    assert_eq!(
        rx.recv_timeout(ANSWER_WAIT_MAX).unwrap(),
        Err(AppendError::Shutdown)
    );
    let (tx, rx) = mpsc::channel();
    client.read_index_then(move |result| tx.send(result).unwrap());
    assert_eq!(
        rx.recv_timeout(ANSWER_WAIT_MAX).unwrap(),
        Err(ReadError::Shutdown)
    );
    cluster.shutdown();
}
