//! The persistence contract (thesis §3.8): a message that depends on durable state
//! goes out only after that state is durable. The simulator knows exactly what each
//! disk holds, so it checks every such message as it is sent:
//! - a granted vote: the durable hard state holds the message's term and the vote, or
//!   a later term (hard states are written in order, so the vote was durable before
//!   it, and a node never votes again in a term it has left);
//! - an append acknowledgement: the durable log reaches the acknowledged index and
//!   holds there the entry of the leader it answers (the leader of the message's
//!   term, whose log only grows within its term), and the term is durable. The
//!   sender's own log is not the reference: an acknowledgement held until its write
//!   was durable may go out after the node moved to a newer term and began
//!   overwriting that entry in memory, and it is still true of what is durable;
//! - an append rejection: the term it carries is durable (a rejection after a term
//!   change);
//! - a completed snapshot install: the durable log (snapshot included) reaches it.

use raft_core::{AppendOutcome, Message, MessageBody};

use raft_core::Term;

use super::{Violation, ViolationKind};
use crate::disk::DurableState;

/// Checks one message `msg` about to be sent by `msg.from`, whose durable state is
/// `durable`. For an append acknowledgement, `leader_term_at_match` is the term of the
/// entry at the acknowledged index in the log of the leader of `msg.term` (None when
/// that is unknown: the leader compacted it, or left the term).
pub fn check_send(
    msg: &Message,
    durable: &DurableState,
    leader_term_at_match: Option<Term>,
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
                // entry, and hold the leader's entry there where both are known (a
                // compacted entry is committed, so its term cannot differ).
                let on_disk = durable.term_at(*match_index);
                let reaches = durable.last_index() >= *match_index;
                let disagrees = leader_term_at_match.is_some()
                    && on_disk.is_some()
                    && leader_term_at_match != on_disk;
                if !reaches || disagrees {
                    return fail(format!(
                        "acknowledged {match_index} (the leader holds {leader_term_at_match:?} there) while the disk holds {on_disk:?} there and ends at {}",
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
        let v = check_send(&msg(1, grant()), &durable, None).unwrap_err();
        assert_eq!(v.kind, ViolationKind::Durability);
        durable.hard_state = HardState {
            term: Term(1),
            voted_for: Some(NodeId(2)),
        };
        check_send(&msg(1, grant()), &durable, None).unwrap();
        // A grant released after the node moved on to a later term is fine.
        durable.hard_state.term = Term(2);
        durable.hard_state.voted_for = None;
        check_send(&msg(1, grant()), &durable, None).unwrap();
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
        check_send(&ack(1), &durable, Some(Term(1))).unwrap();
        let v = check_send(&ack(2), &durable, Some(Term(1))).unwrap_err();
        assert!(v.detail.contains("acknowledged i2"), "{}", v.detail);
        // The disk holds another entry than the leader's at the acknowledged index.
        let v = check_send(&ack(1), &durable, Some(Term(2))).unwrap_err();
        assert!(v.detail.contains("the leader holds"), "{}", v.detail);
    }

    #[test]
    fn pre_votes_and_refusals_need_nothing_durable() {
        let durable = DurableState::default();
        let refusal = MessageBody::VoteResponse {
            pre_vote: false,
            granted: false,
        };
        let pre_vote = MessageBody::VoteResponse {
            pre_vote: true,
            granted: true,
        };
        check_send(&msg(5, refusal), &durable, None).unwrap();
        check_send(&msg(5, pre_vote), &durable, None).unwrap();
    }
}
