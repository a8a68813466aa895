//! Three raft-mio nodes in one process on 127.0.0.1: election, replication in order,
//! leader failure and rejoin, reads, hints, many proposals in flight.

mod support;

use raft_core::{LogIndex, NodeId, RoleKind, Term};
use raft_mio::{AppendError, RaftConfig};
use support::{wait_until, Cluster, Cmd};

#[test]
fn three_nodes_elect_a_leader_and_commit_in_order_everywhere() {
    let cluster = Cluster::start(3);
    let leader = cluster.wait_for_leader();
    let expected: Vec<Cmd> = (0..50).map(Cmd).collect();
    let mut last = LogIndex(0);
    for cmd in &expected {
        let index = cluster.append(cmd.clone());
        assert!(index > last, "indexes increase");
        last = index;
    }
    cluster.wait_for_applied(&expected);
    let applied = cluster.node(leader).applied.lock().unwrap().clone();
    for node in cluster.nodes.values() {
        assert_eq!(
            *node.applied.lock().unwrap(),
            applied,
            "same commands at the same indexes"
        );
    }
    cluster.shutdown();
}

#[test]
fn a_killed_leader_is_replaced_and_rejoins_and_catches_up() {
    a_stopped_leader_is_replaced_and_catches_up(Cluster::start(3));
}

#[test]
fn over_tls_a_killed_leader_is_replaced_and_rejoins_and_catches_up() {
    a_stopped_leader_is_replaced_and_catches_up(Cluster::start_tls(3));
}

fn a_stopped_leader_is_replaced_and_catches_up(mut cluster: Cluster) {
    let mut expected: Vec<Cmd> = (0..10).map(Cmd).collect();
    for cmd in &expected {
        cluster.append(cmd.clone());
    }
    let old_leader = cluster.wait_for_leader();
    let old_term = cluster.node(old_leader).status().term;
    cluster.stop(old_leader);

    let new_leader = cluster.wait_for_leader();
    assert_ne!(new_leader, old_leader);
    assert!(cluster.node(new_leader).status().term > old_term);
    for i in 10..20 {
        cluster.append(Cmd(i));
        expected.push(Cmd(i));
    }

    cluster.launch(old_leader, None);
    // The restarted node replays its log from disk and catches up on what it missed.
    cluster.wait_for_applied(&expected);
    // And the cluster of three goes on (whoever leads: under CPU pressure an
    // election is legitimate, so the test does not insist on the same leader).
    cluster.append(Cmd(20));
    expected.push(Cmd(20));
    cluster.wait_for_applied(&expected);
    cluster.shutdown();
}

#[test]
fn a_follower_names_the_leader_and_its_address() {
    let cluster = Cluster::start(3);
    // Asked until the answer comes from a follower of a stable leader (an election
    // in between is legitimate and just means asking again).
    wait_until("a follower's NotLeader hint", || {
        let leader = cluster.wait_for_leader();
        let follower = cluster
            .nodes
            .keys()
            .copied()
            .find(|id| *id != leader)
            .unwrap();
        match cluster.node(follower).client.append_cmd(Cmd(1)) {
            Err(AppendError::NotLeader(Some(hint))) if hint.id == leader => {
                assert_eq!(hint.addr.as_deref(), Some(cluster.addrs[&leader].as_str()));
                let text = AppendError::NotLeader(Some(hint)).to_string();
                assert!(text.contains(&cluster.addrs[&leader]), "{text}");
                true
            }
            Err(AppendError::NotLeader(_)) => false,
            other => panic!("a follower accepted or failed otherwise: {other:?}"),
        }
    });
    cluster.shutdown();
}

#[test]
fn a_read_barrier_covers_every_committed_write_on_leader_and_follower() {
    let cluster = Cluster::start(3);
    let index = cluster.append(Cmd(42));
    for node in cluster.nodes.values() {
        let barrier = node.client.read_index().expect("read barrier");
        assert!(
            barrier >= index,
            "node {}: barrier {barrier} below the committed write {index}",
            node.id
        );
        wait_until("the application reaches the barrier", || {
            node.applied
                .lock()
                .unwrap()
                .last()
                .is_some_and(|(i, _)| *i >= index)
        });
        assert!(node.commands().contains(&Cmd(42)));
    }
    // Whoever leads now (an election in between is legitimate) reports its peers.
    let status = cluster.node(cluster.wait_for_leader()).status();
    assert_eq!(status.role, RoleKind::Leader);
    assert!(status.commit_index >= index);
    assert_eq!(status.peers.len(), 2);
    assert_eq!(
        status.replication.len(),
        2,
        "the leader reports its followers' progress"
    );
    cluster.shutdown();
}

#[test]
fn one_thread_keeps_many_proposals_in_flight() {
    let cluster = Cluster::start(3);
    // A leader change mid-batch drops some proposals (legitimately); then the batch
    // is tried again with fresh commands, a bounded number of times.
    let mut committed_batch = None;
    for attempt in 0..5u64 {
        let leader = cluster.wait_for_leader();
        let client = &cluster.node(leader).client;
        let batch: Vec<Cmd> = (0..500).map(|i| Cmd(attempt * 1000 + i)).collect();
        let proposals: Vec<_> = batch
            .iter()
            .map(|c| client.submit(c).expect("submitted"))
            .collect();
        let results: Vec<_> = proposals.into_iter().map(|p| p.wait()).collect();
        if let Ok(indexes) = results.into_iter().collect::<Result<Vec<LogIndex>, _>>() {
            assert!(
                indexes.windows(2).all(|w| w[0] < w[1]),
                "proposals from one thread commit in submission order"
            );
            committed_batch = Some(batch);
            break;
        }
    }
    let batch = committed_batch.expect("a batch committed within five leaderships");
    for node in cluster.nodes.values() {
        wait_until("the batch is applied", || {
            node.commands().iter().filter(|c| batch.contains(c)).count() == batch.len()
        });
        let seen: Vec<Cmd> = node
            .commands()
            .into_iter()
            .filter(|c| batch.contains(c))
            .collect();
        assert_eq!(
            seen, batch,
            "node {} applied the batch out of order",
            node.id
        );
    }
    cluster.shutdown();
}

#[test]
fn leadership_moves_on_request() {
    let cluster = Cluster::start(3);
    let leader = cluster.wait_for_leader();
    let target = cluster
        .nodes
        .keys()
        .copied()
        .find(|id| *id != leader)
        .unwrap();
    cluster.append(Cmd(1));
    // A transfer can be aborted (the target lagged); ask again until it happens.
    wait_until("leadership moves to the target", || {
        cluster
            .node(leader)
            .client
            .transfer_leadership(target)
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        cluster.node(target).status().role == RoleKind::Leader
    });
    assert_eq!(cluster.wait_for_leader(), target);
    cluster.append(Cmd(2));
    cluster.wait_for_applied(&[Cmd(1), Cmd(2)]);
    cluster.shutdown();
}

#[test]
fn the_node_set_to_campaign_at_bootstrap_leads_a_new_cluster_in_term_1() {
    // Whichever node the timeouts would favour, the chosen one wins: at least two of
    // the three cases differ from the cluster's natural first leader.
    let chosen: [(NodeId, Tweak); 3] = [
        (NodeId(1), |c| campaign_if(c, NodeId(1))),
        (NodeId(2), |c| campaign_if(c, NodeId(2))),
        (NodeId(3), |c| campaign_if(c, NodeId(3))),
    ];
    for (id, tweak) in chosen {
        let cluster = Cluster::start_with(3, tweak);
        assert_eq!(cluster.wait_for_leader(), id);
        let status = cluster.node(id).status();
        assert_eq!(status.term, Term(1), "one election, no contest");
        assert_eq!(cluster.append(Cmd(1)), LogIndex(2), "after the no-op");
        cluster.shutdown();
    }
}

#[test]
fn a_restarted_cluster_does_not_campaign_at_bootstrap_again() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_for_leader();
    cluster.append(Cmd(1));
    let term = cluster.node(leader).status().term;
    let other = NodeId(leader.0 % 3 + 1);
    cluster.stop(other);
    // Storage is no longer new: the flag must leave the node an ordinary follower.
    cluster.launch_with(other, None, RaftConfig::campaign_at_bootstrap);
    cluster.append(Cmd(2));
    cluster.wait_for_applied(&[Cmd(1), Cmd(2)]);
    assert_eq!(cluster.wait_for_leader(), leader, "no election was started");
    assert_eq!(cluster.node(leader).status().term, term);
    cluster.shutdown();
}

/// A change to every node's configuration.
type Tweak = fn(RaftConfig) -> RaftConfig;

fn campaign_if(config: RaftConfig, id: NodeId) -> RaftConfig {
    if config.id == id {
        config.campaign_at_bootstrap()
    } else {
        config
    }
}
