//! Leadership transfer (thesis §3.10) and its abandonment.

mod support;

use raft_core::{
    Action, DropReason, Event, NodeId, ProposalId, RoleKind, SharedBytes, TransferFailure,
};
use support::*;

fn transfer(c: &mut Cluster, from: u64, to: u64) {
    c.step(from, Event::TransferLeadership { to: NodeId(to) });
}

#[test]
fn transfer_to_a_caught_up_follower() {
    let mut c = Cluster::new(3);
    c.elect(1);
    transfer(&mut c, 1, 2);
    c.deliver_all();
    assert_eq!(
        c.node(2).role(),
        RoleKind::Leader,
        "TimeoutNow sets aside the followers' leases"
    );
    assert_eq!(c.node(1).role(), RoleKind::Follower);
    assert_eq!(c.node(1).leader(), Some(NodeId(2)));
    assert!(!c
        .outputs(1)
        .iter()
        .any(|a| matches!(a, Action::TransferAborted { .. })));
}

#[test]
fn transfer_catches_a_lagging_target_up_first() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.isolate(3);
    for p in 0..5 {
        c.propose(1, p, "x");
    }
    c.heal();
    transfer(&mut c, 1, 3);
    for _ in 0..4 {
        c.tick_all();
    }
    assert_eq!(c.node(3).role(), RoleKind::Leader);
    assert_eq!(c.applied_commands(3).len(), 5);
}

#[test]
fn transfer_is_abandoned_after_an_election_timeout_and_the_leader_resumes() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.isolate(3);
    transfer(&mut c, 1, 3);
    c.propose(1, 1, "refused");
    let refused = Action::ProposalDropped {
        id: ProposalId(1),
        reason: DropReason::Transferring,
    };
    assert!(c.outputs(1).contains(&refused));
    let timeout = c.node(1).config().election_timeout_ticks_min;
    for _ in 0..timeout {
        c.tick(1);
        c.tick(2);
        c.deliver_all();
    }
    let aborted = Action::TransferAborted {
        to: NodeId(3),
        reason: TransferFailure::Timeout,
    };
    assert!(c.outputs(1).contains(&aborted));
    assert_eq!(c.node(1).role(), RoleKind::Leader);
    c.step(
        1,
        Event::propose(ProposalId(2), SharedBytes::from("accepted")),
    );
    c.deliver_all();
    assert!(c.applied_commands(1).contains(&"accepted".to_string()));
}

#[test]
fn transfer_to_a_non_voter_or_from_a_follower_is_refused() {
    let mut c = Cluster::new(3);
    c.elect(1);
    transfer(&mut c, 1, 9);
    transfer(&mut c, 2, 3);
    let not_voter = Action::TransferAborted {
        to: NodeId(9),
        reason: TransferFailure::NotAVoter,
    };
    let not_leader = Action::TransferAborted {
        to: NodeId(3),
        reason: TransferFailure::NotLeader,
    };
    assert!(c.outputs(1).contains(&not_voter));
    assert!(c.outputs(2).contains(&not_leader));
}
