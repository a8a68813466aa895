//! The wire messages between nodes, separate from the events a shell feeds in.
//!
//! Every message carries its sender's term; the term prelude in `RaftNode::step`
//! handles stale and newer terms once, for all message kinds.

use serde::{Deserialize, Serialize};

use crate::types::{Entry, LogIndex, NodeId, ReadId, SharedBytes, SnapshotMeta, Term};

/// A message from one node to another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The sender.
    pub from: NodeId,
    /// The intended recipient; a node ignores messages addressed to someone else.
    pub to: NodeId,
    /// The sender's current term (for PreVote requests: the term it would campaign in).
    pub term: Term,
    /// What the message says.
    pub body: MessageBody,
}

/// Why a read failed; carried in `Action::ReadFailed` and on the wire when a
/// follower's forwarded read cannot be served by the node it asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadFailure {
    /// This node does not lead and knows of no leader to ask.
    NoLeader,
    /// The node asked is not (or no longer) the leader.
    NotLeader,
    /// Leadership could not be confirmed within `read_timeout_ticks`.
    Timeout,
    /// Too many reads are pending; the bound is `pending_reads_max`.
    Overloaded,
}

/// The body of a [`Message`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageBody {
    /// A request for a vote (Raft §5.2), or with `pre_vote` a poll whether the
    /// receiver would grant one (thesis §9.6), which changes no one's term.
    VoteRequest {
        /// A PreVote poll rather than a real vote.
        pre_vote: bool,
        /// The index of the candidate's last log entry (§5.4.1).
        last_log_index: LogIndex,
        /// The term of the candidate's last log entry.
        last_log_term: Term,
        /// The election was started by `TimeoutNow`: receivers set aside their leader
        /// lease (thesis §3.10), since the leader itself asked for it.
        leadership_transfer: bool,
    },
    /// The answer to a `VoteRequest`.
    VoteResponse {
        /// Answers a PreVote poll.
        pre_vote: bool,
        /// Whether the vote (or poll) is granted.
        granted: bool,
    },
    /// Log entries to append after `prev_log_index` (Raft §5.3); possibly empty, as a
    /// probe for where the logs agree.
    AppendEntries {
        /// The index of the entry just before `entries`.
        prev_log_index: LogIndex,
        /// The term of that entry.
        prev_log_term: Term,
        /// The entries, consecutive, starting at `prev_log_index + 1`.
        entries: Vec<Entry>,
        /// The leader's commit index.
        leader_commit: LogIndex,
    },
    /// The answer to `AppendEntries`.
    AppendResponse(AppendOutcome),
    /// Keeps followers from starting elections, carries the commit index, and
    /// confirms leadership for reads (thesis §6.4).
    Heartbeat {
        /// The leader's commit index capped at what the follower is known to hold.
        commit: LogIndex,
        /// The read round this heartbeat belongs to; the response echoes it.
        read_round: u64,
    },
    /// The answer to `Heartbeat`.
    HeartbeatResponse {
        /// The read round of the heartbeat answered.
        read_round: u64,
    },
    /// Start an election at once: the leader hands over leadership (thesis §3.10).
    TimeoutNow,
    /// A follower asks the leader for a read index on behalf of its client.
    ReadIndexRequest {
        /// The follower's id for the read.
        id: ReadId,
    },
    /// The leader's answer to `ReadIndexRequest`.
    ReadIndexResponse {
        /// The follower's id for the read.
        id: ReadId,
        /// The index the follower must have applied before it reads, or why not.
        result: Result<LogIndex, ReadFailure>,
    },
    /// One chunk of a snapshot, sent to a follower whose next entry was compacted away.
    /// Boxed so that the common messages stay small.
    InstallSnapshot(Box<SnapshotChunk>),
    /// The answer to `InstallSnapshot`.
    InstallSnapshotResponse {
        /// The snapshot answered (identified by its last index).
        last_index: LogIndex,
        /// The offset of the next chunk the follower wants (resumable transfers);
        /// equal to the total size once the snapshot is installed and durable.
        next_offset: u64,
        /// The snapshot is installed and durable.
        done: bool,
    },
}

/// One chunk of a snapshot in transfer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotChunk {
    /// What the snapshot covers.
    pub meta: SnapshotMeta,
    /// The byte offset of `data` within the snapshot.
    pub offset: u64,
    /// The total size of the snapshot in bytes.
    pub total_bytes: u64,
    /// The bytes at `offset`.
    pub data: SharedBytes,
}

/// The outcome of an `AppendEntries` at the follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppendOutcome {
    /// The follower's log now matches the leader's through `match_index`.
    Accepted {
        /// The last index known to match the leader's log (durable on the follower).
        match_index: LogIndex,
    },
    /// The consistency check failed at `rejected_index` (the request's
    /// `prev_log_index`); the hint lets the leader skip a whole term at a time.
    Rejected {
        /// The `prev_log_index` of the rejected request.
        rejected_index: LogIndex,
        /// The last index at or before `rejected_index` whose term is at most the
        /// request's `prev_log_term` (or the follower's last index if shorter).
        hint_index: LogIndex,
        /// The term of the follower's entry at `hint_index`.
        hint_term: Term,
    },
}

impl MessageBody {
    /// A short name of the message kind, for traces and reports.
    pub fn kind(&self) -> &'static str {
        match self {
            MessageBody::VoteRequest { pre_vote: true, .. } => "PreVote",
            MessageBody::VoteRequest { .. } => "RequestVote",
            MessageBody::VoteResponse { pre_vote: true, .. } => "PreVoteResp",
            MessageBody::VoteResponse { .. } => "RequestVoteResp",
            MessageBody::AppendEntries { .. } => "AppendEntries",
            MessageBody::AppendResponse(_) => "AppendResp",
            MessageBody::Heartbeat { .. } => "Heartbeat",
            MessageBody::HeartbeatResponse { .. } => "HeartbeatResp",
            MessageBody::TimeoutNow => "TimeoutNow",
            MessageBody::ReadIndexRequest { .. } => "ReadIndex",
            MessageBody::ReadIndexResponse { .. } => "ReadIndexResp",
            MessageBody::InstallSnapshot(_) => "InstallSnapshot",
            MessageBody::InstallSnapshotResponse { .. } => "InstallSnapshotResp",
        }
    }

    /// Whether only a leader sends this message, so receiving it in a term means
    /// the sender leads that term.
    pub fn is_from_leader(&self) -> bool {
        matches!(
            self,
            MessageBody::AppendEntries { .. }
                | MessageBody::Heartbeat { .. }
                | MessageBody::InstallSnapshot(_)
                | MessageBody::TimeoutNow
        )
    }
}
