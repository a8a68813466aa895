mod support;
use raft_core::RoleKind;
use support::*;

#[test]
fn three_nodes_elect_and_replicate() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.propose(1, 1, "hello");
    c.tick_all();
    c.tick_all();
    for n in 1..=3 {
        assert_eq!(c.applied_commands(n), vec!["hello".to_string()], "node {n}");
    }
    assert_eq!(c.node(2).role(), RoleKind::Follower);
}
