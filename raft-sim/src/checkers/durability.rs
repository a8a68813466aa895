//! The persistence contract (thesis §3.8): a message that depends on durable state
//! goes out only after that state is durable. The simulator knows exactly what each
//! disk holds, so it checks every such message as it is sent:
//! - a granted vote: the durable hard state holds the message's term and the vote, or
//!   a later term (hard states are written in order, so the vote was durable before
//!   it, and a node never votes again in a term it has left);
//! - an append acknowledgement: the durable log holds the acknowledged entry, with the
//!   term the node's log has for it, and the term is durable;
//! - an append rejection: the term it carries is durable (a rejection after a term
//!   change);
//! - a completed snapshot install: the durable log (snapshot included) reaches it.

use raft_core::{AppendOutcome, Message, MessageBody};

use super::{LogView, Violation, ViolationKind};
use crate::disk::DurableState;

/// Checks one message `msg` about to be sent by `msg.from`, whose durable state is
/// `durable` and whose in-memory log is `view`.
pub fn check_send(
    msg: &Message,
    durable: &DurableState,
    view: &impl LogView,
) -> Result<(), Violation> {
    let fail = |detail: String| {
        Err(Violation::at_node(
            ViolationKind::Durability,
            msg.from,
            detail,
        ))
    };
    let durable_term = durable.hard_state.term;
    match &msg.body {
        MessageBody::VoteResponse {
            pre_vote: false,
            granted: true,
        } if durable_term < msg.term
            || (durable_term == msg.term && durable.hard_state.voted_for != Some(msg.to)) =>
        {
            return fail(format!(
                "granted its {} vote to {} while the disk holds term {durable_term}, vote {:?}",
                msg.term, msg.to, durable.hard_state.voted_for
            ));
        }
        MessageBody::AppendResponse(outcome) => {
            if durable_term < msg.term {
                return fail(format!(
                    "answered AppendEntries in {} while the disk holds term {durable_term}",
                    msg.term
                ));
            }
            if let AppendOutcome::Accepted { match_index } = outcome {
                // The durable log (snapshot included) must reach the acknowledged
                // entry, and agree with memory on its term where memory still has it
                // (a compacted entry is committed, so its term cannot differ).
                let in_memory = view.term_at(*match_index);
                let on_disk = durable.term_at(*match_index);
                let reaches = durable.last_index() >= *match_index;
                let disagrees = in_memory.is_some() && on_disk.is_some() && in_memory != on_disk;
                if !reaches || disagrees {
                    return fail(format!(
                        "acknowledged {match_index} (term {in_memory:?} in memory) while the disk holds {on_disk:?} there and ends at {}",
                        durable.last_index()
                    ));
                }
            }
        }
        MessageBody::InstallSnapshotResponse {
            last_index,
            done: true,
            ..
        } if durable.last_index() < *last_index => {
            return fail(format!(
                "reported snapshot {last_index} installed while the disk holds a log through {}",
                durable.last_index()
            ));
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::fake::FakeLog;
    use super::*;
    use raft_core::{HardState, LogIndex, NodeId, Term};

    fn msg(term: u64, body: MessageBody) -> Message {
        Message {
            from: NodeId(1),
            to: NodeId(2),
            term: Term(term),
            body,
        }
    }

    fn grant() -> MessageBody {
        MessageBody::VoteResponse {
            pre_vote: false,
            granted: true,
        }
    }

    #[test]
    fn a_vote_granted_before_it_is_durable_is_caught() {
        let mut durable = DurableState::default();
        let log = FakeLog::default();
        let v = check_send(&msg(1, grant()), &durable, &log).unwrap_err();
        assert_eq!(v.kind, ViolationKind::Durability);
        durable.hard_state = HardState {
            term: Term(1),
            voted_for: Some(NodeId(2)),
        };
        check_send(&msg(1, grant()), &durable, &log).unwrap();
    }

    #[test]
    fn an_ack_of_entries_not_on_disk_is_caught() {
        let log = FakeLog::of(&[1, 1]);
        let mut durable = DurableState::default();
        durable.hard_state.term = Term(1);
        durable.entries = log.entries[..1].to_vec();
        let ack = |i| {
            msg(
                1,
                MessageBody::AppendResponse(AppendOutcome::Accepted {
                    match_index: LogIndex(i),
                }),
            )
        };
        check_send(&ack(1), &durable, &log).unwrap();
        let v = check_send(&ack(2), &durable, &log).unwrap_err();
        assert!(v.detail.contains("acknowledged i2"), "{}", v.detail);
    }

    #[test]
    fn pre_votes_and_refusals_need_nothing_durable() {
        let durable = DurableState::default();
        let log = FakeLog::default();
        let refusal = MessageBody::VoteResponse {
            pre_vote: false,
            granted: false,
        };
        let pre_vote = MessageBody::VoteResponse {
            pre_vote: true,
            granted: true,
        };
        check_send(&msg(5, refusal), &durable, &log).unwrap();
        check_send(&msg(5, pre_vote), &durable, &log).unwrap();
    }
}
