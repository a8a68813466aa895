//! The commit rule (Raft §5.4.2): a leader commits entries of earlier terms only by
//! committing an entry of its own term, never by counting replicas (Figure 8).

mod support;

use raft_core::{AppendOutcome, Event, LogIndex, Message, MessageBody, NodeId, RoleKind, Term};
use support::*;

fn ack(from: u64, to: u64, term: Term, match_index: u64) -> Event {
    Event::Message(Message {
        from: NodeId(from),
        to: NodeId(to),
        term,
        body: MessageBody::AppendResponse(AppendOutcome::Accepted {
            match_index: LogIndex(match_index),
        }),
    })
}

/// The state of Figure 8 (c): S1 leads term 4 with index 2 of term 2 in its log;
/// S5 holds index 2 of term 3.
fn figure8() -> Cluster {
    let mut c = Cluster::with_logs(&[
        (&[1, 2], 3),
        (&[1, 2], 3),
        (&[1], 3),
        (&[1], 3),
        (&[1, 3], 3),
    ]);
    c.elect_without_replication(1);
    assert_eq!(c.node(1).term(), Term(4));
    c.in_flight.clear();
    c
}

#[test]
fn s5_4_2_an_old_term_entry_on_a_majority_is_not_committed_by_counting() {
    let mut c = figure8();
    let term = c.node(1).term();
    c.step(1, ack(2, 1, term, 2));
    c.step(1, ack(3, 1, term, 2));
    assert_eq!(
        c.node(1).commit_index(),
        LogIndex(0),
        "index 2 is on S1, S2, S3 but of term 2"
    );
    c.step(1, ack(2, 1, term, 3));
    c.step(1, ack(3, 1, term, 3));
    assert_eq!(
        c.node(1).commit_index(),
        LogIndex(3),
        "the term-4 no-op commits, and index 2 with it"
    );
}

#[test]
fn s5_4_2_figure8_the_uncommitted_entry_may_be_overwritten_and_nothing_committed_is_lost() {
    let mut c = figure8();
    // S1 replicates index 2 to S3 (Figure 8 (c)) and crashes before its no-op commits.
    for _ in 0..4 {
        c.tick(1);
        for _ in 0..100 {
            let Some(message) = c.in_flight.pop_front() else {
                break;
            };
            let s1_s3 = [NodeId(1), NodeId(3)];
            if s1_s3.contains(&message.from) && s1_s3.contains(&message.to) {
                c.deliver(message);
            }
        }
    }
    assert_eq!(c.node(3).term_at(LogIndex(2)), Some(Term(2)));
    assert_eq!(c.node(1).commit_index(), LogIndex(0));
    c.crash(1);
    // S5 wins term 5 with S2's and S4's votes (Figure 8 (d)) and overwrites index 2.
    let leader = c.elect_among(&[5]);
    assert_eq!(leader, 5);
    for _ in 0..4 {
        c.tick(5);
        c.deliver_all();
    }
    for n in 2..=5 {
        assert_eq!(c.node(n).term_at(LogIndex(2)), Some(Term(3)), "node {n}");
        assert_eq!(c.node(n).role() == RoleKind::Leader, n == 5);
    }
    // The harness checked state machine safety on every Apply: index 2 of term 2 was
    // never applied anywhere.
    assert_eq!(c.committed[&LogIndex(2)].0.term, Term(3));
}
