//! Membership changes (thesis §4): learners, joint consensus that the leader leaves
//! on its own, removal of the leader, and the rules that keep changes safe.

mod support;

use std::collections::BTreeSet;

use raft_core::{
    Action, DropReason, Event, IgnoreReason, LogIndex, MembershipChange, Message, MessageBody,
    NodeId, ProposalId, RoleKind, Term,
};
use support::*;

fn change(c: &mut Cluster, leader: u64, id: u64, changes: &[MembershipChange]) {
    let event = Event::ChangeMembership {
        id: ProposalId(id),
        changes: changes.to_vec(),
    };
    c.step(leader, event);
    c.deliver_all();
}

fn ids(list: &[u64]) -> BTreeSet<NodeId> {
    list.iter().map(|&n| NodeId(n)).collect()
}

fn settle(c: &mut Cluster) {
    for _ in 0..6 {
        c.tick_all();
    }
}

#[test]
fn a_learner_receives_the_log_but_neither_votes_nor_counts() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.propose(1, 1, "before");
    c.add_node(4);
    change(&mut c, 1, 2, &[MembershipChange::AddLearner(NodeId(4))]);
    settle(&mut c);
    assert_eq!(c.applied_commands(4), ["before"]);
    assert_eq!(c.node(4).membership().learners, ids(&[4]));
    c.crash(2);
    c.crash(3);
    c.propose(1, 3, "stuck");
    settle(&mut c);
    assert!(
        !c.applied_commands(1).contains(&"stuck".to_string()),
        "a learner is not part of a majority"
    );
    assert_eq!(
        c.node(4).role(),
        RoleKind::Follower,
        "a learner never campaigns"
    );
}

#[test]
fn a_learner_that_lost_its_leader_answers_vote_requests() {
    // Seed 1969: a learner whose promotion had not reached it yet kept restarting
    // its election timer with the old leader still recorded, and so ignored every
    // vote request under that leader's lease, long after the leader was gone; the
    // joint configuration it had been promoted into needed its vote.
    let mut c = Cluster::new(3);
    c.elect(1);
    c.add_node(4);
    change(&mut c, 1, 2, &[MembershipChange::AddLearner(NodeId(4))]);
    settle(&mut c);
    assert_eq!(c.node(4).leader(), Some(NodeId(1)));
    c.crash(1);
    let timeout_max = c.node(4).config().election_timeout_ticks_max;
    for _ in 0..timeout_max {
        c.tick(4);
    }
    assert_eq!(c.node(4).leader(), None, "a silent leader is forgotten");
    // From now on, whatever the point of its timer's cycle, it answers a poll (which
    // changes nothing, so it can be asked at every tick) and then a real request.
    for tick in 0..2 * timeout_max {
        assert_votes_for_2(&mut c, true, tick);
        c.tick(4);
    }
    assert_votes_for_2(&mut c, false, 2 * timeout_max);
    assert_eq!(
        c.node(4).role(),
        RoleKind::Follower,
        "and still never campaigns"
    );
}

#[test]
fn a_learner_with_the_newest_log_stands_when_a_candidate_needs_it_then_hands_over() {
    // Seed 5641: a voter whose configuration counts a learner as a voter (a
    // promotion the learner has not seen) needs its vote, but the learner's log is
    // newer, so it refuses; every voter would elect the learner, which used never to
    // campaign. Now it stands in its own configuration, leads, commits, and hands over.
    let configs = (1..=3)
        .map(|id| raft_core::Config {
            check_quorum: false,
            ..config(id, &[1, 2, 3])
        })
        .collect();
    let mut c = Cluster::with_configs(configs);
    c.elect(1);
    c.add_node(4);
    change(&mut c, 1, 2, &[MembershipChange::AddLearner(NodeId(4))]);
    settle(&mut c);
    // Node 1's last entry reaches only the learner; then node 1 fails.
    c.partition(&[1, 4]);
    c.propose(1, 3, "only on 4");
    c.crash(1);
    c.heal();
    assert!(c.node(4).last_index() > c.node(2).last_index());
    let timeout_max = c.node(4).config().election_timeout_ticks_max;
    for _ in 0..timeout_max {
        c.tick(4);
    }
    assert_eq!(
        c.node(4).leader(),
        None,
        "node 1 is gone, and so is its lease"
    );
    c.in_flight.clear();
    c.step(4, vote_request_from_2(&c, true));
    assert!(
        !c.in_flight
            .iter()
            .any(|m| matches!(m.body, MessageBody::VoteResponse { granted: true, .. })),
        "the learner's log is newer: refused"
    );
    c.in_flight.clear();
    for _ in 0..timeout_max {
        if c.node(4).role() != RoleKind::Follower {
            break;
        }
        c.tick(4);
    }
    assert_eq!(c.node(4).role(), RoleKind::PreCandidate, "it stands");
    c.deliver_all();
    assert!(
        c.leaders.values().any(|&leader| leader == NodeId(4)),
        "the voters elect it: {:?}",
        c.leaders
    );
    let leader = c.leader().expect("a leader after the hand-over");
    assert!([2, 3].contains(&leader), "a voter leads now, not {leader}");
    assert_eq!(c.node(4).role(), RoleKind::Follower);
    settle(&mut c);
    assert_eq!(c.leader(), Some(leader), "and keeps leading");
    for id in [2, 3, 4] {
        assert!(
            c.applied_commands(id).contains(&"only on 4".to_string()),
            "node {id}: the learner's entry committed under its lead"
        );
    }
}

/// Node 4 grants node 2's vote request (a poll if `pre_vote`) at `tick`.
fn assert_votes_for_2(c: &mut Cluster, pre_vote: bool, tick: u32) {
    c.in_flight.clear();
    c.clear_outputs(4);
    c.step(4, vote_request_from_2(c, pre_vote));
    assert!(
        !c.outputs(4)
            .contains(&Action::Ignored(IgnoreReason::LeaderLease)),
        "tick {tick}, pre_vote {pre_vote}: ignored under a lapsed leader's lease"
    );
    let granted = c.in_flight.iter().any(|m| {
        m.from == NodeId(4)
            && m.to == NodeId(2)
            && matches!(m.body, MessageBody::VoteResponse { granted: true, .. })
    });
    assert!(
        granted,
        "tick {tick}, pre_vote {pre_vote}: {:?}",
        c.in_flight
    );
}

/// A vote request from node 2 for the term after node 4's, with node 2's log.
fn vote_request_from_2(c: &Cluster, pre_vote: bool) -> Event {
    let last_log_index = c.node(2).last_index();
    Event::Message(Message {
        from: NodeId(2),
        to: NodeId(4),
        term: Term(c.node(4).term().0 + 1),
        body: MessageBody::VoteRequest {
            pre_vote,
            last_log_index,
            last_log_term: c.node(2).term_at(last_log_index).unwrap(),
            leadership_transfer: false,
        },
    })
}

#[test]
fn a_learner_is_promoted_through_a_joint_configuration_the_leader_leaves_itself() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.add_node(4);
    change(&mut c, 1, 1, &[MembershipChange::AddLearner(NodeId(4))]);
    settle(&mut c);
    change(&mut c, 1, 2, &[MembershipChange::AddVoter(NodeId(4))]);
    settle(&mut c);
    for n in 1..=4 {
        let membership = c.node(n).membership();
        assert_eq!(membership.voters, ids(&[1, 2, 3, 4]), "node {n}");
        assert!(
            !membership.is_joint(),
            "node {n} left the joint configuration"
        );
        assert!(membership.learners.is_empty());
    }
    let committed = Action::ProposalCommitted {
        id: ProposalId(2),
        index: LogIndex(3),
    };
    assert!(c.outputs(1).contains(&committed));
}

#[test]
fn a_joint_configuration_needs_a_majority_of_both_halves() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.add_node(4);
    c.add_node(5);
    c.crash(4);
    c.crash(5);
    let replace = [
        MembershipChange::AddVoter(NodeId(4)),
        MembershipChange::AddVoter(NodeId(5)),
        MembershipChange::Remove(NodeId(2)),
        MembershipChange::Remove(NodeId(3)),
    ];
    change(&mut c, 1, 1, &replace);
    settle(&mut c);
    let joint = c.node(1).membership().clone();
    assert_eq!(
        (joint.voters, joint.voters_outgoing),
        (ids(&[1, 4, 5]), ids(&[1, 2, 3]))
    );
    assert_eq!(
        c.node(1).commit_index(),
        LogIndex(1),
        "1, 2, 3 agree, but only 1 of 1, 4, 5"
    );
    c.restart(4);
    c.restart(5);
    settle(&mut c);
    let final_membership = c.node(1).membership().clone();
    assert_eq!(final_membership.voters, ids(&[1, 4, 5]));
    assert!(!final_membership.is_joint());
    assert_eq!(c.node(4).membership(), &final_membership);
}

#[test]
fn a_removed_leader_hands_over_and_steps_down() {
    let mut c = Cluster::new(3);
    c.elect(1);
    change(&mut c, 1, 1, &[MembershipChange::Remove(NodeId(1))]);
    c.tick_all();
    c.tick_all();
    assert_eq!(c.node(1).role(), RoleKind::Follower);
    let leader = c
        .leader()
        .expect("the hand-over elects a new leader without waiting for a timeout");
    assert!(leader == 2 || leader == 3);
    assert_eq!(c.node(leader).membership().voters, ids(&[2, 3]));
    for _ in 0..50 {
        c.tick_all();
    }
    assert_eq!(
        c.node(1).role(),
        RoleKind::Follower,
        "a removed node never campaigns"
    );
    assert_eq!(c.leader(), Some(leader));
}

/// Found by raft-sim (seed 4300, see raft-sim/tests/core_regressions.rs). The leader
/// removes itself; the joint configuration commits, and the leader appends the final
/// configuration but crashes before sending it. It restarts with the longest log,
/// which makes every other candidate fail to get its vote, while the configuration
/// in force in its own log says it is no voter. With a voter kept down, no one else
/// can win: the removed node must campaign until its removal commits (thesis §4.2.2).
#[test]
fn a_node_removed_by_an_uncommitted_configuration_still_campaigns() {
    let mut c = Cluster::new(4);
    c.elect(1);
    let event = Event::ChangeMembership {
        id: ProposalId(1),
        changes: vec![MembershipChange::Remove(NodeId(1))],
    };
    c.step(1, event);
    // Deliver until the joint configuration commits and the leader appends the final
    // one; that one goes nowhere.
    for _ in 0..1_000 {
        if !c.node(1).membership().is_joint() {
            break;
        }
        assert!(c.deliver_one(), "the joint configuration commits");
    }
    assert_eq!(c.node(1).membership().voters, ids(&[2, 3, 4]));
    c.crash(1);
    c.restart(1);
    c.crash(4);
    assert!(
        c.node(2).membership().is_joint(),
        "2 holds the joint configuration only"
    );
    for _ in 0..100 {
        c.tick_all();
    }
    let leader = c.leader().expect("a leader although node 4 is down");
    assert!(
        leader == 2 || leader == 3,
        "node 1 committed its removal and handed over"
    );
    let membership = c.node(leader).membership();
    assert_eq!(membership.voters, ids(&[2, 3, 4]));
    assert!(!membership.is_joint());
    assert_eq!(c.node(1).role(), RoleKind::Follower);
}

/// Found by raft-sim (seed 6958 with membership changes on). A node that joins a
/// running cluster receives the log from index 1, but the configuration in force
/// before the entry that added it is the initial one, which lives in the members'
/// `Config` and not in the log. A snapshot it took there recorded no voters, and it
/// could then never restart from its own disk.
#[test]
fn a_joining_node_does_not_snapshot_before_it_knows_a_configuration() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.propose(1, 1, "a");
    c.propose(1, 2, "b");
    c.add_node(4);
    change(&mut c, 1, 3, &[MembershipChange::AddLearner(NodeId(4))]);
    settle(&mut c);
    assert_eq!(c.applied_commands(4), ["a", "b"]);
    let before_added = Event::Compact {
        up_to: LogIndex(3),
        data: "a,b".into(),
    };
    c.clear_outputs(4);
    c.step(4, before_added);
    assert!(c
        .outputs(4)
        .contains(&Action::Ignored(IgnoreReason::InvalidCompact)));
    c.compact(4);
    assert!(c.node(4).snapshot_meta().membership.is_learner(NodeId(4)));
    c.crash(4);
    c.restart(4);
    assert!(c.node(4).membership().is_learner(NodeId(4)));
}

#[test]
fn a_removed_follower_does_not_disrupt_the_cluster() {
    let mut c = Cluster::new(3);
    c.elect(1);
    change(&mut c, 1, 1, &[MembershipChange::Remove(NodeId(3))]);
    settle(&mut c);
    let term = c.node(1).term();
    for _ in 0..60 {
        c.tick_all();
    }
    assert_eq!(c.node(1).term(), term);
    assert_eq!(c.leader(), Some(1));
    assert!(
        !c.node(3).membership().is_voter(NodeId(3)),
        "node 3 learned its removal"
    );
}

/// Since a node removed by an uncommitted configuration must still campaign, a
/// removed node has to learn that its removal committed: the leader sends it one
/// last heartbeat with the commit index when it stops tracking it. Without PreVote
/// and CheckQuorum nothing else would keep it from raising terms forever.
#[test]
fn a_removed_follower_learns_its_removal_committed_and_stays_quiet() {
    let voters = [1, 2, 3, 4];
    let configs = voters
        .iter()
        .map(|&n| {
            let mut config = config(n, &voters);
            config.pre_vote = false;
            config.check_quorum = false;
            config
        })
        .collect();
    let mut c = Cluster::with_configs(configs);
    c.elect(1);
    change(&mut c, 1, 1, &[MembershipChange::Remove(NodeId(4))]);
    settle(&mut c);
    assert_eq!(c.node(1).membership().voters, ids(&[1, 2, 3]));
    let removal_index = c.node(1).last_index();
    assert_eq!(c.node(4).commit_index(), removal_index);
    let term = c.node(1).term();
    for _ in 0..60 {
        c.tick_all();
    }
    assert_eq!(c.node(4).term(), term, "node 4 never campaigned");
    assert_eq!(c.leader(), Some(1));
}

#[test]
fn one_change_at_a_time() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.add_node(4);
    c.add_node(5);
    c.step(
        1,
        Event::ChangeMembership {
            id: ProposalId(1),
            changes: vec![MembershipChange::AddLearner(NodeId(4))],
        },
    );
    c.step(
        1,
        Event::ChangeMembership {
            id: ProposalId(2),
            changes: vec![MembershipChange::AddLearner(NodeId(5))],
        },
    );
    let pending = Action::ProposalDropped {
        id: ProposalId(2),
        reason: DropReason::MembershipChangePending,
    };
    assert!(c.outputs(1).contains(&pending));
}

#[test]
fn no_change_before_the_leader_commits_an_entry_of_its_term() {
    // The fix for the single-server change bug (Ongaro, raft-dev, 2015).
    let mut c = Cluster::new(3);
    c.elect_without_replication(1);
    c.step(
        1,
        Event::ChangeMembership {
            id: ProposalId(1),
            changes: vec![MembershipChange::Remove(NodeId(3))],
        },
    );
    let pending = Action::ProposalDropped {
        id: ProposalId(1),
        reason: DropReason::MembershipChangePending,
    };
    assert!(c.outputs(1).contains(&pending));
}

#[test]
fn a_change_that_leaves_no_voter_is_refused() {
    let mut c = Cluster::new(1);
    c.elect(1);
    c.step(
        1,
        Event::ChangeMembership {
            id: ProposalId(1),
            changes: vec![MembershipChange::Remove(NodeId(1))],
        },
    );
    let invalid = Action::ProposalDropped {
        id: ProposalId(1),
        reason: DropReason::InvalidMembership,
    };
    assert!(c.outputs(1).contains(&invalid));
}

#[test]
fn a_truncated_configuration_entry_is_undone() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.isolate(1);
    c.add_node(4);
    c.step(
        1,
        Event::ChangeMembership {
            id: ProposalId(1),
            changes: vec![MembershipChange::AddLearner(NodeId(4))],
        },
    );
    assert!(
        c.node(1).membership().is_learner(NodeId(4)),
        "in force as soon as it is in the log"
    );
    let leader = c.elect_among(&[2, 3]);
    c.heal();
    for _ in 0..4 {
        c.tick(leader);
        c.deliver_all();
    }
    assert_eq!(c.node(1).role(), RoleKind::Follower);
    assert!(
        !c.node(1).membership().is_learner(NodeId(4)),
        "the overwritten entry no longer counts"
    );
    let dropped = Action::ProposalDropped {
        id: ProposalId(1),
        reason: DropReason::Overwritten,
    };
    assert!(c.outputs(1).contains(&dropped));
}

#[test]
fn a_node_is_replaced_while_clients_keep_writing() {
    let mut c = Cluster::new(3);
    c.elect(1);
    let mut proposal = 0;
    let mut write = |c: &mut Cluster| {
        proposal += 1;
        let leader = c.leader().expect("a leader");
        c.propose(leader, proposal, &format!("w{proposal}"));
        c.tick_all();
    };
    write(&mut c);
    c.add_node(4);
    change(&mut c, 1, 100, &[MembershipChange::AddLearner(NodeId(4))]);
    write(&mut c);
    settle(&mut c);
    change(
        &mut c,
        1,
        101,
        &[
            MembershipChange::AddVoter(NodeId(4)),
            MembershipChange::Remove(NodeId(3)),
        ],
    );
    for _ in 0..5 {
        write(&mut c);
    }
    settle(&mut c);
    let leader = c.leader().unwrap();
    assert_eq!(c.node(leader).membership().voters, ids(&[1, 2, 4]));
    assert!(!c.node(leader).membership().is_joint());
    c.crash(3);
    write(&mut c);
    settle(&mut c);
    assert_eq!(c.applied_commands(4), c.applied_commands(1));
    assert_eq!(
        c.applied_commands(4).len(),
        8,
        "every write survived the replacement"
    );
}
