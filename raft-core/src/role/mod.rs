//! The roles a node plays. Role-only state lives inside the role, so a follower
//! cannot touch replication progress; each role's handling lives in its own file.

pub(crate) mod candidate;
pub(crate) mod follower;
pub(crate) mod leader;

use crate::types::RoleKind;
use candidate::CandidateState;
use follower::FollowerState;
use leader::LeaderState;

/// The current role and its private state.
#[derive(Debug)]
pub(crate) enum Role {
    Follower(FollowerState),
    PreCandidate(CandidateState),
    Candidate(CandidateState),
    Leader(Box<LeaderState>),
}

impl Role {
    /// The role's name.
    pub(crate) fn kind(&self) -> RoleKind {
        match self {
            Role::Follower(_) => RoleKind::Follower,
            Role::PreCandidate(_) => RoleKind::PreCandidate,
            Role::Candidate(_) => RoleKind::Candidate,
            Role::Leader(_) => RoleKind::Leader,
        }
    }
}

/// A role change a handler asks for; `RaftNode` carries it out, so transitions are
/// written in one place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub(crate) enum Next {
    /// Keep the current role.
    Stay,
    /// Become a follower in the current term, with no known leader.
    StepDown,
    /// Start an election (or a PreVote poll).
    Campaign {
        pre_vote: bool,
        leadership_transfer: bool,
    },
    /// The election is won.
    BecomeLeader,
}
