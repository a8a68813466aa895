//! Linearizable reads (ReadIndex, thesis §6.4): the leader's queue of reads waiting
//! for a heartbeat round to confirm its leadership, and a follower's reads waiting
//! for the leader's answer and then for its own apply index.

use std::collections::VecDeque;

use crate::types::{LogIndex, NodeId, ReadId};

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
