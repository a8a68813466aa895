//! No input can panic the core: every bad configuration gets a typed error, and every
//! bad message or event a defined, visible outcome.

mod support;

use raft_core::{
    Action, AppendOutcome, Config, Entry, EntryPayload, Event, HardState, IgnoreReason, LogIndex,
    Message, MessageBody, NodeId, PersistSeq, RaftNode, Restored, SharedBytes, Term,
};
use support::*;

fn message(from: u64, to: u64, term: u64, body: MessageBody) -> Event {
    Event::Message(Message {
        from: NodeId(from),
        to: NodeId(to),
        term: Term(term),
        body,
    })
}

fn ignored(actions: &[Action]) -> Vec<IgnoreReason> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Ignored(reason) => Some(*reason),
            _ => None,
        })
        .collect()
}

fn leader_of_three() -> RaftNode {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.nodes.remove(&NodeId(1)).unwrap().node
}

#[test]
fn invalid_configs_get_typed_errors_naming_the_field() {
    type Mutation = Box<dyn Fn(&mut Config)>;
    let cases: Vec<(Mutation, &str)> = vec![
        (Box::new(|c| c.id = NodeId(0)), "id"),
        (
            Box::new(|c| c.election_timeout_ticks_max = c.election_timeout_ticks_min),
            "election_timeout_ticks_max",
        ),
        (
            Box::new(|c| c.heartbeat_interval_ticks = 0),
            "heartbeat_interval_ticks",
        ),
        (
            Box::new(|c| c.heartbeat_interval_ticks = 50),
            "heartbeat_interval_ticks",
        ),
        (Box::new(|c| c.inflight_msgs_max = 0), "inflight_msgs_max"),
        (Box::new(|c| c.msg_bytes_max = 0), "msg_bytes_max"),
        (
            Box::new(|c| c.initial_learners.insert(NodeId(1)).then_some(()).unwrap()),
            "initial_learners",
        ),
    ];
    for (mutate, field) in cases {
        let mut config = config(1, &[1, 2, 3]);
        mutate(&mut config);
        let error = RaftNode::new(config, Restored::default()).unwrap_err();
        assert!(
            error.to_string().contains(field),
            "{error} should name {field}"
        );
    }
}

#[test]
fn inconsistent_restored_state_is_refused() {
    let entries = log_of(&[1, 2]);
    let gap = Restored {
        entries: vec![entries[1].clone()],
        ..Restored::default()
    };
    let future = Restored {
        entries: entries.clone(),
        hard_state: HardState {
            term: Term(1),
            voted_for: None,
        },
        ..Restored::default()
    };
    let applied = Restored {
        entries,
        hard_state: HardState {
            term: Term(2),
            voted_for: None,
        },
        applied: LogIndex(5),
        ..Restored::default()
    };
    for restored in [gap, future, applied] {
        assert!(RaftNode::new(config(1, &[1, 2, 3]), restored).is_err());
    }
}

#[test]
fn misaddressed_and_anonymous_messages_are_ignored() {
    let mut node = leader_of_three();
    let body = || MessageBody::HeartbeatResponse { read_round: 0 };
    let term = node.term().0;
    assert_eq!(
        ignored(&node.step(message(2, 7, term, body()))),
        [IgnoreReason::WrongRecipient]
    );
    assert_eq!(
        ignored(&node.step(message(1, 1, term, body()))),
        [IgnoreReason::FromSelf]
    );
    assert!(matches!(
        ignored(&node.step(message(0, 1, term, body())))[..],
        [IgnoreReason::Malformed(_)]
    ));
    assert!(matches!(
        ignored(&node.step(message(2, 1, u64::MAX, body())))[..],
        [IgnoreReason::Malformed(_)]
    ));
}

#[test]
fn answers_from_unknown_senders_are_ignored() {
    let mut node = leader_of_three();
    let term = node.term().0;
    let ack = MessageBody::AppendResponse(AppendOutcome::Accepted {
        match_index: LogIndex(1),
    });
    assert_eq!(
        ignored(&node.step(message(9, 1, term, ack))),
        [IgnoreReason::UnknownSender]
    );
}

#[test]
fn acknowledgement_past_the_log_is_ignored() {
    let mut node = leader_of_three();
    let term = node.term().0;
    let ack = MessageBody::AppendResponse(AppendOutcome::Accepted {
        match_index: LogIndex(u64::MAX - 1),
    });
    assert!(matches!(
        ignored(&node.step(message(2, 1, term, ack)))[..],
        [IgnoreReason::Malformed(_)]
    ));
    assert_eq!(node.commit_index(), LogIndex(1));
}

fn append(prev: u64, prev_term: u64, entries: Vec<Entry>) -> MessageBody {
    MessageBody::AppendEntries {
        prev_log_index: LogIndex(prev),
        prev_log_term: Term(prev_term),
        entries,
        leader_commit: LogIndex(0),
    }
}

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        term: Term(term),
        index: LogIndex(index),
        payload: EntryPayload::Command(SharedBytes::from("x")),
    }
}

#[test]
fn malformed_appends_are_refused_with_a_reason() {
    let mut node = RaftNode::new(config(2, &[1, 2, 3]), Restored::default()).unwrap();
    let cases = [
        append(0, 0, vec![entry(2, 1)]),
        append(0, 0, vec![entry(1, 2), entry(2, 1)]),
        append(0, 0, vec![entry(1, 9)]),
        append(u64::MAX, 1, vec![entry(0, 1)]),
        append(0, 5, vec![]),
    ];
    for body in cases {
        let actions = node.step(message(1, 2, 3, body));
        assert!(
            matches!(ignored(&actions)[..], [IgnoreReason::Malformed(_)]),
            "{actions:?}"
        );
        assert_eq!(node.last_index(), LogIndex(0));
    }
}

#[test]
fn append_past_the_log_is_rejected_with_a_hint() {
    let mut node = RaftNode::new(config(2, &[1, 2, 3]), Restored::default()).unwrap();
    let actions = node.step(message(1, 2, 3, append(1_000_000, 2, vec![])));
    let persisted = actions
        .iter()
        .find_map(|a| match a {
            Action::PersistHardState { seq, .. } => Some(*seq),
            _ => None,
        })
        .unwrap();
    let actions = node.step(Event::Persisted { through: persisted });
    let rejected = MessageBody::AppendResponse(AppendOutcome::Rejected {
        rejected_index: LogIndex(1_000_000),
        hint_index: LogIndex(0),
        hint_term: Term(0),
    });
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Send(m) if m.body == rejected)),
        "{actions:?}"
    );
}

#[test]
fn an_empty_append_is_a_probe_and_heartbeat() {
    let mut c = Cluster::new(3);
    c.elect(1);
    let term = c.node(1).term().0;
    c.step(2, message(1, 2, term, append(1, term, vec![])));
    let answer = c.in_flight.pop_back().unwrap();
    assert_eq!(
        answer.body,
        MessageBody::AppendResponse(AppendOutcome::Accepted {
            match_index: LogIndex(1)
        })
    );
}

#[test]
fn bogus_persistence_reports_and_compactions_are_ignored() {
    let mut node = leader_of_three();
    assert_eq!(
        ignored(&node.step(Event::Persisted {
            through: PersistSeq(999)
        })),
        [IgnoreReason::InvalidPersisted]
    );
    let compact = |up_to| Event::Compact {
        up_to: LogIndex(up_to),
        data: SharedBytes::from("s"),
    };
    assert_eq!(
        ignored(&node.step(compact(50))),
        [IgnoreReason::InvalidCompact],
        "not applied yet"
    );
    assert_eq!(
        ignored(&node.step(compact(0))),
        [IgnoreReason::InvalidCompact]
    );
}

#[test]
fn late_answers_to_a_former_role_are_ignored() {
    let mut node = RaftNode::new(config(2, &[1, 2, 3]), Restored::default()).unwrap();
    let vote = MessageBody::VoteResponse {
        pre_vote: false,
        granted: true,
    };
    assert_eq!(
        ignored(&node.step(message(1, 2, 0, vote))),
        [IgnoreReason::Unexpected]
    );
    let ack = MessageBody::AppendResponse(AppendOutcome::Accepted {
        match_index: LogIndex(3),
    });
    assert_eq!(
        ignored(&node.step(message(1, 2, 0, ack))),
        [IgnoreReason::Unexpected]
    );
}
