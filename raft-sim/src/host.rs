//! One simulated machine: a `RaftNode` (absent while crashed), its disk, its KV state
//! machine, and the client requests it is serving.

use std::collections::BTreeMap;

use kv_model::{Command, KvStore, Outcome, RequestSeq};
use raft_core::{
    Config, Entry, LogIndex, NodeId, ProposalId, RaftNode, ReadId, Restored, RoleKind, Term,
};

use crate::checkers::LogView;
use crate::disk::SimDisk;

impl LogView for RaftNode {
    fn first_index(&self) -> LogIndex {
        RaftNode::first_index(self)
    }
    fn last_index(&self) -> LogIndex {
        RaftNode::last_index(self)
    }
    fn term_at(&self, index: LogIndex) -> Option<Term> {
        RaftNode::term_at(self, index)
    }
    fn entry(&self, index: LogIndex) -> Option<&Entry> {
        RaftNode::entry(self, index)
    }
}

/// A write a node is working on for a client.
#[derive(Clone, Debug)]
pub struct PendingWrite {
    /// The client's index in the world.
    pub client: usize,
    /// The operation's sequence number.
    pub seq: RequestSeq,
    /// The attempt.
    pub attempt: u32,
    /// The command proposed.
    pub command: Command,
}

/// A read a node is working on for a client.
#[derive(Clone, Debug)]
pub struct PendingRead {
    /// The client's index in the world.
    pub client: usize,
    /// The operation's sequence number.
    pub seq: RequestSeq,
    /// The attempt.
    pub attempt: u32,
    /// The key to read.
    pub key: String,
}

/// One machine of the cluster.
pub struct NodeHost {
    /// The node's id.
    pub id: NodeId,
    /// The running node; None while crashed.
    pub raft: Option<RaftNode>,
    /// The node's configuration (reused at every restart).
    pub config: Config,
    /// The disk, which outlives crashes.
    pub disk: SimDisk,
    /// The state machine (in memory: rebuilt at restart from the snapshot and replay).
    pub kv: KvStore,
    /// Incremented at every crash; events of an older life are ignored.
    pub life: u32,
    /// This node's tick interval (the nominal tick, skewed by clock drift).
    pub tick_us: u64,
    /// Proposals in flight, by the id given to the core.
    pub writes: BTreeMap<ProposalId, PendingWrite>,
    /// Where the core accepted each proposal.
    pub accepted: BTreeMap<LogIndex, ProposalId>,
    /// Applied entries of accepted proposals, waiting for `ProposalCommitted`.
    pub applied: BTreeMap<LogIndex, (Entry, Outcome)>,
    /// Reads in flight, by the id given to the core.
    pub reads: BTreeMap<ReadId, PendingRead>,
    /// The applied index at the last compaction.
    pub compacted_index: u64,
    /// After the heal this node stays down (outside the quorum core).
    pub kept_down: bool,
    /// The node was a member of a committed configuration.
    pub was_member: bool,
    /// A committed configuration removed the node: it never restarts.
    pub retired: bool,
    /// The last index of the node's log as the persistence actions left it (to count
    /// truncations).
    pub log_last: LogIndex,
    /// The role and term seen after the last step (to detect role changes).
    pub role_last: (RoleKind, Term),
}

impl NodeHost {
    /// A fresh machine with an empty disk.
    pub fn new(id: NodeId, config: Config, tick_us: u64) -> NodeHost {
        NodeHost {
            id,
            raft: None,
            config,
            disk: SimDisk::new(),
            kv: KvStore::new(),
            life: 0,
            tick_us,
            writes: BTreeMap::new(),
            accepted: BTreeMap::new(),
            applied: BTreeMap::new(),
            reads: BTreeMap::new(),
            compacted_index: 0,
            kept_down: false,
            was_member: false,
            retired: false,
            log_last: LogIndex(0),
            role_last: (RoleKind::Follower, Term(0)),
        }
    }

    /// Whether the node is running.
    pub fn is_up(&self) -> bool {
        self.raft.is_some()
    }

    /// Starts (or restarts) the node from what its disk holds.
    pub fn boot(&mut self) -> Result<(), String> {
        let restored: Restored = self.disk.durable().restored();
        let mut kv = KvStore::new();
        if let Some(snapshot) = &restored.snapshot {
            kv.restore(&snapshot.data)
                .map_err(|e| format!("the durable snapshot does not restore: {e}"))?;
        }
        let raft = RaftNode::new(self.config.clone(), restored)
            .map_err(|e| format!("RaftNode::new refused what the disk held: {e}"))?;
        self.kv = kv;
        self.compacted_index = self.kv.applied_index();
        self.log_last = raft.last_index();
        self.role_last = (raft.role(), raft.term());
        self.raft = Some(raft);
        Ok(())
    }

    /// The node crashes: everything in memory is gone (the disk handles its own loss).
    pub fn crash(&mut self) {
        self.raft = None;
        self.life += 1;
        self.writes.clear();
        self.accepted.clear();
        self.applied.clear();
        self.reads.clear();
        self.kv = KvStore::new();
    }
}
