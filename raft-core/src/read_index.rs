//! Linearizable reads (ReadIndex, thesis §6.4). The leader records its commit index,
//! confirms it still leads with a round of heartbeats, and answers once that round is
//! acknowledged by a majority and the index is committed; reads arriving while a
//! round is in flight ride on the next one. A follower forwards its reads to the
//! leader and serves them once its own apply index reaches the leader's answer.
//! Every read fails after `read_timeout_ticks` instead of hanging.
//!
//! With `Config::read_lease`, a leader that a majority acknowledged recently answers
//! at once instead (thesis §6.4.1): see [`Lease`].

use std::collections::VecDeque;

use crate::action::{Action, IgnoreReason};
use crate::message::{MessageBody, ReadFailure};
use crate::quorum::joint_majority_value;
use crate::role::leader::LeaderState;
use crate::shared::Shared;
use crate::types::{LogIndex, NodeId, ReadId};

/// Rounds a lease remembers unconfirmed; older ones are forgotten (which only
/// shortens the lease). A leader sends one round per heartbeat interval and steps
/// down (CheckQuorum) when a majority is silent for an election timeout, so far
/// fewer are ever outstanding.
const LEASE_ROUNDS_MAX: usize = 1024;

/// A leader's read lease, when `Config::read_lease` is on. A majority that
/// acknowledged a heartbeat round sent at tick t ignores candidates until after
/// t + `read_lease_ticks` of this leader's ticks (see
/// [`Config::read_lease_ticks`](crate::Config::read_lease_ticks)), so no other leader
/// can exist before then, and reads need no round of their own.
#[derive(Debug, Default)]
pub(crate) struct Lease {
    /// Rounds sent and the tick each left at, oldest first, until confirmed.
    rounds_sent: VecDeque<(u64, u64)>,
    /// Reads may be answered without a round before this tick.
    until_tick: u64,
    /// A TimeoutNow went out: its target campaigns past every voter's lease, so no
    /// lease holds for the rest of this leadership.
    revoked: bool,
}

impl Lease {
    /// Round `round` left at `now_tick`.
    fn round_sent(&mut self, round: u64, now_tick: u64) {
        if let Some(&(newest, _)) = self.rounds_sent.back() {
            debug_assert!(newest < round, "rounds only grow");
        }
        if self.rounds_sent.len() >= LEASE_ROUNDS_MAX {
            self.rounds_sent.pop_front();
        }
        self.rounds_sent.push_back((round, now_tick));
    }

    /// At `now_tick`, a majority acknowledged every round through `round`: the lease
    /// runs `lease_ticks` from the newest such round's send, never from now (an
    /// acknowledgement that took long to arrive vouches only for the time its round
    /// left).
    fn confirmed(&mut self, round: u64, lease_ticks: u32, now_tick: u64) {
        while let Some(&(sent, sent_tick)) = self.rounds_sent.front() {
            if sent > round {
                break;
            }
            debug_assert!(sent_tick <= now_tick, "a round is confirmed after it left");
            self.rounds_sent.pop_front();
            self.until_tick = self.until_tick.max(sent_tick + u64::from(lease_ticks));
        }
    }

    /// Whether the lease holds at `now_tick`.
    fn holds(&self, now_tick: u64) -> bool {
        !self.revoked && now_tick < self.until_tick
    }

    /// Ends the lease until a round is confirmed again (the configuration changed).
    pub(crate) fn forget(&mut self) {
        self.until_tick = 0;
    }

    /// Ends the lease for good (a TimeoutNow went out).
    pub(crate) fn revoke(&mut self) {
        self.revoked = true;
    }
}

/// Who asked for a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadOrigin {
    /// The leader's own client.
    Local,
    /// A follower, on behalf of its client.
    Forwarded(NodeId),
}

/// A read waiting at the leader.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PendingRead {
    pub(crate) id: ReadId,
    pub(crate) origin: ReadOrigin,
    /// The commit index when the read arrived (at least the term's first entry).
    pub(crate) read_index: LogIndex,
    /// The heartbeat round, started after the read arrived, that must be confirmed.
    pub(crate) round: u64,
    /// The tick at which the read fails if still unconfirmed.
    pub(crate) deadline_tick: u64,
}

/// The leader's reads, in arrival order. Rounds and read indexes only grow along the
/// queue, so reads are released from the front.
#[derive(Debug, Default)]
pub(crate) struct LeaderReads {
    pending: VecDeque<PendingRead>,
    /// The newest heartbeat round broadcast.
    round_sent: u64,
}

impl LeaderReads {
    /// The newest round broadcast.
    pub(crate) fn round_sent(&self) -> u64 {
        self.round_sent
    }

    /// Starts a new round; returns its number.
    pub(crate) fn start_round(&mut self) -> u64 {
        self.round_sent += 1;
        self.round_sent
    }

    /// Whether a read waits for a round not yet broadcast.
    pub(crate) fn wants_new_round(&self) -> bool {
        self.pending
            .back()
            .is_some_and(|r| r.round > self.round_sent)
    }

    /// Queues a read that needs the next round to be confirmed.
    pub(crate) fn push(
        &mut self,
        id: ReadId,
        origin: ReadOrigin,
        read_index: LogIndex,
        deadline_tick: u64,
    ) {
        let read = PendingRead {
            id,
            origin,
            read_index,
            round: self.round_sent + 1,
            deadline_tick,
        };
        if let Some(newest) = self.pending.back() {
            debug_assert!(newest.read_index <= read.read_index);
            debug_assert!(newest.round <= read.round);
        }
        self.pending.push_back(read);
    }

    /// Reads pending.
    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }

    /// Removes and returns the reads whose round is confirmed and whose index is
    /// committed.
    pub(crate) fn take_ready(
        &mut self,
        confirmed_round: u64,
        commit: LogIndex,
    ) -> Vec<PendingRead> {
        let mut ready = Vec::new();
        while let Some(front) = self.pending.front() {
            if front.round > confirmed_round || front.read_index > commit {
                break;
            }
            ready.push(self.pending.pop_front().expect("front exists"));
        }
        ready
    }

    /// Removes and returns the reads whose deadline has passed.
    pub(crate) fn take_expired(&mut self, now_tick: u64) -> Vec<PendingRead> {
        let mut expired = Vec::new();
        while let Some(front) = self.pending.front() {
            if front.deadline_tick > now_tick {
                break;
            }
            expired.push(self.pending.pop_front().expect("front exists"));
        }
        expired
    }

    /// Removes and returns every pending read (the node stops leading).
    pub(crate) fn take_all(&mut self) -> Vec<PendingRead> {
        self.pending.drain(..).collect()
    }
}

/// A read this follower forwarded to the leader.
#[derive(Clone, Copy, Debug)]
struct ForwardedRead {
    id: ReadId,
    deadline_tick: u64,
    /// The leader's answer, once it came.
    read_index: Option<LogIndex>,
}

/// Reads forwarded to a leader, waiting for its answer and then for the local apply
/// index to reach the answer.
#[derive(Debug, Default)]
pub(crate) struct ForwardedReads {
    reads: VecDeque<ForwardedRead>,
}

impl ForwardedReads {
    /// Records a forwarded read.
    pub(crate) fn push(&mut self, id: ReadId, deadline_tick: u64) {
        self.reads.push_back(ForwardedRead {
            id,
            deadline_tick,
            read_index: None,
        });
    }

    /// Reads waiting.
    pub(crate) fn len(&self) -> usize {
        self.reads.len()
    }

    /// Records the leader's answer for `id`. Returns false if no such read waits (a
    /// duplicate or a late answer).
    pub(crate) fn answered(&mut self, id: ReadId, read_index: LogIndex) -> bool {
        match self
            .reads
            .iter_mut()
            .find(|r| r.id == id && r.read_index.is_none())
        {
            Some(read) => {
                read.read_index = Some(read_index);
                true
            }
            None => false,
        }
    }

    /// Removes the read `id` (the leader refused it). Returns whether it waited.
    pub(crate) fn remove(&mut self, id: ReadId) -> bool {
        let before = self.reads.len();
        self.reads.retain(|r| r.id != id || r.read_index.is_some());
        self.reads.len() != before
    }

    /// Removes and returns the reads that are answered and applied through.
    pub(crate) fn take_ready(&mut self, applied: LogIndex) -> Vec<(ReadId, LogIndex)> {
        let mut ready = Vec::new();
        self.reads.retain(|r| match r.read_index {
            Some(index) if index <= applied => {
                ready.push((r.id, index));
                false
            }
            _ => true,
        });
        ready
    }

    /// Removes and returns the reads whose deadline has passed.
    pub(crate) fn take_expired(&mut self, now_tick: u64) -> Vec<ReadId> {
        let mut expired = Vec::new();
        self.reads.retain(|r| {
            let keep = r.deadline_tick > now_tick;
            if !keep {
                expired.push(r.id);
            }
            keep
        });
        expired
    }
}

impl LeaderState {
    /// Fails the reads whose deadline has passed.
    pub(crate) fn expire_reads(&mut self, shared: &mut Shared) {
        for read in self.reads.take_expired(shared.now_tick) {
            answer_read(shared, read.id, read.origin, Err(ReadFailure::Timeout));
        }
    }

    /// Fails every read waiting on this leader (it stops leading).
    pub(crate) fn fail_all_reads(&mut self, shared: &mut Shared) {
        for read in self.reads.take_all() {
            answer_read(shared, read.id, read.origin, Err(ReadFailure::NotLeader));
        }
    }

    /// A linearizable read, from this node's client or a follower's.
    pub(crate) fn on_read(&mut self, shared: &mut Shared, id: ReadId, origin: ReadOrigin) {
        if self.lease_holds(shared) {
            let read_index = shared.log.commit_index();
            debug_assert!(read_index >= self.term_start_index);
            self.answer_ready(shared, id, origin, read_index);
            return;
        }
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

    /// Whether a read may be answered now from the lease: it holds, and this term's
    /// first entry committed (before that, the commit index may be behind).
    fn lease_holds(&self, shared: &Shared) -> bool {
        shared.config.read_lease
            && self.lease.holds(shared.now_tick)
            && shared.log.commit_index() >= self.term_start_index
    }

    /// Starts a heartbeat round; returns its number.
    pub(crate) fn start_read_round(&mut self, shared: &Shared) -> u64 {
        let round = self.reads.start_round();
        if shared.config.read_lease {
            self.lease.round_sent(round, shared.now_tick);
        }
        round
    }

    /// Extends the lease to the newest round a majority acknowledged.
    pub(crate) fn renew_lease(&mut self, shared: &Shared) {
        if shared.config.read_lease {
            let confirmed = self.confirmed_round(shared);
            self.lease
                .confirmed(confirmed, shared.config.read_lease_ticks(), shared.now_tick);
        }
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
            self.answer_ready(shared, read.id, read.origin, read.read_index);
        }
        if self.reads.wants_new_round() && confirmed >= self.reads.round_sent() {
            self.broadcast_heartbeat(shared);
        }
    }
}

impl LeaderState {
    /// Answers a read that may be served at `read_index`.
    fn answer_ready(
        &mut self,
        shared: &mut Shared,
        id: ReadId,
        origin: ReadOrigin,
        read_index: LogIndex,
    ) {
        answer_read(shared, id, origin, Ok(read_index));
        if let ReadOrigin::Forwarded(peer) = origin {
            // The follower applies up to the read index only once it knows it is
            // committed: tell it now rather than at the next heartbeat.
            self.send_heartbeat(shared, peer);
        }
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

impl Shared {
    /// A read on a non-leader: ask the leader for a read index (thesis §6.4).
    pub(crate) fn forward_read(&mut self, id: ReadId) {
        let Some(leader) = self.leader else {
            self.fail_read(id, ReadFailure::NoLeader);
            return;
        };
        if self.forwarded_reads.len() >= self.config.pending_reads_max {
            self.fail_read(id, ReadFailure::Overloaded);
            return;
        }
        self.forwarded_reads.push(id, self.read_deadline_tick());
        self.send_now(leader, MessageBody::ReadIndexRequest { id });
    }

    /// The leader's answer to a forwarded read.
    pub(crate) fn on_read_index_response(
        &mut self,
        id: ReadId,
        result: Result<LogIndex, ReadFailure>,
    ) {
        match result {
            Ok(read_index) => {
                if !self.forwarded_reads.answered(id, read_index) {
                    self.out.emit(Action::Ignored(IgnoreReason::Unexpected));
                    return;
                }
                self.release_forwarded_reads();
            }
            Err(reason) => {
                if self.forwarded_reads.remove(id) {
                    self.fail_read(id, reason);
                } else {
                    self.out.emit(Action::Ignored(IgnoreReason::Unexpected));
                }
            }
        }
    }

    /// Fails the forwarded reads whose deadline has passed.
    pub(crate) fn expire_forwarded_reads(&mut self) {
        if self.forwarded_reads.len() == 0 {
            return;
        }
        for id in self.forwarded_reads.take_expired(self.now_tick) {
            self.fail_read(id, ReadFailure::Timeout);
        }
    }

    /// Reports the forwarded reads whose index has been applied.
    pub(crate) fn release_forwarded_reads(&mut self) {
        if self.forwarded_reads.len() == 0 {
            return;
        }
        for (id, read_index) in self.forwarded_reads.take_ready(self.log.applied_index()) {
            self.out.emit(Action::ReadReady { id, read_index });
        }
    }

    /// Reports a read as failed.
    pub(crate) fn fail_read(&mut self, id: ReadId, reason: ReadFailure) {
        self.out.emit(Action::ReadFailed { id, reason });
    }

    /// The deadline tick of a read starting now.
    pub(crate) fn read_deadline_tick(&self) -> u64 {
        self.now_tick + u64::from(self.config.read_timeout_ticks)
    }
}
