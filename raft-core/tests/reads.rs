//! Linearizable reads with ReadIndex (thesis §6.4).

mod support;

use raft_core::{Action, LogIndex, MessageBody, NodeId, ReadFailure, ReadId, RoleKind};
use support::*;

fn read_outcomes(c: &Cluster, n: u64) -> Vec<Action> {
    c.outputs(n)
        .iter()
        .filter(|a| matches!(a, Action::ReadReady { .. } | Action::ReadFailed { .. }))
        .cloned()
        .collect()
}

#[test]
fn s6_4_leader_read_waits_for_a_heartbeat_round() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.propose(1, 1, "x");
    c.clear_outputs(1);
    c.read(1, 9);
    assert!(
        read_outcomes(&c, 1).is_empty(),
        "not before a majority confirms leadership"
    );
    assert!(c
        .in_flight
        .iter()
        .any(|m| matches!(m.body, MessageBody::Heartbeat { .. })));
    c.deliver_all();
    let ready = Action::ReadReady {
        id: ReadId(9),
        read_index: LogIndex(2),
    };
    assert_eq!(read_outcomes(&c, 1), vec![ready]);
}

#[test]
fn s6_4_a_new_leader_reads_only_after_its_noop_commits() {
    let mut c = Cluster::new(3);
    c.elect_without_replication(1);
    c.read(1, 9);
    // Heartbeats confirm leadership, but the no-op has not reached anyone yet.
    for _ in 0..100 {
        let Some(message) = c.in_flight.pop_front() else {
            break;
        };
        if matches!(
            message.body,
            MessageBody::Heartbeat { .. } | MessageBody::HeartbeatResponse { .. }
        ) {
            c.deliver(message);
        }
    }
    assert!(
        read_outcomes(&c, 1).is_empty(),
        "the term's first entry is not committed"
    );
    for _ in 0..3 {
        c.tick_all();
    }
    let ready = Action::ReadReady {
        id: ReadId(9),
        read_index: LogIndex(1),
    };
    assert_eq!(read_outcomes(&c, 1), vec![ready]);
}

#[test]
fn s6_4_follower_read_is_forwarded_and_ready_after_apply() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.propose(1, 1, "x");
    c.read(2, 9);
    c.deliver_all();
    let outputs = c.outputs(2);
    let ready_at = outputs
        .iter()
        .position(|a| {
            matches!(
                a,
                Action::ReadReady {
                    id: ReadId(9),
                    read_index: LogIndex(2)
                }
            )
        })
        .expect("the follower's read is ready");
    let applied_through_2 = outputs[..ready_at]
        .iter()
        .any(|a| matches!(a, Action::Apply(entries) if entries.last().is_some_and(|e| e.index >= LogIndex(2))));
    assert!(
        applied_through_2,
        "the read index is applied before the read is ready: {outputs:?}"
    );
}

#[test]
fn s6_4_a_partitioned_leader_never_serves_a_read() {
    let mut configs: Vec<_> = (1..=3).map(|i| config(i, &[1, 2, 3])).collect();
    configs[0].read_timeout_ticks = 5;
    let mut c = Cluster::with_configs(configs);
    c.elect(1);
    c.isolate(1);
    let leader = c.elect_among(&[2, 3]);
    c.propose(leader, 2, "newer");
    // Node 1 still believes it leads: its read must not be served from its stale state.
    assert_eq!(c.node(1).role(), RoleKind::Leader);
    c.read(1, 9);
    for _ in 0..5 {
        c.tick(1);
    }
    let failed = Action::ReadFailed {
        id: ReadId(9),
        reason: ReadFailure::Timeout,
    };
    assert_eq!(read_outcomes(&c, 1), vec![failed]);
}

#[test]
fn s6_4_read_without_a_known_leader_fails_at_once() {
    let mut c = Cluster::new(3);
    c.read(2, 9);
    let failed = Action::ReadFailed {
        id: ReadId(9),
        reason: ReadFailure::NoLeader,
    };
    assert_eq!(read_outcomes(&c, 2), vec![failed]);
}

#[test]
fn s6_4_a_single_voter_serves_reads_at_once() {
    let mut c = Cluster::new(1);
    c.elect(1);
    c.read(1, 9);
    let ready = Action::ReadReady {
        id: ReadId(9),
        read_index: LogIndex(1),
    };
    assert_eq!(read_outcomes(&c, 1), vec![ready]);
}

#[test]
fn s6_4_reads_arriving_together_share_heartbeat_rounds() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.in_flight.clear();
    for id in 0..50 {
        c.read(1, id);
    }
    let heartbeats = c
        .in_flight
        .iter()
        .filter(|m| matches!(m.body, MessageBody::Heartbeat { .. }))
        .count();
    assert_eq!(
        heartbeats, 2,
        "one round for all reads that arrive while it is in flight"
    );
    c.deliver_all();
    assert_eq!(read_outcomes(&c, 1).len(), 50);
    assert!(read_outcomes(&c, 1)
        .iter()
        .all(|a| matches!(a, Action::ReadReady { .. })));
}

#[test]
fn s6_4_a_deposed_leader_fails_its_pending_reads() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.isolate(1);
    c.read(1, 9);
    let leader = c.elect_among(&[2, 3]);
    c.heal();
    for _ in 0..3 {
        c.tick(leader);
        c.deliver_all();
    }
    assert_eq!(c.node(1).role(), RoleKind::Follower);
    let failed = Action::ReadFailed {
        id: ReadId(9),
        reason: ReadFailure::NotLeader,
    };
    assert_eq!(read_outcomes(&c, 1), vec![failed]);
}

#[test]
fn s6_4_forwarded_read_times_out_when_the_leader_is_unreachable() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.cut.insert((NodeId(2), NodeId(1)));
    c.read(2, 9);
    let timeout = c.node(2).config().read_timeout_ticks;
    for _ in 0..timeout {
        c.tick(2);
    }
    let failed = Action::ReadFailed {
        id: ReadId(9),
        reason: ReadFailure::Timeout,
    };
    assert_eq!(read_outcomes(&c, 2), vec![failed]);
}

// ---- lease reads (thesis §6.4.1) ----

/// Three nodes with read leases on.
fn lease_cluster() -> Cluster {
    let voters = [1, 2, 3];
    let configs = voters.map(|i| {
        let mut config = config(i, &voters);
        config.read_lease = true;
        config
    });
    Cluster::with_configs(configs.to_vec())
}

/// Node 1 leads, and a majority acknowledged its heartbeat round. (Voters that just
/// started ignore candidates for an election timeout, so the first election comes
/// when the first node times out; leadership then moves to node 1.)
fn leased_leader() -> Cluster {
    let mut c = lease_cluster();
    let first = c.elect_among(&[1, 2, 3]);
    if first != 1 {
        c.step(
            first,
            raft_core::Event::TransferLeadership { to: NodeId(1) },
        );
        c.deliver_all();
    }
    assert_eq!(c.node(1).role(), RoleKind::Leader);
    for _ in 0..2 {
        c.tick_all();
    }
    c.clear_outputs(1);
    c
}

fn heartbeats_in_flight(c: &Cluster) -> usize {
    c.in_flight
        .iter()
        .filter(|m| matches!(m.body, MessageBody::Heartbeat { .. }))
        .count()
}

#[test]
fn s6_4_1_a_leased_leader_reads_without_a_round() {
    let mut c = leased_leader();
    c.read(1, 9);
    let ready = Action::ReadReady {
        id: ReadId(9),
        read_index: c.node(1).commit_index(),
    };
    assert_eq!(
        read_outcomes(&c, 1),
        vec![ready],
        "answered in the same step"
    );
    assert_eq!(heartbeats_in_flight(&c), 0, "no round for the read");
}

#[test]
fn s6_4_1_the_lease_ends_when_the_majority_goes_quiet() {
    let mut c = leased_leader();
    c.isolate(1);
    for _ in 0..c.node(1).config().read_lease_ticks() {
        c.tick(1);
    }
    c.deliver_all();
    c.read(1, 9);
    assert!(
        read_outcomes(&c, 1).is_empty(),
        "past the lease the read waits for a round that cannot be confirmed"
    );
}

#[test]
fn s6_4_1_a_leadership_transfer_ends_the_lease() {
    let mut c = leased_leader();
    c.take_messages(|_| true);
    c.step(1, raft_core::Event::TransferLeadership { to: NodeId(2) });
    assert!(
        c.in_flight
            .iter()
            .any(|m| matches!(m.body, MessageBody::TimeoutNow)),
        "node 2 is caught up: TimeoutNow goes at once"
    );
    // The target may win at once, past every voter's lease: no lease read now.
    c.take_messages(|_| true);
    c.read(1, 9);
    assert!(read_outcomes(&c, 1).is_empty());
}

#[test]
fn s6_4_1_a_restarted_voter_waits_out_a_lease_before_it_votes() {
    let mut c = leased_leader();
    c.crash(2);
    c.restart(2);
    let term = c.node(2).term().0 + 1;
    let request = raft_core::Message {
        from: NodeId(3),
        to: NodeId(2),
        term: raft_core::Term(term),
        body: MessageBody::VoteRequest {
            pre_vote: false,
            last_log_index: LogIndex(5),
            last_log_term: raft_core::Term(term - 1),
            leadership_transfer: false,
        },
    };
    c.clear_outputs(2);
    c.step(2, raft_core::Event::Message(request));
    let ignored = Action::Ignored(raft_core::IgnoreReason::LeaderLease);
    assert!(c.outputs(2).contains(&ignored), "{:?}", c.outputs(2));
    assert_eq!(
        c.node(2).term().0,
        term - 1,
        "the candidate's term was not entered"
    );
}

#[test]
fn s6_4_1_a_configuration_change_renews_the_lease_under_the_new_majority() {
    let mut c = leased_leader();
    c.add_node(4);
    c.isolate(1);
    c.step(
        1,
        raft_core::Event::ChangeMembership {
            id: raft_core::ProposalId(1),
            changes: vec![raft_core::MembershipChange::AddLearner(NodeId(4))],
        },
    );
    c.read(1, 9);
    assert!(
        read_outcomes(&c, 1).is_empty(),
        "the lease from the old configuration's majority no longer holds"
    );
}

#[test]
fn s6_4_1_the_lease_allows_for_clock_drift() {
    let mut config = config(1, &[1, 2, 3]);
    config.read_lease = true;
    config.election_timeout_ticks_min = 10;
    config.lease_clock_drift_percent_max = 10;
    // (10 - 1) * 90 / 110 = 7.36: seven ticks.
    assert_eq!(config.read_lease_ticks(), 7);
    config.lease_clock_drift_percent_max = 0;
    assert_eq!(config.read_lease_ticks(), 9);
    config.check_quorum = false;
    assert_eq!(config.validate().unwrap_err().field, "read_lease");
    config.check_quorum = true;
    config.lease_clock_drift_percent_max = 50;
    assert_eq!(
        config.validate().unwrap_err().field,
        "lease_clock_drift_percent_max"
    );
}

#[test]
fn s6_4_1_a_late_acknowledgement_extends_the_lease_only_from_its_round() {
    let mut c = leased_leader();
    c.take_messages(|_| true);
    // A heartbeat round leaves at tick t; its acknowledgements come back late.
    let lease_ticks = c.node(1).config().read_lease_ticks();
    let interval = c.node(1).config().heartbeat_interval_ticks;
    let mut round_left = false;
    for _ in 0..interval {
        c.tick(1);
        round_left |= c
            .in_flight
            .iter()
            .any(|m| matches!(m.body, MessageBody::Heartbeat { .. }));
    }
    assert!(round_left);
    let heartbeats = c.take_messages(|m| matches!(m.body, MessageBody::Heartbeat { .. }));
    c.in_flight.clear();
    c.isolate(1);
    for message in heartbeats {
        c.heal();
        c.deliver(message);
        c.isolate(1);
    }
    let acks = c.take_messages(|m| m.to == NodeId(1));
    // Time passes before they arrive; then they confirm the round.
    for _ in 0..lease_ticks - 1 {
        c.tick(1);
    }
    c.in_flight.clear();
    c.heal();
    for ack in acks {
        c.deliver(ack);
    }
    c.isolate(1);
    c.in_flight.clear();
    // The lease runs from the round's send: two ticks later it has ended.
    c.tick(1);
    c.tick(1);
    c.in_flight.clear();
    c.clear_outputs(1);
    c.read(1, 9);
    assert!(
        read_outcomes(&c, 1).is_empty(),
        "a late acknowledgement vouches only for the time its round left"
    );
}
