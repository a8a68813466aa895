//! The leader's state and its core duties: the term's start, proposals, the commit
//! rule (§5.4.2), the tick (heartbeats, CheckQuorum) and stepping down. Each other
//! rule has its own file with its own `impl LeaderState`: `replication.rs`,
//! `read_index.rs`, `transfer.rs`, `membership.rs`, `snapshot/`.

use std::collections::BTreeMap;

use crate::action::{Action, DropReason};
use crate::event::Proposal;
use crate::progress::Progress;
use crate::quorum::{joint_majority_value, joint_vote_result, VoteResult};
use crate::read_index::{LeaderReads, Lease};
use crate::role::Next;
use crate::shared::Shared;
use crate::transfer::Transfer;
use crate::types::{Entry, EntryPayload, LogIndex, NodeId};

/// State only a leader has.
#[derive(Debug)]
pub(crate) struct LeaderState {
    /// Every member but this node (and removed members until their removal commits).
    pub(crate) progress: BTreeMap<NodeId, Progress>,
    /// The index of this term's no-op entry: nothing is read before it commits.
    pub(crate) term_start_index: LogIndex,
    pub(crate) heartbeat_elapsed_ticks: u32,
    check_quorum_elapsed_ticks: u32,
    pub(crate) reads: LeaderReads,
    /// The read lease (with `Config::read_lease`).
    pub(crate) lease: Lease,
    pub(crate) transfer: Option<Transfer>,
    /// Bytes of entries appended and not yet committed (bounded by
    /// `uncommitted_bytes_max`).
    pub(crate) uncommitted_bytes: u64,
    /// The index of the newest configuration entry whose commit this leader acted on.
    pub(crate) membership_acted_index: LogIndex,
}

impl LeaderState {
    /// A new leader knows nothing of its followers: probe each from its own log's end.
    pub(crate) fn new(shared: &Shared) -> Self {
        let next_index = shared.log.last_index().next();
        let progress = shared
            .membership()
            .members()
            .into_iter()
            .filter(|&id| id != shared.id)
            .map(|id| (id, Progress::new(next_index)))
            .collect();
        LeaderState {
            progress,
            term_start_index: next_index,
            heartbeat_elapsed_ticks: 0,
            check_quorum_elapsed_ticks: 0,
            reads: LeaderReads::default(),
            lease: Lease::default(),
            transfer: None,
            uncommitted_bytes: 0,
            membership_acted_index: LogIndex(0),
        }
    }

    /// Appends the term's no-op entry (Raft §8) and starts replicating.
    pub(crate) fn start_term(&mut self, shared: &mut Shared) -> Next {
        let noop = Entry {
            term: shared.term,
            index: self.term_start_index,
            payload: EntryPayload::Noop,
        };
        // Entries of earlier terms count too: this leader must commit them.
        let commit = shared.log.commit_index();
        self.uncommitted_bytes = shared
            .log
            .entries_between(commit, shared.log.last_index())
            .iter()
            .map(Entry::size_bytes)
            .sum();
        self.append(shared, vec![noop]);
        self.broadcast_append(shared);
        self.maybe_commit(shared)
    }

    /// Appends entries of this term at the end of the log, counting their bytes as
    /// uncommitted. Every leader append goes through here: a leader never overwrites
    /// or deletes entries in its own log (Leader Append-Only, Raft Figure 3).
    pub(crate) fn append(&mut self, shared: &mut Shared, entries: Vec<Entry>) {
        debug_assert!(!entries.is_empty());
        debug_assert_eq!(
            entries[0].index,
            shared.log.last_index().next(),
            "a leader only appends to its log"
        );
        for entry in &entries {
            debug_assert_eq!(entry.term, shared.term, "a leader appends only its term");
            self.uncommitted_bytes += entry.size_bytes();
            if matches!(entry.payload, EntryPayload::Membership(_)) {
                // The majority that granted the lease may not be one of the new
                // configuration: renew it under the new one first.
                self.lease.forget();
            }
        }
        shared.append_to_log(entries);
    }

    /// One tick: heartbeats, CheckQuorum, transfer and read deadlines.
    pub(crate) fn on_tick(&mut self, shared: &mut Shared) -> Next {
        self.heartbeat_elapsed_ticks += 1;
        if self.heartbeat_elapsed_ticks >= shared.config.heartbeat_interval_ticks {
            self.broadcast_heartbeat(shared);
        }
        self.check_quorum_elapsed_ticks += 1;
        if self.check_quorum_elapsed_ticks >= shared.config.election_timeout_ticks_min {
            self.check_quorum_elapsed_ticks = 0;
            if shared.config.check_quorum && !self.quorum_active(shared) {
                return Next::StepDown;
            }
            for progress in self.progress.values_mut() {
                progress.recent_active = false;
            }
        }
        self.tick_transfer(shared);
        self.expire_reads(shared);
        Next::Stay
    }

    /// Whether a quorum of voters was heard from since the last check.
    fn quorum_active(&self, shared: &Shared) -> bool {
        let vote_of = |id: NodeId| {
            Some(id == shared.id || self.progress.get(&id).is_some_and(|p| p.recent_active))
        };
        joint_vote_result(shared.membership(), vote_of) == VoteResult::Won
    }

    /// Appends proposals and replicates them.
    pub(crate) fn propose(&mut self, shared: &mut Shared, proposals: Vec<Proposal>) {
        if self.transfer.is_some() {
            for Proposal { id, .. } in proposals {
                let reason = DropReason::Transferring;
                shared.out.emit(Action::ProposalDropped { id, reason });
            }
            return;
        }
        let mut entries = Vec::with_capacity(proposals.len());
        let mut accepted = Vec::with_capacity(proposals.len());
        let mut index = shared.log.last_index();
        let mut batch_bytes = 0;
        for Proposal { id, command } in proposals {
            let entry = Entry {
                term: shared.term,
                index: index.next(),
                payload: EntryPayload::Command(command),
            };
            let size = entry.size_bytes();
            // One entry always fits, however large, so that progress is possible.
            let pending_bytes = self.uncommitted_bytes + batch_bytes;
            if pending_bytes > 0 && pending_bytes + size > shared.config.uncommitted_bytes_max {
                let reason = DropReason::Overloaded;
                shared.out.emit(Action::ProposalDropped { id, reason });
                continue;
            }
            index = entry.index;
            batch_bytes += size;
            shared.proposals.track(id, index, shared.term);
            accepted.push(Action::ProposalAccepted {
                id,
                index,
                term: shared.term,
            });
            entries.push(entry);
        }
        if entries.is_empty() {
            return;
        }
        self.append(shared, entries);
        debug_assert_eq!(shared.log.last_index(), index);
        for action in accepted {
            shared.out.emit(action);
        }
        self.broadcast_append(shared);
    }

    /// The commit rule: the highest index a majority holds, counting this node only
    /// up to what it has persisted, and only if it is of the current term (Raft
    /// §5.4.2, the Figure 8 case).
    pub(crate) fn maybe_commit(&mut self, shared: &mut Shared) -> Next {
        let own_id = shared.id;
        let own_persisted = shared.log.persisted_index();
        let progress = &self.progress;
        let quorum_index = joint_majority_value(shared.membership(), |id| {
            if id == own_id {
                own_persisted.0
            } else {
                progress.get(&id).map_or(0, |p| p.match_index.0)
            }
        });
        let index = LogIndex(quorum_index).min(shared.log.last_index());
        let commit = shared.log.commit_index();
        if index <= commit || shared.log.term_at(index) != Some(shared.term) {
            return Next::Stay;
        }
        let committed_bytes: u64 = shared
            .log
            .entries_between(commit, index)
            .iter()
            .map(Entry::size_bytes)
            .sum();
        self.uncommitted_bytes = self.uncommitted_bytes.saturating_sub(committed_bytes);
        shared.commit_to(index);
        self.release_reads(shared);
        self.after_membership_commit(shared)
    }

    /// Leaving the role: fail what waits on this leader.
    pub(crate) fn step_down(&mut self, shared: &mut Shared, new_leader: Option<NodeId>) {
        self.fail_all_reads(shared);
        self.end_transfer(shared, new_leader);
    }

    /// Debug-build check of the leader's invariants.
    pub(crate) fn check(&self, shared: &Shared) {
        debug_assert!(!self.progress.contains_key(&shared.id));
        for progress in self.progress.values() {
            debug_assert!(progress.match_index <= shared.log.last_index());
            debug_assert!(progress.match_index < progress.next_index);
        }
        debug_assert!(self.term_start_index <= shared.log.last_index());
        if self.term_start_index >= shared.log.snapshot_index() {
            debug_assert_eq!(shared.log.term_at(self.term_start_index), Some(shared.term));
        }
    }
}
