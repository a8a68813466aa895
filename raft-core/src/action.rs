//! What [`RaftNode::step`](crate::RaftNode::step) asks its shell to do.
//!
//! The shell executes actions in the order they are returned. Persistence actions
//! are numbered; the shell makes them durable in order and reports the highest done
//! with `Event::Persisted`. Messages that depend on durable state are held by the core
//! until that report, so a shell can never send them too early (thesis §3.8).

use crate::message::{Message, ReadFailure};
use crate::types::{
    Entry, HardState, LogIndex, NodeId, PersistSeq, ProposalId, ReadId, RoleKind, Snapshot, Term,
};

/// An output of the state machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Make the term and vote durable (replacing the previous hard state).
    PersistHardState {
        /// Report `Event::Persisted` with at least this once durable.
        seq: PersistSeq,
        /// The new hard state.
        hard_state: HardState,
    },
    /// Append `entries` (consecutive, never empty) to the durable log, first
    /// discarding every durable entry at or after `entries[0].index`.
    AppendToLog {
        /// Report `Event::Persisted` with at least this once durable.
        seq: PersistSeq,
        /// The entries to write.
        entries: Vec<Entry>,
    },
    /// Make `snapshot` durable. The durable log then keeps only entries after
    /// `snapshot.meta.last_index`; with `discard_log`, it keeps none at all (the
    /// snapshot replaced a log that disagreed with it).
    PersistSnapshot {
        /// Report `Event::Persisted` with at least this once durable.
        seq: PersistSeq,
        /// The snapshot.
        snapshot: Box<Snapshot>,
        /// Drop the entries after the snapshot too.
        discard_log: bool,
    },
    /// Send a message. Any durable state it depends on is already reported durable:
    /// it may go out at once, and it may be lost (Raft tolerates loss).
    Send(Message),
    /// Apply these committed entries to the state machine, in index order. Each
    /// committed entry is handed out exactly once per node lifetime.
    Apply(Vec<Entry>),
    /// Replace the state machine's state with this snapshot (a follower installed one
    /// from the leader). Entries applied later follow `snapshot.meta.last_index`.
    RestoreSnapshot(Box<Snapshot>),
    /// The read `id` may be served: every `Apply` before this action brings the state
    /// machine to at least `read_index`, which is linearizable.
    ReadReady {
        /// The caller's read.
        id: ReadId,
        /// The commit index at the time the read was confirmed.
        read_index: LogIndex,
    },
    /// The read `id` cannot be served; retry, perhaps on another node.
    ReadFailed {
        /// The caller's read.
        id: ReadId,
        /// Why.
        reason: ReadFailure,
    },
    /// The proposal `id` is in this leader's log at `index` in `term`. From here on
    /// its fate is open until this node learns that `index` committed; then it reports
    /// `ProposalCommitted` or `ProposalDropped`, whatever role it plays by then. A
    /// node that stops (or a shell that gives up waiting) before that must treat the
    /// proposal as possibly applied.
    ProposalAccepted {
        /// The caller's proposal.
        id: ProposalId,
        /// Where it sits in the log.
        index: LogIndex,
        /// The term it was appended in.
        term: Term,
    },
    /// The proposal `id` is committed at `index`; its entry has been handed out in an
    /// `Apply` before this action.
    ProposalCommitted {
        /// The caller's proposal.
        id: ProposalId,
        /// Where it sits in the log.
        index: LogIndex,
    },
    /// The proposal `id` will never commit (but see [`DropReason::Unknown`], the one
    /// reason that leaves its fate open).
    ProposalDropped {
        /// The caller's proposal.
        id: ProposalId,
        /// Why.
        reason: DropReason,
    },
    /// This node's role changed.
    RoleChanged {
        /// The new role.
        role: RoleKind,
        /// The term it holds the role in.
        term: Term,
    },
    /// The leader this node knows of changed (None: no known leader).
    LeaderChanged {
        /// The known leader.
        leader: Option<NodeId>,
        /// In which term.
        term: Term,
    },
    /// A leadership transfer ended without the target taking over; this node leads on
    /// (or, if it no longer leads, nothing was transferred).
    TransferAborted {
        /// The target of the transfer.
        to: NodeId,
        /// Why it ended.
        reason: TransferFailure,
    },
    /// An event had no effect, and this is why (for logs, traces and tests).
    Ignored(IgnoreReason),
}

/// Why a proposal was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// This node is not the leader; the hint names the leader it knows of.
    NotLeader {
        /// The leader this node knows of, if any.
        leader_hint: Option<NodeId>,
    },
    /// Another entry committed at the proposal's index: the proposal never
    /// committed and never will. Reported only once this node knows that index
    /// committed; a node whose own copy of the entry was merely truncated keeps
    /// waiting, because another node may still hold the entry and a later leader
    /// may commit it.
    Overwritten,
    /// The leader is handing over leadership and takes no proposals meanwhile.
    Transferring,
    /// The leader holds too many uncommitted bytes (`uncommitted_bytes_max`).
    Overloaded,
    /// A membership change is already in progress, or the leader has not yet
    /// committed an entry of its term (thesis §4.1).
    MembershipChangePending,
    /// The requested membership is not valid (for example: no voters left).
    InvalidMembership,
    /// A snapshot replaced the log before this node could compare the committed
    /// entry with the proposal's: it may or may not have committed. Treat it like a
    /// timeout (retry idempotently), never as "not applied".
    Unknown,
}

/// Why a leadership transfer was aborted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferFailure {
    /// The target did not take over within an election timeout.
    Timeout,
    /// A transfer to another target replaced this one.
    Superseded,
    /// The target is not a voter of the current configuration.
    NotAVoter,
    /// This node is not the leader.
    NotLeader,
}

/// Why an event had no effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IgnoreReason {
    /// The message is addressed to another node.
    WrongRecipient,
    /// The message claims to come from this node.
    FromSelf,
    /// A response from a node this node does not track (not a member, or no longer).
    UnknownSender,
    /// The message's term is older than this node's.
    StaleTerm,
    /// A vote request arrived while this node still hears from a live leader
    /// (leader stickiness, thesis §4.2.3).
    LeaderLease,
    /// The message is a reply to something this node no longer waits for.
    Unexpected,
    /// The message breaks the protocol; the text says how.
    Malformed(&'static str),
    /// `Persisted` reported a sequence number never issued or already reported.
    InvalidPersisted,
    /// `Compact` named an index this node cannot compact to (not applied, already
    /// compacted, or, on a node that joined a running cluster, before the first
    /// configuration entry it holds, where it knows no configuration to record).
    InvalidCompact,
    /// The event is only meaningful on a leader.
    NotLeader,
    /// `Campaign` reached a node that already leads.
    AlreadyLeader,
    /// `Campaign` reached a learner or a node outside the configuration (one whose
    /// removal has not committed yet may still campaign, thesis §4.2.2).
    NotVoter,
}
