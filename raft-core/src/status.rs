//! A plain summary of a node for status pages, logs and tests.

use std::collections::BTreeMap;

use crate::node::RaftNode;
use crate::progress::ProgressState;
use crate::role::Role;
use crate::types::{LogIndex, Membership, NodeId, RoleKind, Term};

/// What a node knows about itself, as plain data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The node's id.
    pub id: NodeId,
    /// Its role.
    pub role: RoleKind,
    /// Its term.
    pub term: Term,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
    /// Its commit index.
    pub commit_index: LogIndex,
    /// The last index handed to the application.
    pub applied_index: LogIndex,
    /// The last index of its log.
    pub last_index: LogIndex,
    /// The durable log agrees with the in-memory one through here.
    pub persisted_index: LogIndex,
    /// The last index covered by its newest snapshot.
    pub snapshot_index: LogIndex,
    /// The membership in force.
    pub membership: Membership,
    /// On a leader: what it knows of each follower.
    pub peers: BTreeMap<NodeId, PeerStatus>,
    /// On a leader: whether a leadership transfer is under way.
    pub transferring: bool,
}

/// A leader's view of one follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerStatus {
    /// The highest index known replicated on it.
    pub match_index: LogIndex,
    /// The next index to send it.
    pub next_index: LogIndex,
    /// How the leader sends to it.
    pub state: ProgressState,
    /// AppendEntries messages in flight to it.
    pub inflight_msgs: usize,
    /// Entry bytes in flight to it.
    pub inflight_bytes: u64,
    /// Whether it was heard from since the last CheckQuorum round.
    pub recent_active: bool,
}

impl Status {
    /// The status of `node`.
    pub(crate) fn of(node: &RaftNode) -> Status {
        let (peers, transferring) = match &node.role {
            Role::Leader(leader) => {
                let peers = leader
                    .progress
                    .iter()
                    .map(|(&id, p)| {
                        let peer = PeerStatus {
                            match_index: p.match_index,
                            next_index: p.next_index,
                            state: p.state,
                            inflight_msgs: p.inflights.len(),
                            inflight_bytes: p.inflights.bytes(),
                            recent_active: p.recent_active,
                        };
                        (id, peer)
                    })
                    .collect();
                (peers, leader.is_transferring())
            }
            _ => (BTreeMap::new(), false),
        };
        Status {
            id: node.id(),
            role: node.role(),
            term: node.term(),
            leader: node.leader(),
            commit_index: node.commit_index(),
            applied_index: node.applied_index(),
            last_index: node.last_index(),
            persisted_index: node.persisted_index(),
            snapshot_index: node.shared.log.snapshot_index(),
            membership: node.membership().clone(),
            peers,
            transferring,
        }
    }
}
