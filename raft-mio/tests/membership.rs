//! Membership changes at runtime: a fourth node joins as a learner, catches up,
//! becomes a voter; then a founding node is removed and the rest go on.

mod support;

use raft_core::{MembershipChange, NodeId, RoleKind};
use raft_mio::AppendError;
use support::{wait_until, Cluster, Cmd};

/// Proposes a membership change on the leader until it is accepted (a change is
/// refused while another is in progress or before the leader commits in its term).
fn change(cluster: &Cluster, changes: Vec<MembershipChange>, addrs: Vec<(NodeId, String)>) {
    let mut done = false;
    wait_until(&format!("the change {changes:?} commits"), || {
        // A node waiting to be added knows no leader yet: ask whoever leads.
        let Some(leader) = cluster
            .nodes
            .values()
            .find(|n| n.status().role == RoleKind::Leader)
        else {
            return false;
        };
        match leader
            .client
            .change_membership(changes.clone(), addrs.clone())
        {
            Ok(_) => done = true,
            Err(AppendError::Dropped(_)) | Err(AppendError::NotLeader(_)) => {}
            Err(e) => panic!("membership change failed: {e}"),
        }
        done
    });
}

#[test]
fn a_node_joins_as_learner_becomes_voter_and_a_founder_leaves() {
    let mut cluster = Cluster::start(3);
    let mut expected: Vec<Cmd> = (0..20).map(Cmd).collect();
    for cmd in &expected {
        cluster.append(cmd.clone());
    }
    // Node 4 starts empty, waiting to be added; everyone learns its address.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let new = NodeId(4);
    let addr = listener.local_addr().unwrap().to_string();
    cluster.addrs.insert(new, addr.clone());
    cluster.tweak = |c| c.join_existing();
    cluster.launch(new, Some(listener));
    for node in cluster.nodes.values() {
        node.client.set_peer_address(new, addr.clone()).unwrap();
    }

    change(
        &cluster,
        vec![MembershipChange::AddLearner(new)],
        vec![(new, addr.clone())],
    );
    cluster.wait_for_applied(&expected);
    change(&cluster, vec![MembershipChange::AddVoter(new)], vec![]);
    wait_until("node 4 votes", || {
        let m = cluster.node(new).status().membership;
        m.voters.contains(&new) && !m.is_joint()
    });

    let leaving = NodeId(1);
    change(&cluster, vec![MembershipChange::Remove(leaving)], vec![]);
    wait_until("node 1 is out", || {
        cluster
            .nodes
            .values()
            .filter(|n| n.id != leaving)
            .all(|n| !n.status().membership.contains(leaving))
    });
    cluster.stop(leaving);
    for i in 20..30 {
        cluster.append(Cmd(i));
        expected.push(Cmd(i));
    }
    cluster.wait_for_applied(&expected);
    let leader = cluster.wait_for_leader();
    assert_ne!(leader, leaving);
    assert_eq!(cluster.node(leader).status().membership.voters.len(), 3);
    cluster.shutdown();
}
