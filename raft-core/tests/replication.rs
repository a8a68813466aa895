//! Log replication (Raft §5.3, Figure 7), flow control, the persistence contract
//! (thesis §3.8, §10.2.1) and what becomes of proposals.

mod support;

use raft_core::{
    Action, AppendOutcome, DropReason, EntryPayload, Event, LogIndex, Message, MessageBody, NodeId,
    ProposalId, RoleKind, SharedBytes, Term,
};
use support::*;

fn appends_to(c: &Cluster, to: u64) -> Vec<(u64, usize)> {
    c.in_flight
        .iter()
        .filter(|m| m.to == NodeId(to))
        .filter_map(|m| match &m.body {
            MessageBody::AppendEntries {
                prev_log_index,
                entries,
                ..
            } => Some((prev_log_index.0, entries.len())),
            _ => None,
        })
        .collect()
}

// ---- §5.3 log replication ----

#[test]
fn s5_3_new_leader_appends_a_noop_of_its_term() {
    let mut c = Cluster::new(3);
    c.elect(1);
    let noop = c.node(1).entry(LogIndex(1)).unwrap();
    assert_eq!((noop.term, &noop.payload), (Term(1), &EntryPayload::Noop));
    assert_eq!(c.node(1).commit_index(), LogIndex(1));
}

#[test]
fn s5_3_entries_commit_on_a_majority_and_apply_everywhere() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.crash(3);
    c.propose(1, 1, "a");
    c.propose(1, 2, "b");
    assert_eq!(
        c.node(1).commit_index(),
        LogIndex(3),
        "nodes 1 and 2 are a majority"
    );
    assert_eq!(c.applied_commands(1), ["a", "b"]);
    c.tick_all();
    c.tick_all();
    assert_eq!(
        c.applied_commands(2),
        ["a", "b"],
        "the heartbeat carries the commit index"
    );
    c.restart(3);
    for _ in 0..3 {
        c.tick_all();
    }
    assert_eq!(
        c.applied_commands(3),
        ["a", "b"],
        "a restarted follower catches up"
    );
}

#[test]
fn s5_3_follower_rejects_an_append_that_does_not_match_and_hints_the_conflict() {
    // Follower: terms 1 1 2 2 2; the leader (term 3) probes at index 5 with term 3.
    let mut c = Cluster::with_logs(&[(&[1], 3), (&[1, 1, 2, 2, 2], 3), (&[1], 3)]);
    let append = Message {
        from: NodeId(1),
        to: NodeId(2),
        term: Term(3),
        body: MessageBody::AppendEntries {
            prev_log_index: LogIndex(5),
            prev_log_term: Term(1),
            entries: vec![],
            leader_commit: LogIndex(0),
        },
    };
    c.step(2, Event::Message(append));
    let answer = c.in_flight.pop_back().unwrap();
    let hint = AppendOutcome::Rejected {
        rejected_index: LogIndex(5),
        hint_index: LogIndex(2),
        hint_term: Term(1),
    };
    assert_eq!(
        answer.body,
        MessageBody::AppendResponse(hint),
        "skip the whole of term 2"
    );
}

/// The leader's log and the six follower logs of Figure 7 of the Raft paper.
const FIGURE7_LEADER: &[u64] = &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
const FIGURE7_FOLLOWERS: [&[u64]; 6] = [
    &[1, 1, 1, 4, 4, 5, 5, 6, 6],
    &[1, 1, 1, 4],
    &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    &[1, 1, 1, 4, 4, 4, 4],
    &[1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
];

#[test]
fn s5_3_figure7_every_follower_converges_to_the_leader_log() {
    for (i, follower) in FIGURE7_FOLLOWERS.iter().enumerate() {
        // Node 3 shares the leader's log and gives it the vote it needs in term 8.
        let mut c = Cluster::with_logs(&[(FIGURE7_LEADER, 7), (follower, 7), (FIGURE7_LEADER, 7)]);
        c.elect(1);
        assert_eq!(c.node(1).term(), Term(8));
        c.tick_all();
        let mut expected = FIGURE7_LEADER.to_vec();
        expected.push(8);
        assert_eq!(
            c.terms(2),
            expected,
            "follower ({})",
            (b'a' + i as u8) as char
        );
        check_log_matching(c.node(1), c.node(2));
    }
}

#[test]
fn s5_3_fast_backtracking_skips_terms_not_entries() {
    // Follower (f) of Figure 7 diverges from index 4 over 8 entries of terms 2 and 3.
    let mut c = Cluster::with_logs(&[
        (FIGURE7_LEADER, 7),
        (FIGURE7_FOLLOWERS[5], 7),
        (FIGURE7_LEADER, 7),
    ]);
    c.record_sent = true;
    c.elect(1);
    c.tick_all();
    let rejected = c
        .sent
        .iter()
        .filter(|m| {
            matches!(
                m.body,
                MessageBody::AppendResponse(AppendOutcome::Rejected { .. })
            )
        })
        .count();
    assert!(
        (1..=3).contains(&rejected),
        "one rejection per divergent term, not per entry: {rejected}"
    );
    assert_eq!(c.terms(2)[..10], FIGURE7_LEADER[..]);
}

#[test]
fn s5_3_appends_are_idempotent_under_duplication() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.step(1, Event::propose(ProposalId(1), SharedBytes::from("x")));
    let duplicates: Vec<Message> = c.in_flight.iter().cloned().collect();
    c.deliver_all();
    for message in duplicates {
        c.deliver(message);
    }
    c.deliver_all();
    c.tick_all();
    c.tick_all();
    for n in 1..=3 {
        assert_eq!(c.applied_commands(n), ["x"], "node {n}");
    }
}

// ---- flow control ----

#[test]
fn inflight_window_bounds_messages_to_a_silent_follower() {
    let mut configs: Vec<_> = (1..=3).map(|i| config(i, &[1, 2, 3])).collect();
    configs[0].inflight_msgs_max = 4;
    let mut c = Cluster::with_configs(configs);
    c.elect(1);
    c.cut.insert((NodeId(2), NodeId(1)));
    for p in 0..20 {
        c.step(1, Event::propose(ProposalId(p), SharedBytes::from("x")));
    }
    let sent = c.take_messages(|m| {
        m.to == NodeId(2) && matches!(m.body, MessageBody::AppendEntries { .. })
    });
    assert_eq!(
        sent.len(),
        4,
        "no more than the window while nothing is acknowledged"
    );
}

#[test]
fn inflight_window_bounds_bytes() {
    let mut configs: Vec<_> = (1..=3).map(|i| config(i, &[1, 2, 3])).collect();
    configs[0].inflight_bytes_max = 1000;
    configs[0].msg_entries_max = 1;
    let mut c = Cluster::with_configs(configs);
    c.elect(1);
    c.cut.insert((NodeId(2), NodeId(1)));
    let big = SharedBytes::from(vec![0u8; 400]);
    for p in 0..20 {
        c.step(1, Event::propose(ProposalId(p), big.clone()));
    }
    let sent = c.take_messages(|m| {
        m.to == NodeId(2) && matches!(m.body, MessageBody::AppendEntries { .. })
    });
    assert_eq!(
        sent.len(),
        3,
        "400-byte entries stop once 1000 bytes are in flight"
    );
}

#[test]
fn batches_respect_entry_and_byte_bounds() {
    let mut configs: Vec<_> = (1..=3).map(|i| config(i, &[1, 2, 3])).collect();
    configs[0].msg_entries_max = 3;
    let mut c = Cluster::with_configs(configs);
    c.elect(1);
    c.isolate(2);
    for p in 0..10 {
        c.propose(1, p, "x");
    }
    c.heal();
    c.in_flight.clear();
    let mut batches = Vec::new();
    for _ in 0..10 {
        c.tick(1);
        while let Some(message) = c.in_flight.pop_front() {
            if let MessageBody::AppendEntries { entries, .. } = &message.body {
                if message.to == NodeId(2) {
                    batches.push(entries.len());
                }
            }
            c.deliver(message);
        }
    }
    assert_eq!(c.node(2).last_index(), c.node(1).last_index());
    assert!(batches.contains(&3), "full batches: {batches:?}");
    assert!(batches.iter().all(|&len| len <= 3), "{batches:?}");
}

#[test]
fn a_lost_append_is_resent_after_the_next_heartbeat() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.step(1, Event::propose(ProposalId(1), SharedBytes::from("lost")));
    c.take_messages(|m| m.to == NodeId(2));
    c.deliver_all();
    c.tick_all();
    c.tick_all();
    c.tick_all();
    assert_eq!(c.applied_commands(2), ["lost"]);
}

// ---- the persistence contract ----

#[test]
fn follower_acknowledges_only_what_is_durable() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.auto_persist = false;
    c.step(1, Event::propose(ProposalId(1), SharedBytes::from("x")));
    let to_2 = c.take_messages(|m| m.to == NodeId(2));
    for message in to_2 {
        c.deliver(message);
    }
    let acks = c.take_messages(|m| m.from == NodeId(2));
    assert!(
        acks.is_empty(),
        "no acknowledgement before the entry is durable"
    );
    c.persist(2);
    let acks = c.take_messages(|m| m.from == NodeId(2));
    let expected = MessageBody::AppendResponse(AppendOutcome::Accepted {
        match_index: LogIndex(2),
    });
    assert_eq!(
        acks.iter().map(|m| &m.body).collect::<Vec<_>>(),
        vec![&expected]
    );
}

#[test]
fn leader_replicates_before_its_own_fsync_and_counts_itself_after() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.auto_persist = false;
    c.step(1, Event::propose(ProposalId(1), SharedBytes::from("x")));
    assert_eq!(
        appends_to(&c, 2).len(),
        1,
        "sent before the leader's own write is durable"
    );
    c.take_messages(|m| m.to == NodeId(3));
    c.deliver_all();
    c.persist(2);
    c.deliver_all();
    assert_eq!(
        c.node(1).commit_index(),
        LogIndex(1),
        "one follower plus an unpersisted leader is no majority"
    );
    c.persist(1);
    assert_eq!(c.node(1).commit_index(), LogIndex(2));
}

#[test]
fn a_crash_before_the_report_loses_the_entry_but_nothing_acknowledged() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.auto_persist = false;
    c.step(1, Event::propose(ProposalId(1), SharedBytes::from("x")));
    c.crash(1);
    c.restart(1);
    assert_eq!(
        c.node(1).last_index(),
        LogIndex(1),
        "the unpersisted entry is gone"
    );
    assert_eq!(c.node(1).term(), Term(1), "the term and vote were durable");
}

// ---- proposals ----

fn proposal_outputs(c: &Cluster, n: u64) -> Vec<Action> {
    c.outputs(n)
        .iter()
        .filter(|a| {
            matches!(
                a,
                Action::ProposalAccepted { .. }
                    | Action::ProposalCommitted { .. }
                    | Action::ProposalDropped { .. }
            )
        })
        .cloned()
        .collect()
}

#[test]
fn proposal_is_accepted_then_committed() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.propose(1, 7, "x");
    let expected = vec![
        Action::ProposalAccepted {
            id: ProposalId(7),
            index: LogIndex(2),
            term: Term(1),
        },
        Action::ProposalCommitted {
            id: ProposalId(7),
            index: LogIndex(2),
        },
    ];
    assert_eq!(proposal_outputs(&c, 1), expected);
}

#[test]
fn proposal_on_a_follower_is_dropped_with_the_leader_hint() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.propose(2, 7, "x");
    let reason = DropReason::NotLeader {
        leader_hint: Some(NodeId(1)),
    };
    assert_eq!(
        proposal_outputs(&c, 2),
        vec![Action::ProposalDropped {
            id: ProposalId(7),
            reason
        }]
    );
}

#[test]
fn proposal_overwritten_by_a_new_leader_is_reported_dropped() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.isolate(1);
    c.propose(1, 7, "lost");
    let leader = c.elect_among(&[2, 3]);
    c.propose(leader, 8, "kept");
    c.heal();
    for _ in 0..3 {
        c.tick_all();
    }
    assert_eq!(c.node(1).role(), RoleKind::Follower);
    let dropped = Action::ProposalDropped {
        id: ProposalId(7),
        reason: DropReason::Overwritten,
    };
    assert!(
        proposal_outputs(&c, 1).contains(&dropped),
        "{:?}",
        proposal_outputs(&c, 1)
    );
    assert_eq!(c.applied_commands(1), ["kept"]);
}

/// Cuts every link but those between `a` and `b`.
fn connect_only(c: &mut Cluster, a: u64, b: u64) {
    c.heal();
    let ids: Vec<u64> = c.nodes.keys().map(|id| id.0).collect();
    for &x in &ids {
        for &y in &ids {
            if x != y && !(x == a && y == b) && !(x == b && y == a) {
                c.cut.insert((NodeId(x), NodeId(y)));
            }
        }
    }
}

/// raft-sim seed 965 (`--check-quorum false --partition-every-ms 100`): a proposer
/// whose own copy of an entry is truncated must not report it lost, because another
/// node may keep the entry and a later leader commit it. Its fate is known only once
/// its index commits.
#[test]
fn a_proposal_truncated_on_its_proposer_but_kept_elsewhere_commits() {
    // As in the seed: without CheckQuorum, no leader lease keeps 4 and 5 from voting.
    let voters = [1, 2, 3, 4, 5];
    let configs = voters.iter().map(|&i| {
        let mut config = config(i, &voters);
        config.check_quorum = false;
        config
    });
    let mut c = Cluster::with_configs(configs.collect());
    c.elect(1);
    // "x" reaches node 2 only: it sits at (2, t1) on nodes 1 and 2.
    connect_only(&mut c, 1, 2);
    c.propose(1, 7, "x");
    assert_eq!(c.terms(2), [1, 1]);
    // Node 3 wins term 2 with the votes of 4 and 5; its no-op goes nowhere yet.
    c.heal();
    c.partition(&[3, 4, 5]);
    c.elect_without_replication(3);
    c.in_flight.clear();
    // Node 3's no-op replaces "x" on node 1, the proposer.
    connect_only(&mut c, 1, 3);
    for _ in 0..4 {
        c.tick(3);
        c.deliver_all();
    }
    assert_eq!(c.terms(1), [1, 2], "the proposer's copy was truncated");
    assert!(
        !proposal_outputs(&c, 1)
            .iter()
            .any(|a| matches!(a, Action::ProposalDropped { .. })),
        "the fate is still open: {:?}",
        proposal_outputs(&c, 1)
    );
    // Node 2 still holds "x" and wins term 3 with 4 and 5: its no-op commits "x".
    c.heal();
    c.partition(&[2, 4, 5]);
    let leader = c.elect_among(&[2, 4, 5]);
    assert_eq!(leader, 2, "only node 2's log is up to date among 2, 4, 5");
    c.heal();
    for _ in 0..4 {
        c.tick(2);
        c.deliver_all();
    }
    assert_eq!(c.applied_commands(1), ["x"]);
    let outputs = proposal_outputs(&c, 1);
    assert!(
        outputs.contains(&Action::ProposalCommitted {
            id: ProposalId(7),
            index: LogIndex(2),
        }),
        "{outputs:?}"
    );
    assert!(
        !outputs
            .iter()
            .any(|a| matches!(a, Action::ProposalDropped { .. })),
        "{outputs:?}"
    );
}

#[test]
fn overloaded_leader_drops_proposals_beyond_the_uncommitted_bound() {
    let mut configs: Vec<_> = (1..=3).map(|i| config(i, &[1, 2, 3])).collect();
    configs[0].uncommitted_bytes_max = 300;
    let mut c = Cluster::with_configs(configs);
    c.elect(1);
    c.isolate(1);
    for p in 0..5 {
        c.step(
            1,
            Event::propose(ProposalId(p), SharedBytes::from(vec![0u8; 100])),
        );
    }
    let dropped = proposal_outputs(&c, 1)
        .into_iter()
        .filter(|a| {
            matches!(
                a,
                Action::ProposalDropped {
                    reason: DropReason::Overloaded,
                    ..
                }
            )
        })
        .count();
    assert_eq!(dropped, 3, "two 112-byte entries fit in 300 bytes");
}

/// raft-sim seed 2277 (`--check-quorum false --partition-every-ms 100`): an
/// acknowledgement held for its write must not leave once a newer term's leader has
/// truncated what it acknowledges, even if one fsync covers both writes.
#[test]
fn a_held_acknowledgement_of_an_older_term_is_not_released_after_a_truncation() {
    let mut c = Cluster::new(3);
    c.auto_persist = false;
    let entry = |index: u64, term: u64, payload: EntryPayload| raft_core::Entry {
        term: Term(term),
        index: LogIndex(index),
        payload,
    };
    let append = |from: u64, term: u64, entries: Vec<raft_core::Entry>| {
        Event::Message(Message {
            from: NodeId(from),
            to: NodeId(1),
            term: Term(term),
            body: MessageBody::AppendEntries {
                prev_log_index: LogIndex(0),
                prev_log_term: Term(0),
                entries,
                leader_commit: LogIndex(0),
            },
        })
    };
    // Node 2 leads term 1: node 1 appends i1 and i2; its acknowledgement waits.
    let command = EntryPayload::Command(SharedBytes::from("x"));
    c.step(
        1,
        append(
            2,
            1,
            vec![entry(1, 1, EntryPayload::Noop), entry(2, 1, command)],
        ),
    );
    // Before the disk syncs, node 3's term-2 no-op replaces i1 and truncates i2.
    c.step(1, append(3, 2, vec![entry(1, 2, EntryPayload::Noop)]));
    c.persist(1);
    let acknowledged: Vec<(Term, LogIndex)> = c
        .in_flight
        .iter()
        .filter_map(|m| match m.body {
            MessageBody::AppendResponse(AppendOutcome::Accepted { match_index }) => {
                Some((m.term, match_index))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        acknowledged,
        [(Term(2), LogIndex(1))],
        "only the newer leader hears that i1 is held; i2 is not"
    );
}
