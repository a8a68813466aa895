//! Node configuration, what a restarting node restores, and their validation.

use std::collections::BTreeSet;
use std::fmt;

use crate::types::{Entry, EntryPayload, HardState, LogIndex, NodeId, Snapshot, Term};

/// How a node behaves: its identity, the initial cluster, timeouts and bounds.
///
/// Build one with [`Config::new`] and adjust fields; [`RaftNode::new`](crate::RaftNode::new)
/// validates it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// This node's id (non-zero).
    pub id: NodeId,
    /// The voters of a brand-new cluster. Used only when neither the restored log nor
    /// a snapshot names a membership; empty for a node that waits to be added.
    pub initial_voters: BTreeSet<NodeId>,
    /// The learners of a brand-new cluster (see `initial_voters`).
    pub initial_learners: BTreeSet<NodeId>,
    /// Seeds the node's rng (together with its id): the only source of randomness.
    pub seed: u64,
    /// The least number of ticks without a leader before a follower campaigns.
    pub election_timeout_ticks_min: u32,
    /// The election timeout is drawn uniformly from `[min, max)` at every reset.
    pub election_timeout_ticks_max: u32,
    /// Ticks between a leader's heartbeats.
    pub heartbeat_interval_ticks: u32,
    /// Poll with PreVote before disrupting the cluster with a new term (thesis §9.6).
    pub pre_vote: bool,
    /// A leader that has not heard from a quorum within an election timeout steps
    /// down, and followers that hear from a live leader ignore vote requests.
    pub check_quorum: bool,
    /// The most AppendEntries messages in flight to one follower.
    pub inflight_msgs_max: usize,
    /// The most entry bytes in flight to one follower.
    pub inflight_bytes_max: u64,
    /// The most entries in one AppendEntries message.
    pub msg_entries_max: usize,
    /// The most entry bytes in one AppendEntries message (at least one entry is sent,
    /// however large).
    pub msg_bytes_max: u64,
    /// The most bytes of uncommitted entries a leader accepts before it drops new
    /// proposals with `Overloaded`.
    pub uncommitted_bytes_max: u64,
    /// A read that cannot be confirmed within this many ticks fails with `Timeout`.
    pub read_timeout_ticks: u32,
    /// The most reads pending at once; more fail with `Overloaded`.
    pub pending_reads_max: usize,
    /// The size of one InstallSnapshot chunk.
    pub snapshot_chunk_bytes: u64,
    /// The most snapshot chunks in flight to one follower.
    pub snapshot_chunks_inflight_max: usize,
    /// A leader that is not a voter of its committed configuration (removed, or a
    /// learner that had to stand) hands over to a caught-up voter and steps down once
    /// an entry of its term commits.
    pub step_down_when_removed: bool,
    /// Serve reads from a leader lease (thesis §6.4.1; etcd's `ReadOnlyLeaseBased`):
    /// a leader that a majority acknowledged within the last
    /// [`read_lease_ticks`](Config::read_lease_ticks) answers a read at once, with no
    /// heartbeat round. Linearizable only while no clock runs faster or slower than
    /// nominal by more than `lease_clock_drift_percent_max`; with larger drift a
    /// lease read may be stale. Needs `check_quorum` (voters that heard from the
    /// leader ignore candidates, which is what the lease relies on). Off by default.
    ///
    /// The lease is only as good as the shell's ticks: they must follow real time. A
    /// shell that stalls (a paused process, a long fsync on the loop's thread) and
    /// then forgets the ticks it missed stops the lease's clock while the voters'
    /// clocks run on. After a stall it must step at least `read_lease_ticks() + 1`
    /// ticks before the reads that arrived meanwhile (raft-mio does).
    pub read_lease: bool,
    /// The most, in percent, by which any node's tick rate may differ from nominal;
    /// the lease is shortened so that it ends before any voter could vote again.
    pub lease_clock_drift_percent_max: u32,
}

impl Config {
    /// A configuration with sensible defaults for a node `id` of a cluster whose
    /// initial voters are `voters` (which should include `id`).
    pub fn new(id: NodeId, voters: impl IntoIterator<Item = NodeId>) -> Self {
        Config {
            id,
            initial_voters: voters.into_iter().collect(),
            initial_learners: BTreeSet::new(),
            seed: 0,
            election_timeout_ticks_min: 10,
            election_timeout_ticks_max: 20,
            heartbeat_interval_ticks: 2,
            pre_vote: true,
            check_quorum: true,
            inflight_msgs_max: 64,
            inflight_bytes_max: 8 << 20,
            msg_entries_max: 512,
            msg_bytes_max: 1 << 20,
            uncommitted_bytes_max: 64 << 20,
            read_timeout_ticks: 20,
            pending_reads_max: 65_536,
            snapshot_chunk_bytes: 256 << 10,
            snapshot_chunks_inflight_max: 4,
            step_down_when_removed: true,
            read_lease: false,
            lease_clock_drift_percent_max: 10,
        }
    }

    /// How many of its own ticks a leader's lease lasts after it sent the heartbeat
    /// round a majority acknowledged. A voter that acknowledged ignores candidates for
    /// `election_timeout_ticks_min` of its ticks after it heard the heartbeat, which
    /// is at least `min - 1` whole ticks later in real time (its next tick may come at
    /// once); the leader's lease, counted from a send inside its tick, ends within
    /// that many of its own ticks. With every rate within ±d of nominal, one voter
    /// tick lasts at least (1 - d) / (1 + d) leader ticks, so the lease is
    /// `(min - 1) * (100 - d) / (100 + d)` ticks, rounded down.
    pub fn read_lease_ticks(&self) -> u32 {
        let drift = u64::from(self.lease_clock_drift_percent_max.min(99));
        let voter_ticks = u64::from(self.election_timeout_ticks_min.saturating_sub(1));
        (voter_ticks * (100 - drift) / (100 + drift)) as u32
    }

    /// Checks every field; the error names the first bad one and why.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field: &'static str, reason: &'static str| Err(ConfigError { field, reason });
        if !self.id.is_valid() {
            return bad("id", "node id 0 is reserved");
        }
        if self.initial_voters.iter().any(|v| !v.is_valid()) {
            return bad("initial_voters", "node id 0 is reserved");
        }
        if self.initial_learners.iter().any(|v| !v.is_valid()) {
            return bad("initial_learners", "node id 0 is reserved");
        }
        if self
            .initial_learners
            .iter()
            .any(|l| self.initial_voters.contains(l))
        {
            return bad(
                "initial_learners",
                "a node cannot be both voter and learner",
            );
        }
        if self.election_timeout_ticks_min < 2 {
            return bad("election_timeout_ticks_min", "must be at least 2");
        }
        if self.election_timeout_ticks_max <= self.election_timeout_ticks_min {
            return bad(
                "election_timeout_ticks_max",
                "must exceed election_timeout_ticks_min",
            );
        }
        if self.heartbeat_interval_ticks == 0 {
            return bad("heartbeat_interval_ticks", "must be at least 1");
        }
        if self.heartbeat_interval_ticks >= self.election_timeout_ticks_min {
            return bad(
                "heartbeat_interval_ticks",
                "must be below election_timeout_ticks_min, or followers time out between heartbeats",
            );
        }
        if self.inflight_msgs_max == 0 {
            return bad("inflight_msgs_max", "must be at least 1");
        }
        if self.inflight_bytes_max == 0 {
            return bad("inflight_bytes_max", "must be at least 1");
        }
        if self.msg_entries_max == 0 {
            return bad("msg_entries_max", "must be at least 1");
        }
        if self.msg_bytes_max == 0 {
            return bad("msg_bytes_max", "must be at least 1");
        }
        if self.uncommitted_bytes_max == 0 {
            return bad("uncommitted_bytes_max", "must be at least 1");
        }
        if self.read_timeout_ticks == 0 {
            return bad("read_timeout_ticks", "must be at least 1");
        }
        if self.pending_reads_max == 0 {
            return bad("pending_reads_max", "must be at least 1");
        }
        if self.snapshot_chunk_bytes == 0 {
            return bad("snapshot_chunk_bytes", "must be at least 1");
        }
        if self.snapshot_chunks_inflight_max == 0 {
            return bad("snapshot_chunks_inflight_max", "must be at least 1");
        }
        if self.lease_clock_drift_percent_max >= 50 {
            return bad(
                "lease_clock_drift_percent_max",
                "must be below 50: clocks that far off leave no lease worth having",
            );
        }
        if self.read_lease && !self.check_quorum {
            return bad(
                "read_lease",
                "needs check_quorum: the lease relies on voters ignoring candidates while they hear from the leader",
            );
        }
        if self.read_lease && self.read_lease_ticks() == 0 {
            return bad(
                "read_lease",
                "election_timeout_ticks_min is too short for a lease at this clock drift",
            );
        }
        Ok(())
    }
}

/// A configuration field that is out of range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The field's name.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid config field `{}`: {}", self.field, self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// What a restarting node loaded from durable storage: exactly what the shell had
/// reported durable, in the shape the core asked it to persist.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// The last durable term and vote.
    pub hard_state: HardState,
    /// The newest durable snapshot, if any.
    pub snapshot: Option<Snapshot>,
    /// The durable log entries after the snapshot (or from index 1), consecutive.
    pub entries: Vec<Entry>,
    /// The last index the application has already applied and kept (a durable state
    /// machine); the core hands out entries after it. Zero, or the snapshot's index,
    /// for an in-memory state machine that is rebuilt by replay.
    pub applied: LogIndex,
}

impl Restored {
    /// Checks that the restored state is self-consistent.
    pub fn validate(&self) -> Result<(), RestoreError> {
        let bad = |reason: &'static str| Err(RestoreError { reason });
        let (snap_index, snap_term) = self
            .snapshot
            .as_ref()
            .map_or((LogIndex(0), Default::default()), |s| {
                (s.meta.last_index, s.meta.last_term)
            });
        let mut prev_index = snap_index;
        let mut prev_term = snap_term;
        for entry in &self.entries {
            if entry.index != prev_index.next() {
                return bad("log entries are not consecutive after the snapshot");
            }
            if entry.term < prev_term {
                return bad("log entry terms decrease");
            }
            if let EntryPayload::Membership(m) = &entry.payload {
                if m.voters.is_empty() {
                    return bad("a membership entry has no voters");
                }
            }
            prev_index = entry.index;
            prev_term = entry.term;
        }
        if self.hard_state.term == Term::MAX {
            return bad("the hard state's term is the reserved u64::MAX");
        }
        if prev_term > self.hard_state.term {
            return bad("the log holds an entry from a term after the hard state's term");
        }
        if self.applied > prev_index {
            return bad("applied index is beyond the last log entry");
        }
        if self.applied < snap_index && self.applied != LogIndex(0) {
            return bad("applied index is below the snapshot (applied must be 0 or at least the snapshot index)");
        }
        if let Some(snapshot) = &self.snapshot {
            if snapshot.meta.membership.voters.is_empty() {
                return bad("the snapshot's membership has no voters");
            }
        }
        Ok(())
    }
}

/// Restored state that contradicts itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestoreError {
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid restored state: {}", self.reason)
    }
}

impl std::error::Error for RestoreError {}

/// Why [`RaftNode::new`](crate::RaftNode::new) refused to build a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewNodeError {
    /// The configuration is invalid.
    Config(ConfigError),
    /// The restored state is invalid.
    Restore(RestoreError),
}

impl fmt::Display for NewNodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NewNodeError::Config(e) => e.fmt(f),
            NewNodeError::Restore(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for NewNodeError {}

impl From<ConfigError> for NewNodeError {
    fn from(e: ConfigError) -> Self {
        NewNodeError::Config(e)
    }
}

impl From<RestoreError> for NewNodeError {
    fn from(e: RestoreError) -> Self {
        NewNodeError::Restore(e)
    }
}
