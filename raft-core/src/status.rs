//! What a node tells about itself: read-only accessors and a plain summary, for
//! status pages, logs and tests.

use std::collections::BTreeMap;

use crate::config::Config;
use crate::node::RaftNode;
use crate::progress::ProgressState;
use crate::role::Role;
use crate::types::{Entry, HardState, LogIndex, Membership, NodeId, RoleKind, SnapshotMeta, Term};

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

impl RaftNode {
    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.shared.id
    }

    /// The configuration the node was built with.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The role in the current term.
    pub fn role(&self) -> RoleKind {
        self.role.kind()
    }

    /// The current term.
    pub fn term(&self) -> Term {
        self.shared.term
    }

    /// The vote cast in the current term.
    pub fn voted_for(&self) -> Option<NodeId> {
        self.shared.voted_for
    }

    /// The current term and vote.
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.shared.term,
            voted_for: self.shared.voted_for,
        }
    }

    /// The leader of the current term, if known.
    pub fn leader(&self) -> Option<NodeId> {
        self.shared.leader
    }

    /// The highest index known committed.
    pub fn commit_index(&self) -> LogIndex {
        self.shared.log.commit_index()
    }

    /// The highest index handed to the application (in `Apply` or restored).
    pub fn applied_index(&self) -> LogIndex {
        self.shared.log.applied_index()
    }

    /// The first index held in memory (after the snapshot).
    pub fn first_index(&self) -> LogIndex {
        self.shared.log.first_index()
    }

    /// The last index of the log.
    pub fn last_index(&self) -> LogIndex {
        self.shared.log.last_index()
    }

    /// The term of the last entry.
    pub fn last_term(&self) -> Term {
        self.shared.log.last_term()
    }

    /// The durable log agrees with the in-memory log through this index.
    pub fn persisted_index(&self) -> LogIndex {
        self.shared.log.persisted_index()
    }

    /// The entry at `index`, if held in memory.
    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        self.shared.log.entry(index)
    }

    /// Every entry held in memory, from `first_index` to `last_index`.
    pub fn entries(&self) -> &[Entry] {
        self.shared.log.entries()
    }

    /// The term at `index`, if known (held, or the snapshot's last index).
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        self.shared.log.term_at(index)
    }

    /// What the newest snapshot covers (last index 0 when there is none).
    pub fn snapshot_meta(&self) -> SnapshotMeta {
        SnapshotMeta {
            last_index: self.shared.log.snapshot_index(),
            last_term: self.shared.log.snapshot_term(),
            membership: self
                .shared
                .memberships
                .at(self.shared.log.snapshot_index())
                .clone(),
        }
    }

    /// The membership in force (the newest in the log).
    pub fn membership(&self) -> &Membership {
        self.shared.membership()
    }

    /// A summary for status pages.
    pub fn status(&self) -> Status {
        Status::of(self)
    }
}
