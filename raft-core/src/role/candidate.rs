//! Candidates and pre-candidates: counting the answers to a (Pre)Vote request.

use std::collections::BTreeMap;

use crate::quorum::{joint_vote_result, VoteResult};
use crate::role::Next;
use crate::shared::Shared;
use crate::types::{NodeId, PersistSeq};

/// The ballots of an election (or PreVote poll) under way.
#[derive(Debug)]
pub(crate) struct CandidateState {
    /// A PreVote poll rather than a real election.
    pub(crate) pre_vote: bool,
    /// Each voter's first answer (this node's own vote included, once it counts).
    votes: BTreeMap<NodeId, bool>,
    /// In a real election, the write that makes this node's term and self-vote
    /// durable, until it is: the own vote counts only then. A candidate that won on a
    /// vote it could still lose in a crash could lead the same term twice, with a
    /// different log each time (raft-sim `--nodes 1`, seeds 254 and 262). Other
    /// voters' grants cannot arrive earlier: the vote requests wait for the same
    /// write. A PreVote poll writes nothing, so its own vote counts at once.
    own_vote_pending: Option<(NodeId, PersistSeq)>,
}

impl CandidateState {
    /// A PreVote poll, which starts with this node's own vote.
    pub(crate) fn poll(own_id: NodeId) -> Self {
        CandidateState {
            pre_vote: true,
            votes: BTreeMap::from([(own_id, true)]),
            own_vote_pending: None,
        }
    }

    /// An election whose own vote counts once the write `own_vote_seq` is durable.
    pub(crate) fn election(own_id: NodeId, own_vote_seq: PersistSeq) -> Self {
        CandidateState {
            pre_vote: false,
            votes: BTreeMap::new(),
            own_vote_pending: Some((own_id, own_vote_seq)),
        }
    }

    /// Counts this node's own vote if the write through `through` made it durable.
    pub(crate) fn on_persisted(&mut self, shared: &Shared, through: PersistSeq) -> Next {
        match self.own_vote_pending {
            Some((own_id, seq)) if seq <= through => {
                debug_assert_eq!(shared.voted_for, Some(own_id));
                self.own_vote_pending = None;
                self.votes.insert(own_id, true);
                self.next(shared, false)
            }
            _ => Next::Stay,
        }
    }

    /// Where the vote stands under `shared`'s membership.
    pub(crate) fn result(&self, shared: &Shared) -> VoteResult {
        joint_vote_result(shared.membership(), |id| self.votes.get(&id).copied())
    }

    /// What the vote's outcome asks for.
    pub(crate) fn next(&self, shared: &Shared, leadership_transfer: bool) -> Next {
        if self.own_vote_pending.is_some() {
            debug_assert!(
                !self.votes.contains_key(&shared.id),
                "not counted before durable"
            );
        }
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
        debug_assert_ne!(from, shared.id, "a node's own vote is not a message");
        self.votes.entry(from).or_insert(granted);
        debug_assert!(self.votes.len() <= shared.membership().members().len() + 1);
        self.next(shared, false)
    }
}
