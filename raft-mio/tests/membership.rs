//! Membership changes at runtime, with addresses that travel through the log: a node
//! joins as a learner and becomes a voter while every member learns where it is; a
//! founding node leaves and its connections close; a founder that restarts, and a
//! node that joins later through a snapshot, learn addresses no configuration gave
//! them; a member that moves is reached at its new address once it is published; a
//! removed node that comes back with its old log cannot disturb the cluster; and a
//! new cluster, whose members all know each other from their configuration, logs
//! no address record at all.

mod support;

use std::collections::BTreeSet;
use std::net::TcpListener;

use raft_core::{LogIndex, MembershipChange, NodeId, RoleKind, Term};
use raft_mio::{AddrTable, AppendError, MemberAddrs, RaftConfig};
use support::{wait_until, Cluster, Cmd, TestNode};

/// Proposes a membership change on the leader until it is accepted (a change is
/// refused while another is in progress or before the leader commits in its term).
fn change(cluster: &Cluster, changes: Vec<MembershipChange>, addrs: AddrTable) {
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

/// Waits until every running node has applied a simple configuration with exactly
/// these voters and learners.
fn wait_for_applied_membership(cluster: &Cluster, voters: &[u64], learners: &[u64]) {
    let ids = |list: &[u64]| -> BTreeSet<NodeId> { list.iter().map(|i| NodeId(*i)).collect() };
    let (voters, learners) = (ids(voters), ids(learners));
    for node in cluster.nodes.values() {
        wait_until(
            &format!("node {} applies voters {voters:?}", node.id),
            || {
                let m = node.status().applied_membership;
                !m.is_joint() && m.voters == voters && m.learners == learners
            },
        );
    }
}

/// Keeps only these nodes in a configuration's peers and founding voters: what a
/// node's configuration would say if it was written before the others joined.
fn knowing_only(ids: &'static [u64]) -> impl FnOnce(RaftConfig) -> RaftConfig {
    move |mut c| {
        c.peers.retain(|id, _| ids.contains(&id.0));
        c.core.initial_voters.retain(|id| ids.contains(&id.0));
        c
    }
}

/// A port for a new node.
fn listener() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    (listener, addr)
}

/// Starts node `id` waiting to be added, configured with `seeds` (and itself) only,
/// and adds it as a learner with a client address; returns its addresses.
fn join_as_learner(cluster: &mut Cluster, id: u64, seeds: &'static [u64]) -> MemberAddrs {
    let (listener, addr) = listener();
    let new = NodeId(id);
    cluster.addrs.insert(new, addr.clone());
    cluster.launch_with(new, Some(listener), |c| {
        knowing_only(seeds)(c).join_existing()
    });
    let addrs = MemberAddrs::new(addr).with("client", format!("client-of-{id}"));
    change(
        cluster,
        vec![MembershipChange::AddLearner(new)],
        [(new, addrs.clone())].into(),
    );
    addrs
}

/// Waits until `node` knows `peer`'s addresses and its connection to it is up.
fn wait_until_connected(node: &TestNode, peer: NodeId, addrs: &MemberAddrs) {
    wait_until(
        &format!("node {} knows and reaches node {peer}", node.id),
        || {
            let status = node.status();
            status.members.get(&peer) == Some(addrs)
                && status.peers.iter().any(|p| p.id == peer && p.connected)
        },
    );
}

#[test]
fn a_new_cluster_logs_no_address_record_so_its_first_command_lands_at_index_2() {
    // A second election adds its leader's no-op to the log: then try a new cluster.
    for _ in 0..3 {
        let cluster = Cluster::start(3);
        let first = cluster.append(Cmd(1));
        let second = cluster.append(Cmd(2));
        cluster.wait_for_applied(&[Cmd(1), Cmd(2)]);
        let leader = cluster.node(cluster.wait_for_leader());
        // Each status is one turn of the leader's loop: a record proposed late, after
        // the commands, has been stepped into the log by the second.
        leader.status();
        let status = leader.status();
        if status.term != Term(1) {
            cluster.shutdown();
            continue;
        }
        assert_eq!(
            first,
            LogIndex(2),
            "index 1 is the leader's no-op, then ours"
        );
        assert_eq!(second, LogIndex(3));
        assert_eq!(status.last_index, LogIndex(3), "nothing else in the log");
        let expected = vec![(LogIndex(2), Cmd(1)), (LogIndex(3), Cmd(2))];
        for node in cluster.nodes.values() {
            assert_eq!(*node.applied.lock().unwrap(), expected, "node {}", node.id);
        }
        cluster.shutdown();
        return;
    }
    panic!("three new clusters in a row elected a second leader");
}

#[test]
fn a_joining_node_is_reachable_by_every_member_and_a_removed_one_is_cut_off() {
    let mut cluster = Cluster::start(3);
    let mut expected: Vec<Cmd> = (0..20).map(Cmd).collect();
    for cmd in &expected {
        cluster.append(cmd.clone());
    }
    // Node 4 starts empty, waiting to be added, knowing the founders; nobody is told
    // its address but the leader, through the change.
    let new = NodeId(4);
    let addrs = join_as_learner(&mut cluster, 4, &[1, 2, 3, 4]);
    cluster.wait_for_applied(&expected);
    change(&cluster, vec![MembershipChange::AddVoter(new)], [].into());
    wait_for_applied_membership(&cluster, &[1, 2, 3, 4], &[]);
    for id in 1..=3 {
        wait_until_connected(cluster.node(NodeId(id)), new, &addrs);
    }

    // Once node 4 leads, the followers name it with its application address.
    let mut polls = 0u64;
    wait_until(
        "a follower names node 4 as leader, with its client address",
        || {
            // Ask again now and then: a transfer that does not finish is abandoned.
            polls += 1;
            let leader = cluster
                .nodes
                .values()
                .find(|n| n.status().role == RoleKind::Leader);
            if let Some(leader) = leader.filter(|l| l.id != new && polls % 20 == 1) {
                leader.client.transfer_leadership(new).unwrap();
            }
            cluster.node(NodeId(2)).status().leader.is_some_and(|hint| {
                hint.id == new
                    && hint.app_addrs.get("client").map(String::as_str) == Some("client-of-4")
            })
        },
    );

    // Node 1 leaves: every remaining member forgets it and closes its connections.
    let leaving = NodeId(1);
    change(&cluster, vec![MembershipChange::Remove(leaving)], [].into());
    cluster.stop(leaving);
    wait_for_applied_membership(&cluster, &[2, 3, 4], &[]);
    for node in cluster.nodes.values() {
        wait_until(&format!("node {} drops node 1", node.id), || {
            let status = node.status();
            !status.peers.iter().any(|p| p.id == leaving) && !status.members.contains_key(&leaving)
        });
    }
    for i in 20..30 {
        cluster.append(Cmd(i));
        expected.push(Cmd(i));
    }
    cluster.wait_for_applied(&expected);

    // A founder whose configuration predates node 4 learns its address from its log.
    cluster.stop(NodeId(2));
    cluster.launch_with(NodeId(2), None, knowing_only(&[1, 2, 3]));
    wait_until_connected(cluster.node(NodeId(2)), new, &addrs);
    cluster.wait_for_applied(&expected);
    cluster.shutdown();
}

#[test]
fn a_node_that_joins_later_learns_the_addresses_from_a_snapshot() {
    let mut cluster = Cluster::start(3);
    let mut expected: Vec<Cmd> = (0..30).map(Cmd).collect();
    for cmd in &expected {
        cluster.append(cmd.clone());
    }
    let four = join_as_learner(&mut cluster, 4, &[1, 2, 3, 4]);
    cluster.wait_for_applied(&expected);
    for i in 30..40 {
        cluster.append(Cmd(i));
        expected.push(Cmd(i));
    }
    cluster.wait_for_applied(&expected);
    // Every node snapshots: the record that named node 4 is compacted away.
    for node in cluster.nodes.values() {
        support::compact(node);
    }

    // Node 5 is configured with the founders only; it learns node 4 from the snapshot.
    let five = join_as_learner(&mut cluster, 5, &[1, 2, 3, 5]);
    let node5 = cluster.node(NodeId(5));
    wait_until("node 5 installs a snapshot", || {
        node5.status().snapshot_index.0 > 0
    });
    wait_until_connected(node5, NodeId(4), &four);
    wait_until_connected(cluster.node(NodeId(4)), NodeId(5), &five);
    cluster.wait_for_applied(&expected);
    cluster.shutdown();
}

#[test]
fn a_member_that_moves_is_reached_at_its_new_address_once_it_is_published() {
    let mut cluster = Cluster::start(3);
    let mut expected: Vec<Cmd> = (0..10).map(Cmd).collect();
    for cmd in &expected {
        cluster.append(cmd.clone());
    }
    join_as_learner(&mut cluster, 4, &[1, 2, 3, 4]);
    cluster.wait_for_applied(&expected);

    // Node 4 comes back on another port, with its data.
    let four = NodeId(4);
    cluster.stop(four);
    let (listener, moved_to) = listener();
    cluster.addrs.insert(four, moved_to.clone());
    cluster.launch_with(four, Some(listener), knowing_only(&[1, 2, 3, 4]));
    let moved = MemberAddrs::new(moved_to).with("client", "client-of-4");
    wait_until("the leader publishes node 4's new address", || {
        let leader = cluster
            .nodes
            .values()
            .find(|n| n.status().role == RoleKind::Leader);
        leader.is_some_and(|l| {
            l.client
                .publish_member_addrs([(four, moved.clone())])
                .is_ok()
        })
    });
    for id in 1..=3 {
        wait_until_connected(cluster.node(NodeId(id)), four, &moved);
    }
    for i in 10..20 {
        cluster.append(Cmd(i));
        expected.push(Cmd(i));
    }
    cluster.wait_for_applied(&expected);
    cluster.shutdown();
}

#[test]
fn a_removed_node_that_restarts_with_its_old_log_cannot_disturb_the_cluster() {
    let mut cluster = Cluster::start(3);
    let mut expected: Vec<Cmd> = (0..10).map(Cmd).collect();
    for cmd in &expected {
        cluster.append(cmd.clone());
    }
    cluster.wait_for_applied(&expected);
    let leader = cluster.wait_for_leader();
    let removed = cluster
        .nodes
        .keys()
        .copied()
        .find(|id| *id != leader)
        .unwrap();
    // It is down while it is removed, so its log never learns of its removal.
    cluster.stop(removed);
    change(&cluster, vec![MembershipChange::Remove(removed)], [].into());
    let rest: Vec<u64> = (1..=3).filter(|id| *id != removed.0).collect();
    wait_for_applied_membership(&cluster, &rest, &[]);

    cluster.launch(removed, None);
    let returning = cluster.nodes.remove(&removed).unwrap();
    assert!(
        returning.status().membership.is_voter(removed),
        "it still believes it votes"
    );
    // Cut off from the leader, it times out and campaigns...
    wait_until("the removed node campaigns", || {
        returning.status().role != RoleKind::Follower
    });
    // ...but the members refuse its connections, and go on without it.
    for i in 10..40 {
        cluster.append(Cmd(i));
        expected.push(Cmd(i));
        let status = returning.status();
        assert!(
            status.peers.iter().all(|p| !p.connected),
            "a member accepted the removed node: {:?}",
            status.peers
        );
        assert_ne!(status.role, RoleKind::Leader);
    }
    cluster.wait_for_applied(&expected);
    assert!(
        returning.commands().iter().all(|c| c.0 < 10),
        "the removed node applied entries of the cluster it left"
    );
    for node in cluster.nodes.values() {
        let status = node.status();
        assert!(!status.membership.contains(removed));
        assert!(!status.peers.iter().any(|p| p.id == removed));
    }
    returning.stop();
    cluster.shutdown();
}
