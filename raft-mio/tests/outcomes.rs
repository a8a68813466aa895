//! What a client is told about a proposal whose node loses its quorum: nothing until
//! the fate is known, even once the node has stepped down, and "fate unknown" (never
//! "not applied") if the node stops first. The proposal is in the old leader's
//! durable log, so a later leader may still commit it.

mod support;

use std::time::Duration;

use raft_core::{NodeId, RoleKind};
use raft_mio::{AppendError, UnknownFate};
use support::{wait_until, Cluster, Cmd};

#[test]
fn a_pending_proposal_outlives_a_step_down_and_is_unknown_when_its_node_stops() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_for_leader();
    cluster.append(Cmd(1));
    let followers: Vec<NodeId> = cluster
        .nodes
        .keys()
        .copied()
        .filter(|id| *id != leader)
        .collect();
    for id in &followers {
        cluster.stop(*id);
    }
    let proposal = cluster.node(leader).client.submit(&Cmd(2)).unwrap();
    // CheckQuorum: a leader that hears no majority for an election timeout steps
    // down. The proposal is in its log; whether it commits is not known.
    wait_until("the leader without a quorum steps down", || {
        cluster.node(leader).status().role != RoleKind::Leader
    });
    assert!(
        proposal.wait_timeout(Duration::from_millis(200)).is_none(),
        "stepping down says nothing about the proposal's fate"
    );
    cluster.stop(leader);
    assert_eq!(
        proposal.wait(),
        Err(AppendError::Unknown(UnknownFate::NodeStopped))
    );

    // And indeed it may commit: the entry is durable in the old leader's log, the
    // longest, so with one follower back only the old leader can win an election,
    // and its first commit commits the entry too.
    cluster.launch(leader, None);
    cluster.launch(followers[0], None);
    assert_eq!(cluster.wait_for_leader(), leader);
    cluster.append(Cmd(3));
    cluster.launch(followers[1], None);
    cluster.wait_for_applied(&[Cmd(1), Cmd(2), Cmd(3)]);
    cluster.shutdown();
}
