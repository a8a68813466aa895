//! A leader's view of one follower's replication: probe, replicate or snapshot, and
//! the inflight window that bounds pipelining in messages and in bytes.

use std::collections::VecDeque;

use crate::snapshot::SnapshotSend;
use crate::types::LogIndex;

/// How the leader currently sends to a follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressState {
    /// The leader does not know where the logs agree: one AppendEntries at a time,
    /// waiting for each answer (or a heartbeat answer) before the next.
    Probe,
    /// The logs agree through `match_index`: AppendEntries are pipelined, bounded by
    /// the inflight window.
    Replicate,
    /// The follower needs entries that were compacted away: a snapshot is in transfer.
    Snapshot,
}

/// AppendEntries messages sent and not yet acknowledged, oldest first.
#[derive(Clone, Debug, Default)]
pub(crate) struct Inflights {
    /// The last index and the entry bytes of each message in flight.
    messages: VecDeque<(LogIndex, u64)>,
    bytes: u64,
}

impl Inflights {
    /// Records a message whose last entry is `last_index`, carrying `bytes`.
    pub(crate) fn add(&mut self, last_index: LogIndex, bytes: u64) {
        if let Some(&(newest, _)) = self.messages.back() {
            debug_assert!(newest < last_index, "inflight messages go in index order");
        }
        self.messages.push_back((last_index, bytes));
        self.bytes += bytes;
    }

    /// Forgets every message whose entries are all at or below `index`.
    pub(crate) fn free_through(&mut self, index: LogIndex) {
        while let Some(&(last, bytes)) = self.messages.front() {
            if last > index {
                break;
            }
            self.messages.pop_front();
            self.bytes -= bytes;
        }
        debug_assert!(!self.messages.is_empty() || self.bytes == 0);
    }

    /// Forgets the oldest message: a heartbeat answer when the window is full means
    /// the follower is alive, and a lost message must not stall replication.
    pub(crate) fn free_oldest(&mut self) {
        if let Some((_, bytes)) = self.messages.pop_front() {
            self.bytes -= bytes;
        }
    }

    /// Whether the window allows no further message.
    pub(crate) fn is_full(&self, msgs_max: usize, bytes_max: u64) -> bool {
        self.messages.len() >= msgs_max || self.bytes >= bytes_max
    }

    /// Messages in flight.
    pub(crate) fn len(&self) -> usize {
        self.messages.len()
    }

    /// Entry bytes in flight.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Forgets everything.
    pub(crate) fn clear(&mut self) {
        self.messages.clear();
        self.bytes = 0;
    }
}

/// The leader's knowledge of one follower (or learner).
///
/// Invariant: `match_index < next_index`.
#[derive(Clone, Debug)]
pub(crate) struct Progress {
    /// The highest index known to be durable on the follower and equal to ours.
    pub(crate) match_index: LogIndex,
    /// The next index to send.
    pub(crate) next_index: LogIndex,
    /// How the leader sends.
    pub(crate) state: ProgressState,
    /// In `Probe`: a probe is out and unanswered; wait before sending another.
    pub(crate) probe_sent: bool,
    /// In `Replicate`: the messages in flight.
    pub(crate) inflights: Inflights,
    /// Heard from the follower since the last CheckQuorum round.
    pub(crate) recent_active: bool,
    /// The newest read round the follower acknowledged.
    pub(crate) read_round_acked: u64,
    /// In `Snapshot`: the transfer under way.
    pub(crate) snapshot_send: Option<SnapshotSend>,
}

impl Progress {
    /// A follower about which nothing is known: probe from the leader's next index.
    pub(crate) fn new(next_index: LogIndex) -> Self {
        debug_assert!(next_index > LogIndex(0));
        Progress {
            match_index: LogIndex(0),
            next_index,
            state: ProgressState::Probe,
            probe_sent: false,
            inflights: Inflights::default(),
            recent_active: false,
            read_round_acked: 0,
            snapshot_send: None,
        }
    }

    /// Whether the leader must wait before sending another AppendEntries.
    pub(crate) fn is_paused(&self, inflight_msgs_max: usize, inflight_bytes_max: u64) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self
                .inflights
                .is_full(inflight_msgs_max, inflight_bytes_max),
            ProgressState::Snapshot => true,
        }
    }

    /// Switches to probing from just after the match index.
    pub(crate) fn become_probe(&mut self) {
        self.state = ProgressState::Probe;
        self.probe_sent = false;
        self.snapshot_send = None;
        self.inflights.clear();
        self.next_index = self.match_index.next();
        self.check();
    }

    /// Switches to pipelined replication from just after the match index.
    pub(crate) fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.probe_sent = false;
        self.snapshot_send = None;
        self.inflights.clear();
        self.next_index = self.match_index.next();
        self.check();
    }

    /// Switches to sending `send`'s snapshot.
    pub(crate) fn become_snapshot(&mut self, send: SnapshotSend) {
        self.state = ProgressState::Snapshot;
        self.probe_sent = false;
        self.inflights.clear();
        self.snapshot_send = Some(send);
    }

    /// Records that the follower holds our log through `index`. Returns whether that
    /// is news.
    pub(crate) fn maybe_update(&mut self, index: LogIndex) -> bool {
        let updated = index > self.match_index;
        if updated {
            self.match_index = index;
            self.probe_sent = false;
        }
        if self.next_index <= index {
            self.next_index = index.next();
        }
        self.check();
        updated
    }

    /// Records that entries through `last_index` were sent (optimistically, in
    /// Replicate) carrying `bytes`.
    pub(crate) fn sent_entries(&mut self, last_index: LogIndex, bytes: u64) {
        match self.state {
            ProgressState::Replicate => {
                self.next_index = last_index.next();
                self.inflights.add(last_index, bytes);
            }
            ProgressState::Probe => self.probe_sent = true,
            ProgressState::Snapshot => debug_assert!(false, "no entries while sending a snapshot"),
        }
        self.check();
    }

    /// Handles a rejection of the AppendEntries whose previous index was
    /// `rejected_index`; `probe_from` is where the leader's log and the follower's
    /// hint agree. Returns false for a stale rejection, which changes nothing.
    pub(crate) fn maybe_decrease_to(
        &mut self,
        rejected_index: LogIndex,
        probe_from: LogIndex,
    ) -> bool {
        match self.state {
            ProgressState::Replicate => {
                // A rejection below what the follower already matched answers an old
                // message; otherwise the pipeline broke (a lost message): probe.
                if rejected_index <= self.match_index {
                    return false;
                }
                self.become_probe();
                true
            }
            ProgressState::Probe => {
                // Only the answer to the probe now out counts.
                if rejected_index != self.next_index.prev() {
                    return false;
                }
                if rejected_index <= self.match_index {
                    // The follower no longer holds an entry it acknowledged: its disk
                    // was lost (or this answer is older than the acknowledgement, in
                    // which case probing again costs a round trip and nothing else).
                    // Probing from what it holds now is the only way it catches up.
                    self.match_index = probe_from.min(rejected_index.prev());
                }
                let next = rejected_index
                    .min(probe_from.next())
                    .max(self.match_index.next());
                self.next_index = next;
                self.probe_sent = false;
                self.check();
                true
            }
            ProgressState::Snapshot => false,
        }
    }

    fn check(&self) {
        debug_assert!(
            self.match_index < self.next_index,
            "match {:?} < next {:?}",
            self.match_index,
            self.next_index
        );
        if self.state != ProgressState::Replicate {
            debug_assert!(self.inflights.len() == 0);
        }
        debug_assert_eq!(
            self.state == ProgressState::Snapshot,
            self.snapshot_send.is_some()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_full_by_messages_or_bytes() {
        let mut inflights = Inflights::default();
        inflights.add(LogIndex(1), 10);
        inflights.add(LogIndex(2), 10);
        assert!(inflights.is_full(2, 1000));
        assert!(!inflights.is_full(3, 1000));
        assert!(inflights.is_full(3, 20));
        inflights.free_through(LogIndex(1));
        assert_eq!(inflights.len(), 1);
        assert_eq!(inflights.bytes(), 10);
    }

    #[test]
    fn stale_probe_rejection_is_ignored() {
        let mut pr = Progress::new(LogIndex(10));
        pr.sent_entries(LogIndex(12), 0);
        assert!(!pr.maybe_decrease_to(LogIndex(5), LogIndex(3)));
        assert!(pr.maybe_decrease_to(LogIndex(9), LogIndex(3)));
        assert_eq!(pr.next_index, LogIndex(4));
        assert!(!pr.probe_sent);
    }

    #[test]
    fn follower_that_lost_acknowledged_entries_is_probed_from_what_it_holds() {
        let mut pr = Progress::new(LogIndex(11));
        pr.maybe_update(LogIndex(10));
        pr.become_probe();
        assert!(pr.maybe_decrease_to(LogIndex(10), LogIndex(0)));
        assert_eq!(pr.match_index, LogIndex(0));
        assert_eq!(pr.next_index, LogIndex(1));
    }

    #[test]
    fn replicate_rejection_falls_back_to_probe() {
        let mut pr = Progress::new(LogIndex(5));
        pr.maybe_update(LogIndex(4));
        pr.become_replicate();
        pr.sent_entries(LogIndex(8), 30);
        assert!(!pr.maybe_decrease_to(LogIndex(3), LogIndex(0)), "stale");
        assert!(pr.maybe_decrease_to(LogIndex(6), LogIndex(0)));
        assert_eq!(pr.state, ProgressState::Probe);
        assert_eq!(pr.next_index, LogIndex(5));
    }
}
