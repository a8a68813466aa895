//! Candidates and pre-candidates: counting the answers to a (Pre)Vote request.

use std::collections::BTreeMap;

use crate::quorum::{joint_vote_result, VoteResult};
use crate::role::Next;
use crate::shared::Shared;
use crate::types::NodeId;

/// The ballots of an election (or PreVote poll) under way.
#[derive(Debug)]
pub(crate) struct CandidateState {
    /// A PreVote poll rather than a real election.
    pub(crate) pre_vote: bool,
    /// Each voter's first answer (this node's own vote included).
    votes: BTreeMap<NodeId, bool>,
}

impl CandidateState {
    /// A campaign that starts with this node's own vote.
    pub(crate) fn new(pre_vote: bool, own_id: NodeId) -> Self {
        CandidateState {
            pre_vote,
            votes: BTreeMap::from([(own_id, true)]),
        }
    }

    /// Where the vote stands under `shared`'s membership.
    pub(crate) fn result(&self, shared: &Shared) -> VoteResult {
        joint_vote_result(shared.membership(), |id| self.votes.get(&id).copied())
    }

    /// What the vote's outcome asks for.
    pub(crate) fn next(&self, shared: &Shared, leadership_transfer: bool) -> Next {
        match self.result(shared) {
            VoteResult::Won if self.pre_vote => Next::Campaign {
                pre_vote: false,
                leadership_transfer,
            },
            VoteResult::Won => Next::BecomeLeader,
            VoteResult::Lost => Next::StepDown,
            VoteResult::Pending => Next::Stay,
        }
    }

    /// Counts `from`'s answer (only its first: duplicates change nothing).
    pub(crate) fn on_vote_response(
        &mut self,
        shared: &mut Shared,
        from: NodeId,
        granted: bool,
    ) -> Next {
        self.votes.entry(from).or_insert(granted);
        self.next(shared, false)
    }
}
