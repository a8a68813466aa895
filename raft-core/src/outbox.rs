//! The actions of the current step, and the durability bookkeeping that decides when
//! a message may leave (the persistence contract, thesis §3.8).

use std::collections::VecDeque;

use crate::action::{Action, IgnoreReason};
use crate::message::{Message, MessageBody};
use crate::types::{PersistSeq, Term};

/// Held messages beyond this bound are dropped, oldest first. Dropping a message is
/// what a lossy network does anyway, so this bounds memory without touching safety;
/// it only fills when a shell stops reporting `Persisted`.
const HELD_MESSAGES_MAX: usize = 1 << 16;

/// Collects a step's actions and holds back the messages that wait for durability.
/// The actions are private: a message leaves only through `send_now` or
/// `send_after_persist`, a write only through `persist`, which numbers it, and
/// everything else through `emit`. No code can slip a `Send` past the gate.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    /// The actions of the step under way (the caller's buffer, swapped in).
    actions: Vec<Action>,
    last_issued: PersistSeq,
    persisted: PersistSeq,
    held: VecDeque<(PersistSeq, Message)>,
}

/// A PreVote poll, and a granted answer to one, carry the term the candidate would
/// campaign in, which is newer than the sender's.
fn is_poll_of_a_newer_term(message: &Message) -> bool {
    matches!(
        message.body,
        MessageBody::VoteRequest { pre_vote: true, .. }
            | MessageBody::VoteResponse {
                pre_vote: true,
                granted: true
            }
    )
}

/// The sequence number a persistence action carries; None for every other action.
fn persist_seq(action: &Action) -> Option<PersistSeq> {
    match action {
        Action::PersistHardState { seq, .. }
        | Action::AppendToLog { seq, .. }
        | Action::PersistSnapshot { seq, .. } => Some(*seq),
        _ => None,
    }
}

impl Outbox {
    /// Swaps the step's actions with `buffer`: the caller's buffer goes in before a
    /// step and comes out, filled, after it.
    pub(crate) fn swap_actions(&mut self, buffer: &mut Vec<Action>) {
        std::mem::swap(&mut self.actions, buffer);
    }

    /// Emits an action that is neither a message nor a write (applies, outcomes,
    /// notices). Messages and writes have their own doors.
    pub(crate) fn emit(&mut self, action: Action) {
        debug_assert!(
            !matches!(action, Action::Send(_)),
            "messages leave through send_now or send_after_persist"
        );
        debug_assert!(
            persist_seq(&action).is_none(),
            "writes are numbered by persist"
        );
        self.actions.push(action);
    }

    /// Emits the write `make` builds with the next sequence number; returns it.
    pub(crate) fn persist(&mut self, make: impl FnOnce(PersistSeq) -> Action) -> PersistSeq {
        let seq = PersistSeq(self.last_issued.0 + 1);
        let action = make(seq);
        debug_assert_eq!(
            persist_seq(&action),
            Some(seq),
            "a write carries its number"
        );
        self.last_issued = seq;
        self.actions.push(action);
        seq
    }

    /// Whether every persistence action issued so far is durable.
    pub(crate) fn all_persisted(&self) -> bool {
        self.persisted == self.last_issued
    }

    /// Sends `message` once everything issued so far is durable: replies that carry
    /// a vote, a term, or an acknowledgement of entries.
    pub(crate) fn send_after_persist(&mut self, message: Message) {
        if self.all_persisted() {
            self.actions.push(Action::Send(message));
            return;
        }
        if self.held.len() >= HELD_MESSAGES_MAX {
            self.held.pop_front();
        }
        self.held.push_back((self.last_issued, message));
    }

    /// Sends `message` at once: it depends on no durable state of this node (a
    /// leader's AppendEntries go out in parallel with its own fsync, thesis §10.2.1).
    pub(crate) fn send_now(&mut self, message: Message) {
        self.actions.push(Action::Send(message));
    }

    /// Records that everything through `through` is durable and releases the
    /// messages that waited for it, if this node is still in the term they were
    /// written in (`term`). Returns false (and changes nothing) if `through` was never
    /// issued or was already reported.
    ///
    /// A held reply of an older term is dropped, as a network may drop it: what it
    /// claims may no longer be true. An acknowledgement of entries from the leader of
    /// term t, held for their write, is false once a leader of a newer term truncated
    /// them before the same fsync (raft-sim seed 2277), and the old leader could
    /// count it toward a commit. Within one term nothing a reply claims is undone: a
    /// node truncates entries only for a new leader, which comes with a new term.
    pub(crate) fn persisted(&mut self, through: PersistSeq, term: Term) -> bool {
        if through > self.last_issued || through <= self.persisted {
            self.actions
                .push(Action::Ignored(IgnoreReason::InvalidPersisted));
            return false;
        }
        self.persisted = through;
        while let Some((seq, _)) = self.held.front() {
            if *seq > through {
                break;
            }
            let (_, message) = self.held.pop_front().expect("front exists");
            debug_assert!(message.term <= term || is_poll_of_a_newer_term(&message));
            if message.term >= term {
                self.actions.push(Action::Send(message));
            }
        }
        true
    }

    /// The highest sequence number issued.
    pub(crate) fn last_issued(&self) -> PersistSeq {
        self.last_issued
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::MessageBody;
    use crate::types::{NodeId, Term};

    fn msg() -> Message {
        Message {
            from: NodeId(1),
            to: NodeId(2),
            term: Term(1),
            body: MessageBody::TimeoutNow,
        }
    }

    #[test]
    fn held_until_the_covering_report() {
        let mut out = Outbox::default();
        let hard_state = crate::types::HardState::default();
        let s1 = out.persist(|seq| Action::PersistHardState { seq, hard_state });
        out.actions.clear();
        out.send_after_persist(msg());
        assert!(out.actions.is_empty());
        let s2 = out.persist(|seq| Action::PersistHardState { seq, hard_state });
        out.actions.clear();
        assert!(out.persisted(s1, Term(1)));
        assert_eq!(out.actions.len(), 1);
        assert!(!out.persisted(s1, Term(1)), "already reported");
        assert!(out.persisted(s2, Term(1)));
        assert!(!out.persisted(PersistSeq(9), Term(1)), "never issued");
    }

    #[test]
    fn a_held_reply_of_an_older_term_is_dropped() {
        let mut out = Outbox::default();
        let hard_state = crate::types::HardState::default();
        let s1 = out.persist(|seq| Action::PersistHardState { seq, hard_state });
        out.send_after_persist(msg());
        out.actions.clear();
        assert!(out.persisted(s1, Term(2)), "the node moved on to term 2");
        assert!(out.actions.is_empty(), "the term-1 reply stays unsaid");
    }
}
