//! The in-memory log: the entries after the last snapshot, and the indexes that move
//! along it (persisted, committed, applied).
//!
//! Invariants: entries are consecutive from `snapshot_index + 1`; terms never
//! decrease along the log; `applied <= commit <= last`; `persisted <= last`.

use std::collections::VecDeque;

use crate::types::{Entry, LogIndex, PersistSeq, Term};

/// A durable write of log entries not yet reported done: its sequence number, the
/// first index it overwrites, and the log's last index once it is applied.
#[derive(Clone, Copy, Debug)]
struct PendingWrite {
    seq: PersistSeq,
    truncate_from: LogIndex,
    last_index: LogIndex,
}

/// The log since the last snapshot.
#[derive(Clone, Debug)]
pub(crate) struct RaftLog {
    snapshot_index: LogIndex,
    snapshot_term: Term,
    entries: Vec<Entry>,
    commit_index: LogIndex,
    applied_index: LogIndex,
    /// The durable log agrees with this one through here.
    persisted_index: LogIndex,
    pending_writes: VecDeque<PendingWrite>,
}

impl RaftLog {
    /// A log restored from durable storage: everything restored is durable, and the
    /// application has applied through `applied`, which is therefore committed.
    pub(crate) fn restore(
        snapshot_index: LogIndex,
        snapshot_term: Term,
        entries: Vec<Entry>,
        applied: LogIndex,
    ) -> Self {
        let applied = applied.max(snapshot_index);
        let log = RaftLog {
            snapshot_index,
            snapshot_term,
            entries,
            commit_index: applied,
            applied_index: applied,
            persisted_index: LogIndex(0),
            pending_writes: VecDeque::new(),
        };
        let last = log.last_index();
        RaftLog {
            persisted_index: last,
            ..log
        }
    }

    /// The index of the last entry the snapshot covers (0: no snapshot).
    pub(crate) fn snapshot_index(&self) -> LogIndex {
        self.snapshot_index
    }

    /// The term of the snapshot's last entry.
    pub(crate) fn snapshot_term(&self) -> Term {
        self.snapshot_term
    }

    /// The first index held in memory.
    pub(crate) fn first_index(&self) -> LogIndex {
        self.snapshot_index.next()
    }

    /// The last index (the snapshot's if no entries follow it).
    pub(crate) fn last_index(&self) -> LogIndex {
        LogIndex(self.snapshot_index.0 + self.entries.len() as u64)
    }

    /// The term of the last entry.
    pub(crate) fn last_term(&self) -> Term {
        self.entries.last().map_or(self.snapshot_term, |e| e.term)
    }

    /// The term at `index`, if known (compacted indexes other than the snapshot's
    /// last, and indexes past the end, are unknown).
    pub(crate) fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.snapshot_index {
            return Some(self.snapshot_term);
        }
        self.entry(index).map(|e| e.term)
    }

    /// The entry at `index`, if held.
    pub(crate) fn entry(&self, index: LogIndex) -> Option<&Entry> {
        let offset = index.0.checked_sub(self.first_index().0)?;
        self.entries.get(usize::try_from(offset).ok()?)
    }

    /// Every entry held.
    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entries held in `(after, through]`.
    pub(crate) fn entries_between(&self, after: LogIndex, through: LogIndex) -> &[Entry] {
        let first = self.first_index().0;
        let start = (after.0 + 1).max(first) - first;
        let end = (through.0 + 1).max(first) - first;
        let end = (end as usize).min(self.entries.len());
        self.entries.get(start as usize..end).unwrap_or(&[])
    }

    /// Entries from `from`, at most `count_max` of them and at most `bytes_max` bytes
    /// (but at least one if any), with their total size.
    pub(crate) fn entries_from(
        &self,
        from: LogIndex,
        count_max: usize,
        bytes_max: u64,
    ) -> (Vec<Entry>, u64) {
        debug_assert!(from >= self.first_index());
        let start = (from.0 - self.first_index().0) as usize;
        let available = self.entries.get(start..).unwrap_or(&[]);
        let mut bytes = 0;
        let mut count = 0;
        for entry in available.iter().take(count_max) {
            let size = entry.size_bytes();
            if count > 0 && bytes + size > bytes_max {
                break;
            }
            bytes += size;
            count += 1;
        }
        (available[..count].to_vec(), bytes)
    }

    /// Whether our entry at `index` has `term`.
    pub(crate) fn matches(&self, index: LogIndex, term: Term) -> bool {
        self.term_at(index) == Some(term)
    }

    /// Whether a log ending at (`last_index`, `last_term`) is at least as up to date
    /// as ours (Raft §5.4.1).
    pub(crate) fn is_up_to_date(&self, last_index: LogIndex, last_term: Term) -> bool {
        last_term > self.last_term()
            || (last_term == self.last_term() && last_index >= self.last_index())
    }

    /// The largest index at or before `index` whose term is at most `term`, and that
    /// term. Terms never decrease along the log, so this is a binary search.
    pub(crate) fn last_index_with_term_at_most(
        &self,
        index: LogIndex,
        term: Term,
    ) -> (LogIndex, Term) {
        let index = index.min(self.last_index());
        if index <= self.snapshot_index {
            return (self.snapshot_index, self.snapshot_term);
        }
        let held = &self.entries[..(index.0 - self.snapshot_index.0) as usize];
        let count = held.partition_point(|e| e.term <= term);
        if count == 0 {
            (self.snapshot_index, self.snapshot_term)
        } else {
            let entry = &held[count - 1];
            (entry.index, entry.term)
        }
    }

    /// The position in `entries` of the first one that is not already in the log
    /// with the same term, if any.
    pub(crate) fn first_new_entry(&self, entries: &[Entry]) -> Option<usize> {
        entries.iter().position(|e| !self.matches(e.index, e.term))
    }

    /// Appends `entries`, first discarding every entry at or after the first one's
    /// index. The caller must not discard committed entries.
    pub(crate) fn truncate_and_append(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first() else { return };
        debug_assert!(
            first.index > self.commit_index,
            "never overwrite a committed entry"
        );
        debug_assert!(
            first.index <= self.last_index().next(),
            "no gaps in the log"
        );
        let keep = (first.index.0 - self.first_index().0) as usize;
        self.entries.truncate(keep);
        // The durable copy of the replaced entries no longer agrees with ours.
        self.persisted_index = self.persisted_index.min(first.index.prev());
        self.entries.extend_from_slice(entries);
        self.check();
    }

    /// Records that a durable write (`seq`) was issued that rewrites the log from
    /// `truncate_from`: the durable log no longer agrees with ours beyond it.
    pub(crate) fn write_issued(&mut self, seq: PersistSeq, truncate_from: LogIndex) {
        self.persisted_index = self.persisted_index.min(truncate_from.prev());
        let write = PendingWrite {
            seq,
            truncate_from,
            last_index: self.last_index(),
        };
        if let Some(newest) = self.pending_writes.back() {
            debug_assert!(newest.seq < seq);
        }
        self.pending_writes.push_back(write);
    }

    /// Records that every write through `through` is durable.
    pub(crate) fn writes_persisted(&mut self, through: PersistSeq) {
        let mut newest_done = None;
        while let Some(write) = self.pending_writes.front() {
            if write.seq > through {
                break;
            }
            newest_done = Some(write.last_index);
            self.pending_writes.pop_front();
        }
        let Some(mut persisted) = newest_done else {
            return;
        };
        for later in &self.pending_writes {
            persisted = persisted.min(later.truncate_from.prev());
        }
        self.persisted_index = persisted.min(self.last_index());
    }

    /// The durable log agrees with this one through here.
    pub(crate) fn persisted_index(&self) -> LogIndex {
        self.persisted_index
    }

    /// The highest index known committed.
    pub(crate) fn commit_index(&self) -> LogIndex {
        self.commit_index
    }

    /// The highest index handed to the application.
    pub(crate) fn applied_index(&self) -> LogIndex {
        self.applied_index
    }

    /// Raises the commit index to `index` (never lowers it). Returns whether it moved.
    pub(crate) fn commit_to(&mut self, index: LogIndex) -> bool {
        let index = index.min(self.last_index());
        if index <= self.commit_index {
            return false;
        }
        self.commit_index = index;
        true
    }

    /// The committed entries not yet handed to the application; marks them applied.
    pub(crate) fn take_unapplied(&mut self) -> Vec<Entry> {
        if self.applied_index >= self.commit_index {
            return Vec::new();
        }
        let first = self.first_index();
        let start = (self.applied_index.0 + 1 - first.0) as usize;
        let end = (self.commit_index.0 + 1 - first.0) as usize;
        self.applied_index = self.commit_index;
        self.entries[start..end].to_vec()
    }

    /// Discards entries through `up_to` (which must be applied), keeping its term as
    /// the new snapshot boundary.
    pub(crate) fn compact(&mut self, up_to: LogIndex) {
        debug_assert!(up_to <= self.applied_index);
        debug_assert!(up_to > self.snapshot_index);
        let term = self
            .term_at(up_to)
            .expect("an applied index past the snapshot is held");
        let drop = (up_to.0 - self.snapshot_index.0) as usize;
        self.entries.drain(..drop);
        self.snapshot_index = up_to;
        self.snapshot_term = term;
        self.check();
    }

    /// Replaces the log's prefix through a snapshot received from the leader. If our
    /// entry at the snapshot's last index agrees, the entries after it are kept;
    /// otherwise the whole log is replaced. Returns whether entries were kept.
    pub(crate) fn install_snapshot(&mut self, last_index: LogIndex, last_term: Term) -> bool {
        debug_assert!(last_index > self.commit_index);
        let keep_suffix = self.matches(last_index, last_term);
        if keep_suffix {
            let drop = (last_index.0 - self.snapshot_index.0) as usize;
            self.entries.drain(..drop);
        } else {
            self.entries.clear();
            // Until the snapshot is durable, the disk agrees with us only on what was
            // committed before: the rest of its log is being replaced.
            self.persisted_index = self.persisted_index.min(self.commit_index);
        }
        self.snapshot_index = last_index;
        self.snapshot_term = last_term;
        self.commit_index = last_index;
        self.applied_index = last_index;
        self.check();
        keep_suffix
    }

    /// Debug-build check of the log's invariants.
    pub(crate) fn check(&self) {
        if cfg!(debug_assertions) {
            debug_assert!(self.applied_index <= self.commit_index);
            debug_assert!(self.commit_index <= self.last_index());
            debug_assert!(self.persisted_index <= self.last_index());
            if let Some(first) = self.entries.first() {
                debug_assert_eq!(first.index, self.snapshot_index.next());
                debug_assert!(first.term >= self.snapshot_term);
            }
            for pair in self.entries.windows(2) {
                debug_assert_eq!(pair[1].index, pair[0].index.next());
                debug_assert!(pair[1].term >= pair[0].term);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::EntryPayload;

    fn log_with_terms(terms: &[u64]) -> RaftLog {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(i, &t)| Entry {
                term: Term(t),
                index: LogIndex(i as u64 + 1),
                payload: EntryPayload::Noop,
            })
            .collect();
        RaftLog::restore(LogIndex(0), Term(0), entries, LogIndex(0))
    }

    #[test]
    fn term_search_finds_last_entry_not_newer() {
        let log = log_with_terms(&[1, 1, 2, 2, 2, 5, 5]);
        assert_eq!(
            log.last_index_with_term_at_most(LogIndex(7), Term(4)),
            (LogIndex(5), Term(2))
        );
        assert_eq!(
            log.last_index_with_term_at_most(LogIndex(3), Term(9)),
            (LogIndex(3), Term(2))
        );
        assert_eq!(
            log.last_index_with_term_at_most(LogIndex(7), Term(0)),
            (LogIndex(0), Term(0))
        );
        assert_eq!(
            log.last_index_with_term_at_most(LogIndex(99), Term(5)),
            (LogIndex(7), Term(5))
        );
    }

    #[test]
    fn persisted_index_waits_for_the_write_and_respects_later_truncation() {
        let mut log = log_with_terms(&[1, 1]);
        assert_eq!(log.persisted_index(), LogIndex(2));
        let e = |i, t| Entry {
            term: Term(t),
            index: LogIndex(i),
            payload: EntryPayload::Noop,
        };
        log.truncate_and_append(&[e(3, 1), e(4, 1)]);
        log.write_issued(PersistSeq(1), LogIndex(3));
        log.truncate_and_append(&[e(4, 2)]);
        log.write_issued(PersistSeq(2), LogIndex(4));
        assert_eq!(log.persisted_index(), LogIndex(2));
        log.writes_persisted(PersistSeq(1));
        assert_eq!(
            log.persisted_index(),
            LogIndex(3),
            "index 4 on disk is the old term's"
        );
        log.writes_persisted(PersistSeq(2));
        assert_eq!(log.persisted_index(), LogIndex(4));
    }

    #[test]
    fn compaction_keeps_the_boundary_term() {
        let mut log = log_with_terms(&[1, 2, 3]);
        log.commit_to(LogIndex(3));
        let applied = log.take_unapplied();
        assert_eq!(applied.len(), 3);
        log.compact(LogIndex(2));
        assert_eq!(log.first_index(), LogIndex(3));
        assert_eq!(log.term_at(LogIndex(2)), Some(Term(2)));
        assert_eq!(log.term_at(LogIndex(1)), None);
        assert_eq!(log.last_index(), LogIndex(3));
    }
}
