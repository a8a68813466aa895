//! What a shell feeds into [`RaftNode::step`](crate::RaftNode::step).

use crate::message::Message;
use crate::types::{LogIndex, NodeId, PersistSeq, ProposalId, ReadId, SharedBytes};

/// An input to the state machine. Feeding the same events in the same order to nodes
/// built from the same configuration yields the same actions, byte for byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// One unit of logical time has passed. All timeouts are counted in ticks.
    Tick,
    /// A message from a peer arrived.
    Message(Message),
    /// Replicate these commands, appended to the log together and sent in the same
    /// messages (a shell batches what arrived since its last step). Each proposal is
    /// reported under its own id: accepted (with its index and term), then committed
    /// or dropped with a reason. [`Event::propose`] builds the one-command case.
    Propose(Vec<Proposal>),
    /// Start a linearizable read (ReadIndex, thesis §6.4). Answered with
    /// `Action::ReadReady` or `Action::ReadFailed` under `id`.
    Read {
        /// The caller's name for this read.
        id: ReadId,
    },
    /// Start an election now instead of waiting for the election timeout (etcd's
    /// `Campaign`): through PreVote when it is enabled, so a node that cannot win
    /// disturbs no one. For an operator or a bootstrap that prefers a leader, e.g.
    /// the first node of a new cluster once it reaches its peers. Ignored, with a
    /// reason, on a leader and on a node that is not a voter.
    Campaign,
    /// Hand leadership to `to` (thesis §3.10). Only a leader acts on it.
    TransferLeadership {
        /// The voter that should lead next.
        to: NodeId,
    },
    /// Change the cluster's membership. Voter changes go through a joint
    /// configuration that the leader leaves on its own once it is committed.
    ChangeMembership {
        /// The caller's name for the configuration entry, reported like a proposal.
        id: ProposalId,
        /// The changes, applied in order to the current membership.
        changes: Vec<MembershipChange>,
    },
    /// The application has captured its state as of `up_to` (an index it has
    /// applied); the log prefix through `up_to` may be discarded.
    Compact {
        /// The last index reflected in `data`.
        up_to: LogIndex,
        /// The application's serialized state.
        data: SharedBytes,
    },
    /// Every persistence action with a sequence number up to `through` is durable.
    Persisted {
        /// The highest persistence sequence number made durable, in order.
        through: PersistSeq,
    },
}

impl Event {
    /// A proposal of one command.
    pub fn propose(id: ProposalId, command: impl Into<SharedBytes>) -> Event {
        Event::Propose(vec![Proposal {
            id,
            command: command.into(),
        }])
    }
}

/// A command to replicate, under the caller's name for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// The caller's name for this proposal, under which its fate is reported.
    pub id: ProposalId,
    /// The command, opaque to the core.
    pub command: SharedBytes,
}

/// One change to the membership.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MembershipChange {
    /// Add a non-voting member that receives the log.
    AddLearner(NodeId),
    /// Add a voter, or promote a learner to voter.
    AddVoter(NodeId),
    /// Remove a voter or learner.
    Remove(NodeId),
}
