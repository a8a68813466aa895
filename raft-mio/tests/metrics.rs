//! `Client::metrics`: what a running node counted, for exporters.

mod support;

use raft_core::NodeId;
use support::{Cluster, Cmd};

#[test]
fn a_leader_counts_its_commits_election_fsyncs_and_traffic_per_peer() {
    let cluster = Cluster::start(3);
    let leader = cluster.wait_for_leader();
    for i in 0..20 {
        cluster.append(Cmd(i));
    }
    let metrics = cluster.node(leader).client.metrics().unwrap();
    assert!(metrics.proposals_committed >= 20, "{metrics:?}");
    assert_eq!(metrics.elections_won, 1);
    assert!(metrics.elections_started >= 1);
    assert_eq!(metrics.step_downs, 0);
    assert!(metrics.fsync_latency.count > 0);
    let buckets: u64 = metrics.fsync_latency.bucket_counts.iter().sum();
    assert_eq!(buckets, metrics.fsync_latency.count);
    let peers: Vec<NodeId> = metrics.peers.keys().copied().collect();
    assert_eq!(peers.len(), 2, "{metrics:?}");
    for traffic in metrics.peers.values() {
        assert!(traffic.messages_sent >= 20, "{traffic:?}");
        assert!(traffic.bytes_sent > traffic.messages_sent);
        assert!(traffic.messages_received >= 20, "{traffic:?}");
        assert!(traffic.bytes_received > traffic.messages_received);
    }
    let follower = *peers.first().unwrap();
    let seen = cluster.node(follower).client.metrics().unwrap();
    assert!(seen.peers[&leader].messages_received >= 20, "{seen:?}");
    assert_eq!(
        seen.proposals_committed, 0,
        "proposals are counted where proposed"
    );
    cluster.shutdown();
}
