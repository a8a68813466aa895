//! The leader: its term's start, proposals, the commit rule, heartbeats and
//! CheckQuorum, reads, leadership transfer and membership changes. Sending entries
//! and snapshots lives in `replication.rs`.

use std::collections::BTreeMap;

use crate::action::{Action, DropReason, IgnoreReason, TransferFailure};
use crate::event::{MembershipChange, Proposal};
use crate::message::{MessageBody, ReadFailure};
use crate::progress::Progress;
use crate::quorum::{joint_majority_value, joint_vote_result, VoteResult};
use crate::read_index::{LeaderReads, ReadOrigin};
use crate::role::Next;
use crate::shared::Shared;
use crate::types::{Entry, EntryPayload, LogIndex, Membership, NodeId, ProposalId, ReadId};

/// A leadership transfer under way.
#[derive(Clone, Copy, Debug)]
struct Transfer {
    to: NodeId,
    elapsed_ticks: u32,
}

/// State only a leader has.
#[derive(Debug)]
pub(crate) struct LeaderState {
    /// Every member but this node (and removed members until their removal commits).
    pub(crate) progress: BTreeMap<NodeId, Progress>,
    /// The index of this term's no-op entry: nothing is read before it commits.
    term_start_index: LogIndex,
    pub(crate) heartbeat_elapsed_ticks: u32,
    check_quorum_elapsed_ticks: u32,
    pub(crate) reads: LeaderReads,
    transfer: Option<Transfer>,
    /// Bytes of entries appended and not yet committed (bounded by
    /// `uncommitted_bytes_max`).
    uncommitted_bytes: u64,
    /// The index of the newest configuration entry whose commit this leader acted on.
    membership_acted_index: LogIndex,
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
        debug_assert_eq!(noop.index, shared.log.last_index().next());
        shared.append_to_log(vec![noop]);
        let commit = shared.log.commit_index();
        self.uncommitted_bytes = shared
            .log
            .entries_between(commit, shared.log.last_index())
            .iter()
            .map(Entry::size_bytes)
            .sum();
        self.broadcast_append(shared);
        self.maybe_commit(shared)
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
        if let Some(transfer) = &mut self.transfer {
            transfer.elapsed_ticks += 1;
            if transfer.elapsed_ticks >= shared.config.election_timeout_ticks_min {
                self.abort_transfer(shared, TransferFailure::Timeout);
            }
        }
        for read in self.reads.take_expired(shared.now_tick) {
            answer_read(shared, read.id, read.origin, Err(ReadFailure::Timeout));
        }
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
        for Proposal { id, command } in proposals {
            let entry = Entry {
                term: shared.term,
                index: index.next(),
                payload: EntryPayload::Command(command),
            };
            let size = entry.size_bytes();
            // One entry always fits, however large, so that progress is possible.
            if self.uncommitted_bytes > 0
                && self.uncommitted_bytes + size > shared.config.uncommitted_bytes_max
            {
                let reason = DropReason::Overloaded;
                shared.out.emit(Action::ProposalDropped { id, reason });
                continue;
            }
            index = entry.index;
            self.uncommitted_bytes += size;
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
        shared.append_to_log(entries);
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

    // ---- reads (thesis §6.4) ----

    /// A linearizable read, from this node's client or a follower's.
    pub(crate) fn on_read(&mut self, shared: &mut Shared, id: ReadId, origin: ReadOrigin) {
        if self.reads.len() >= shared.config.pending_reads_max {
            answer_read(shared, id, origin, Err(ReadFailure::Overloaded));
            return;
        }
        // Until the term's no-op commits, this leader may not know the latest commit
        // index: the read waits for it.
        let read_index = shared.log.commit_index().max(self.term_start_index);
        self.reads
            .push(id, origin, read_index, shared.read_deadline_tick());
        if self.confirmed_round(shared) >= self.reads.round_sent() {
            // No round is in flight: start one for this read now. Otherwise the read
            // rides on the round that starts when the one in flight is confirmed.
            self.broadcast_heartbeat(shared);
        }
        self.release_reads(shared);
    }

    /// The newest read round a majority has acknowledged.
    fn confirmed_round(&self, shared: &Shared) -> u64 {
        let round_sent = self.reads.round_sent();
        joint_majority_value(shared.membership(), |id| {
            if id == shared.id {
                round_sent
            } else {
                self.progress.get(&id).map_or(0, |p| p.read_round_acked)
            }
        })
    }

    /// Answers the reads whose round is confirmed and whose index is committed; starts
    /// the next round if reads wait for one.
    pub(crate) fn release_reads(&mut self, shared: &mut Shared) {
        if self.reads.len() == 0 {
            return;
        }
        let confirmed = self.confirmed_round(shared);
        for read in self.reads.take_ready(confirmed, shared.log.commit_index()) {
            answer_read(shared, read.id, read.origin, Ok(read.read_index));
            if let ReadOrigin::Forwarded(peer) = read.origin {
                // The follower applies up to the read index only once it knows it is
                // committed: tell it now rather than at the next heartbeat.
                self.send_heartbeat(shared, peer);
            }
        }
        if self.reads.wants_new_round() && confirmed >= self.reads.round_sent() {
            self.broadcast_heartbeat(shared);
        }
    }

    // ---- leadership transfer (thesis §3.10) ----

    /// Starts handing leadership to `to`: catch it up, then tell it to campaign.
    pub(crate) fn transfer_leadership(&mut self, shared: &mut Shared, to: NodeId) {
        if to == shared.id {
            shared.out.emit(Action::Ignored(IgnoreReason::Unexpected));
            return;
        }
        if !shared.membership().is_voter(to) || !self.progress.contains_key(&to) {
            let reason = TransferFailure::NotAVoter;
            shared.out.emit(Action::TransferAborted { to, reason });
            return;
        }
        if let Some(current) = self.transfer {
            if current.to == to {
                return;
            }
            self.abort_transfer(shared, TransferFailure::Superseded);
        }
        self.transfer = Some(Transfer {
            to,
            elapsed_ticks: 0,
        });
        self.maybe_send_timeout_now(shared, to);
        self.send_append_to(shared, to, true);
    }

    /// Sends TimeoutNow if `peer` is the transfer target and has our whole log.
    pub(crate) fn maybe_send_timeout_now(&mut self, shared: &mut Shared, peer: NodeId) {
        let is_target = self.transfer.is_some_and(|t| t.to == peer);
        let caught_up = self
            .progress
            .get(&peer)
            .is_some_and(|p| p.match_index == shared.log.last_index());
        if is_target && caught_up {
            shared.send_now(peer, MessageBody::TimeoutNow);
        }
    }

    fn abort_transfer(&mut self, shared: &mut Shared, reason: TransferFailure) {
        if let Some(transfer) = self.transfer.take() {
            let to = transfer.to;
            shared.out.emit(Action::TransferAborted { to, reason });
        }
    }

    // ---- membership changes (thesis §4.3) ----

    /// Appends the configuration entry for `changes`: a joint configuration when the
    /// voters change, a simple one when only learners do.
    pub(crate) fn change_membership(
        &mut self,
        shared: &mut Shared,
        id: ProposalId,
        changes: &[MembershipChange],
    ) {
        let drop = |shared: &mut Shared, reason| {
            shared.out.emit(Action::ProposalDropped { id, reason });
        };
        if self.transfer.is_some() {
            return drop(shared, DropReason::Transferring);
        }
        let commit = shared.log.commit_index();
        let change_pending =
            shared.memberships.current_index() > commit || shared.membership().is_joint();
        // The rule that fixes the single-server change bug (Ongaro, 2015): no
        // configuration entry before an entry of this term has committed.
        if change_pending || commit < self.term_start_index {
            return drop(shared, DropReason::MembershipChangePending);
        }
        let Some(target) = target_membership(shared.membership(), changes) else {
            return drop(shared, DropReason::InvalidMembership);
        };
        let entry = Entry {
            term: shared.term,
            index: shared.log.last_index().next(),
            payload: EntryPayload::Membership(Box::new(target)),
        };
        let (index, term) = (entry.index, entry.term);
        self.uncommitted_bytes += entry.size_bytes();
        shared.proposals.track(id, index, term);
        shared.append_to_log(vec![entry]);
        shared
            .out
            .emit(Action::ProposalAccepted { id, index, term });
        self.sync_progress(shared);
        self.broadcast_append(shared);
    }

    /// After a commit: leave a committed joint configuration, stop tracking members
    /// whose removal committed, and step down if this node was removed.
    fn after_membership_commit(&mut self, shared: &mut Shared) -> Next {
        let current_index = shared.memberships.current_index();
        if current_index > shared.log.commit_index() || current_index == self.membership_acted_index
        {
            return Next::Stay;
        }
        self.membership_acted_index = current_index;
        self.sync_progress(shared);
        let membership = shared.membership().clone();
        if membership.is_joint() {
            let leave = Membership {
                voters: membership.voters.clone(),
                voters_outgoing: Default::default(),
                learners: membership
                    .learners
                    .difference(&membership.voters)
                    .copied()
                    .collect(),
            };
            let entry = Entry {
                term: shared.term,
                index: shared.log.last_index().next(),
                payload: EntryPayload::Membership(Box::new(leave)),
            };
            self.uncommitted_bytes += entry.size_bytes();
            shared.append_to_log(vec![entry]);
            self.sync_progress(shared);
            self.broadcast_append(shared);
            return Next::Stay;
        }
        if !membership.is_voter(shared.id) && shared.config.step_down_when_removed {
            // Hand over to the most caught-up voter so the cluster need not wait for an
            // election timeout.
            let last = shared.log.last_index();
            let successor = self
                .progress
                .iter()
                .filter(|(id, p)| membership.is_voter(**id) && p.match_index == last)
                .map(|(id, _)| *id)
                .next();
            if let Some(successor) = successor {
                shared.send_now(successor, MessageBody::TimeoutNow);
            }
            return Next::StepDown;
        }
        Next::Stay
    }

    /// Tracks the members of the current configuration and of the committed one (so
    /// a removed member still receives the entry that removes it), and a removed
    /// member until it holds the newest configuration entry. Then it gets one last
    /// heartbeat carrying the commit index: a removed node that never learns that
    /// its removal committed keeps campaigning, as it must while the removal may
    /// still be undone (thesis §4.2.2), and without PreVote or CheckQuorum its
    /// campaigns would disrupt the cluster. Removed members are few (each was a
    /// member once), and a new leader tracks none of them.
    pub(super) fn sync_progress(&mut self, shared: &mut Shared) {
        let mut members = shared.membership().members();
        members.extend(shared.memberships.at(shared.log.commit_index()).members());
        members.remove(&shared.id);
        let commit = shared.log.commit_index();
        let config_index = shared.memberships.current_index();
        let mut released = Vec::new();
        self.progress.retain(|id, progress| {
            let departing = progress.match_index < config_index;
            if !members.contains(id) && !departing {
                released.push((*id, commit.min(progress.match_index)));
            }
            members.contains(id) || departing
        });
        for (id, commit) in released {
            let read_round = 0;
            shared.send_now(id, MessageBody::Heartbeat { commit, read_round });
        }
        let next_index = shared.log.last_index().next();
        for id in members {
            self.progress
                .entry(id)
                .or_insert_with(|| Progress::new(next_index));
        }
    }

    /// Leaving the role: fail what waits on this leader.
    pub(crate) fn step_down(&mut self, shared: &mut Shared, new_leader: Option<NodeId>) {
        for read in self.reads.take_all() {
            answer_read(shared, read.id, read.origin, Err(ReadFailure::NotLeader));
        }
        if let Some(transfer) = self.transfer.take() {
            // Stepping down for the target's campaign is the transfer working; only a
            // different leader means it failed.
            if new_leader.is_some_and(|leader| leader != transfer.to) {
                let (to, reason) = (transfer.to, TransferFailure::NotLeader);
                shared.out.emit(Action::TransferAborted { to, reason });
            }
        }
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

    /// Whether a transfer is under way.
    pub(crate) fn is_transferring(&self) -> bool {
        self.transfer.is_some()
    }
}

/// Answers a read: to the local client, or to the follower that forwarded it.
fn answer_read(
    shared: &mut Shared,
    id: ReadId,
    origin: ReadOrigin,
    result: Result<LogIndex, ReadFailure>,
) {
    match (origin, result) {
        (ReadOrigin::Local, Ok(read_index)) => {
            shared.out.emit(Action::ReadReady { id, read_index });
        }
        (ReadOrigin::Local, Err(reason)) => shared.fail_read(id, reason),
        (ReadOrigin::Forwarded(peer), result) => {
            shared.send_now(peer, MessageBody::ReadIndexResponse { id, result });
        }
    }
}

/// The membership `changes` lead to from `current` (which is not joint): joint if
/// the voters change. None if the result is not a valid configuration.
fn target_membership(current: &Membership, changes: &[MembershipChange]) -> Option<Membership> {
    debug_assert!(!current.is_joint());
    let mut voters = current.voters.clone();
    let mut learners = current.learners.clone();
    for change in changes {
        match *change {
            MembershipChange::AddLearner(id) => {
                voters.remove(&id);
                learners.insert(id);
            }
            MembershipChange::AddVoter(id) => {
                learners.remove(&id);
                voters.insert(id);
            }
            MembershipChange::Remove(id) => {
                voters.remove(&id);
                learners.remove(&id);
            }
        }
    }
    if voters.is_empty() || voters.iter().chain(&learners).any(|id| !id.is_valid()) {
        return None;
    }
    let voters_outgoing = if voters == current.voters {
        Default::default()
    } else {
        current.voters.clone()
    };
    Some(Membership {
        voters,
        voters_outgoing,
        learners,
    })
}
