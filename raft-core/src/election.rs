//! Elections: starting a campaign (with or without PreVote) and answering vote
//! requests, which every role does the same way (Raft §5.2, §5.4.1; thesis §9.6).

use crate::message::{Message, MessageBody};
use crate::node::RaftNode;
use crate::role::{Next, Role};
use crate::types::{LogIndex, NodeId, Term};

impl RaftNode {
    /// Starts a PreVote poll or an election.
    pub(crate) fn campaign(&mut self, pre_vote: bool, leadership_transfer: bool) {
        let standing = std::mem::take(&mut self.shared.needed_as_candidate);
        // A won poll turns into the election it was for.
        let polled = !pre_vote && matches!(self.role, Role::PreCandidate(_));
        if !self.shared.may_campaign() && !standing && !polled {
            return;
        }
        let term_before = self.shared.term;
        self.become_candidate(pre_vote);
        if pre_vote {
            debug_assert_eq!(self.shared.term, term_before, "a poll enters no term");
        } else {
            debug_assert_eq!(self.shared.term, term_before.next());
            debug_assert_eq!(self.shared.voted_for, Some(self.shared.id));
        }
        let (Role::PreCandidate(state) | Role::Candidate(state)) = &self.role else {
            unreachable!("become_candidate sets a candidate role");
        };
        let next = state.next(&self.shared, leadership_transfer);
        if next != Next::Stay {
            // A single voter wins at once.
            self.transition(next);
            return;
        }
        let shared = &mut self.shared;
        // A PreVote asks about the term this node would campaign in, without entering it.
        let term = if pre_vote {
            shared.term.next()
        } else {
            shared.term
        };
        let body = MessageBody::VoteRequest {
            pre_vote,
            last_log_index: shared.log.last_index(),
            last_log_term: shared.log.last_term(),
            leadership_transfer,
        };
        let membership = shared.membership();
        let voters: Vec<NodeId> = membership
            .voters
            .union(&membership.voters_outgoing)
            .copied()
            .collect();
        for voter in voters.into_iter().filter(|&v| v != shared.id) {
            let message = Message {
                from: shared.id,
                to: voter,
                term,
                body: body.clone(),
            };
            // A real vote request waits until this node's own vote is durable.
            shared.out.send_after_persist(message);
        }
    }

    /// Answers a vote request (the term prelude already ran).
    pub(crate) fn on_vote_request(
        &mut self,
        from: NodeId,
        request_term: Term,
        pre_vote: bool,
        last_log_index: LogIndex,
        last_log_term: Term,
    ) {
        let shared = &mut self.shared;
        let can_vote = shared.voted_for == Some(from)
            || (shared.voted_for.is_none() && shared.leader.is_none())
            || (pre_vote && request_term > shared.term);
        let newer_than_candidate = !shared.log.is_up_to_date(last_log_index, last_log_term);
        let granted = can_vote && !newer_than_candidate;
        if granted {
            // The election restriction (§5.4.1): a vote only for a log at least as new.
            debug_assert!(shared.log.is_up_to_date(last_log_index, last_log_term));
            debug_assert!(pre_vote || request_term == shared.term);
        }
        if newer_than_candidate && !shared.may_campaign() {
            shared.needed_as_candidate = true;
        }
        if granted && !pre_vote {
            shared.vote_for(from);
            shared.reset_election_timer();
            debug_assert_eq!(shared.voted_for, Some(from), "one vote per term");
        }
        // A granted PreVote answers in the term asked about, so the candidate's prelude
        // does not mistake it for news of a newer term.
        let term = if pre_vote && granted {
            request_term
        } else {
            shared.term
        };
        let message = Message {
            from: shared.id,
            to: from,
            term,
            body: MessageBody::VoteResponse { pre_vote, granted },
        };
        shared.out.send_after_persist(message);
    }
}
