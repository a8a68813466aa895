//! A node's simulated disk: writes are volatile until an fsync completes, fsyncs take
//! time, and a crash keeps only what is durable.
//!
//! The window between a write and its `Persisted` report is real: the world steps
//! `Event::Persisted { through }` only when the fsync that covers `through` completes,
//! and a crash in between loses the write. A crash may also keep an in-order prefix of
//! the unsynced writes (the platter got some of them), which a correct core must
//! survive just the same.

use std::collections::VecDeque;

use raft_core::{Entry, HardState, LogIndex, PersistSeq, Restored, Snapshot, Term};

use crate::rng::SimRng;

/// The most writes waiting for an fsync. The core issues a handful per step and the
/// disk syncs continually, so reaching this means the node is out of control.
pub const WRITES_PENDING_MAX: usize = 1 << 16;

/// One persistence action, as the core asked for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// Replace the hard state.
    HardState(HardState),
    /// Drop durable entries at or after `entries[0].index`, then append.
    Append(Vec<Entry>),
    /// Keep the snapshot; drop the log it covers (all of it with `discard_log`).
    Snapshot {
        /// The snapshot.
        snapshot: Snapshot,
        /// Drop every entry, not only those the snapshot covers.
        discard_log: bool,
    },
}

/// A write the core asked for that the durable state cannot take: a contract breach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteError {
    /// The write's sequence number.
    pub seq: PersistSeq,
    /// What is wrong.
    pub reason: String,
}

/// What survives a crash.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DurableState {
    /// The last durable hard state.
    pub hard_state: HardState,
    /// The last durable snapshot.
    pub snapshot: Option<Snapshot>,
    /// The durable log after the snapshot (or from index 1), consecutive.
    pub entries: Vec<Entry>,
    /// The highest sequence number made durable.
    pub seq: PersistSeq,
}

impl DurableState {
    /// The index of the last durable entry (or of the snapshot, or 0).
    pub fn last_index(&self) -> LogIndex {
        self.entries
            .last()
            .map(|e| e.index)
            .unwrap_or_else(|| self.snapshot_index())
    }

    /// The last index the durable snapshot covers (0 without one).
    pub fn snapshot_index(&self) -> LogIndex {
        self.snapshot
            .as_ref()
            .map_or(LogIndex(0), |s| s.meta.last_index)
    }

    /// The term of the durable entry at `index`, including the snapshot's last one.
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == LogIndex(0) {
            return Some(Term(0));
        }
        if let Some(s) = &self.snapshot {
            if index == s.meta.last_index {
                return Some(s.meta.last_term);
            }
        }
        let first = self.entries.first()?.index;
        let offset = index.0.checked_sub(first.0)? as usize;
        self.entries.get(offset).map(|e| e.term)
    }

    fn apply(&mut self, seq: PersistSeq, write: Write) -> Result<(), WriteError> {
        let fail = |reason: String| Err(WriteError { seq, reason });
        match write {
            Write::HardState(hard_state) => self.hard_state = hard_state,
            Write::Append(entries) => {
                let Some(first) = entries.first().map(|e| e.index) else {
                    return fail("AppendToLog with no entries".into());
                };
                if first <= self.snapshot_index() {
                    return fail(format!(
                        "AppendToLog at {first} inside the durable snapshot (through {})",
                        self.snapshot_index()
                    ));
                }
                if first > self.last_index().next() {
                    return fail(format!(
                        "AppendToLog at {first} leaves a gap after the durable log end {}",
                        self.last_index()
                    ));
                }
                self.entries.retain(|e| e.index < first);
                self.entries.extend(entries);
            }
            Write::Snapshot {
                snapshot,
                discard_log,
            } => {
                let last = snapshot.meta.last_index;
                if discard_log {
                    self.entries.clear();
                } else {
                    self.entries.retain(|e| e.index > last);
                    if self.entries.first().is_some_and(|e| e.index != last.next()) {
                        // The kept suffix does not continue the snapshot: a gap.
                        self.entries.clear();
                    }
                }
                self.snapshot = Some(snapshot);
            }
        }
        self.seq = seq;
        Ok(())
    }

    /// What a restarting node loads: exactly this durable state. The state machine is
    /// in memory and restored from the snapshot, so `applied` is the snapshot's index.
    pub fn restored(&self) -> Restored {
        Restored {
            hard_state: self.hard_state,
            snapshot: self.snapshot.clone(),
            entries: self.entries.clone(),
            applied: self.snapshot_index(),
        }
    }
}

/// One node's disk.
#[derive(Clone, Debug, Default)]
pub struct SimDisk {
    durable: DurableState,
    /// Written, not yet durable, in sequence order.
    pending: VecDeque<(PersistSeq, Write)>,
    /// The fsync under way, if any: it covers writes through this sequence number.
    syncing_through: Option<PersistSeq>,
    /// Bumped at every crash, so that an fsync completion scheduled before the crash
    /// is recognized as stale.
    epoch: u32,
}

/// What a crash did to the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrashLoss {
    /// Unsynced writes that reached the platter anyway.
    pub writes_kept: usize,
    /// Unsynced writes lost.
    pub writes_lost: usize,
}

impl SimDisk {
    /// An empty disk.
    pub fn new() -> Self {
        SimDisk::default()
    }

    /// What is durable now.
    pub fn durable(&self) -> &DurableState {
        &self.durable
    }

    /// The crash epoch (fsync completions carry it).
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The number of writes not yet durable.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Whether log entries were written and are not yet durable.
    pub fn has_unsynced_append(&self) -> bool {
        self.pending
            .iter()
            .any(|(_, write)| matches!(write, Write::Append(_)))
    }

    /// Accepts a write; it is volatile until an fsync covers it.
    pub fn write(&mut self, seq: PersistSeq, write: Write) -> Result<(), WriteError> {
        let last_seq = self.pending.back().map_or(self.durable.seq, |(s, _)| *s);
        if seq <= last_seq {
            return Err(WriteError {
                seq,
                reason: format!("persist sequence {seq} not above the previous {last_seq}"),
            });
        }
        if self.pending.len() >= WRITES_PENDING_MAX {
            return Err(WriteError {
                seq,
                reason: format!("more than {WRITES_PENDING_MAX} writes pending"),
            });
        }
        self.pending.push_back((seq, write));
        Ok(())
    }

    /// Starts an fsync of everything written so far, unless one is under way or there
    /// is nothing to sync. Returns the sequence number it will cover.
    pub fn start_fsync(&mut self) -> Option<PersistSeq> {
        if self.syncing_through.is_some() {
            return None;
        }
        let (through, _) = self.pending.back()?;
        self.syncing_through = Some(*through);
        self.syncing_through
    }

    /// Completes the fsync started in `epoch`: its writes become durable. Returns the
    /// sequence number now durable, or None for a completion from before a crash.
    pub fn complete_fsync(&mut self, epoch: u32) -> Result<Option<PersistSeq>, WriteError> {
        if epoch != self.epoch {
            return Ok(None);
        }
        let Some(through) = self.syncing_through.take() else {
            return Ok(None);
        };
        let bound = self.pending.len();
        for _ in 0..bound {
            match self.pending.front() {
                Some((seq, _)) if *seq <= through => {
                    let (seq, write) = self.pending.pop_front().expect("front exists");
                    self.durable.apply(seq, write)?;
                }
                _ => break,
            }
        }
        debug_assert_eq!(self.durable.seq, through);
        Ok(Some(through))
    }

    /// The node crashed: unsynced writes are lost, except perhaps an in-order prefix
    /// of them (drawn from `rng`), and an fsync under way never completes.
    pub fn crash(&mut self, rng: &mut SimRng) -> Result<CrashLoss, WriteError> {
        let pending = self.pending.len() as u64;
        let kept = if pending > 0 && rng.chance(crate::rng::Ppm::from_percent(50.0)) {
            rng.between(0, pending) as usize
        } else {
            0
        };
        for _ in 0..kept {
            let (seq, write) = self.pending.pop_front().expect("kept <= pending");
            self.durable.apply(seq, write)?;
        }
        let lost = self.pending.len();
        self.pending.clear();
        // Sequence numbers are per process lifetime: the restarted core counts anew.
        self.durable.seq = PersistSeq(0);
        self.syncing_through = None;
        self.epoch += 1;
        Ok(CrashLoss {
            writes_kept: kept,
            writes_lost: lost,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::StreamKind;
    use raft_core::{EntryPayload, NodeId};

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            term: Term(term),
            index: LogIndex(index),
            payload: EntryPayload::Noop,
        }
    }

    fn vote(term: u64, for_node: u64) -> Write {
        Write::HardState(HardState {
            term: Term(term),
            voted_for: Some(NodeId(for_node)),
        })
    }

    #[test]
    fn writes_become_durable_only_when_the_fsync_completes() {
        let mut disk = SimDisk::new();
        disk.write(PersistSeq(1), vote(1, 2)).unwrap();
        assert_eq!(disk.start_fsync(), Some(PersistSeq(1)));
        assert_eq!(disk.durable().hard_state, HardState::default());
        assert_eq!(disk.complete_fsync(disk.epoch()), Ok(Some(PersistSeq(1))));
        assert_eq!(disk.durable().hard_state.term, Term(1));
    }

    #[test]
    fn an_fsync_covers_only_writes_issued_before_it_started() {
        let mut disk = SimDisk::new();
        disk.write(PersistSeq(1), Write::Append(vec![entry(1, 1)]))
            .unwrap();
        disk.start_fsync();
        disk.write(PersistSeq(2), Write::Append(vec![entry(2, 1)]))
            .unwrap();
        assert_eq!(disk.start_fsync(), None, "one fsync at a time");
        assert_eq!(disk.complete_fsync(0), Ok(Some(PersistSeq(1))));
        assert_eq!(disk.durable().last_index(), LogIndex(1));
        assert_eq!(disk.start_fsync(), Some(PersistSeq(2)));
    }

    #[test]
    fn a_crash_loses_unsynced_writes_and_voids_the_fsync() {
        let mut rng = SimRng::new(1, StreamKind::Disk);
        let mut lost_any = false;
        for _ in 0..20 {
            let mut disk = SimDisk::new();
            disk.write(PersistSeq(1), vote(1, 1)).unwrap();
            disk.start_fsync();
            let loss = disk.crash(&mut rng).unwrap();
            assert_eq!(loss.writes_kept + loss.writes_lost, 1);
            lost_any |= loss.writes_lost == 1;
            assert_eq!(disk.complete_fsync(0), Ok(None), "stale completion");
            assert_eq!(disk.pending_len(), 0);
        }
        assert!(lost_any, "some crash must lose the unsynced vote");
    }

    #[test]
    fn append_truncates_the_conflicting_suffix() {
        let mut disk = SimDisk::new();
        let writes = [
            Write::Append(vec![entry(1, 1), entry(2, 1), entry(3, 1)]),
            Write::Append(vec![entry(2, 2)]),
        ];
        for (i, w) in writes.into_iter().enumerate() {
            disk.write(PersistSeq(i as u64 + 1), w).unwrap();
        }
        disk.start_fsync();
        disk.complete_fsync(0).unwrap();
        let terms: Vec<_> = disk.durable().entries.iter().map(|e| e.term.0).collect();
        assert_eq!(terms, [1, 2]);
    }

    #[test]
    fn a_gap_in_the_log_is_a_contract_breach() {
        let mut disk = SimDisk::new();
        disk.write(PersistSeq(1), Write::Append(vec![entry(3, 1)]))
            .unwrap();
        disk.start_fsync();
        let err = disk.complete_fsync(0).unwrap_err();
        assert!(err.reason.contains("gap"), "{err:?}");
    }

    #[test]
    fn sequence_numbers_must_increase() {
        let mut disk = SimDisk::new();
        disk.write(PersistSeq(2), vote(1, 1)).unwrap();
        assert!(disk.write(PersistSeq(2), vote(1, 1)).is_err());
    }

    #[test]
    fn a_snapshot_replaces_the_prefix_and_restores_with_its_index() {
        let mut disk = SimDisk::new();
        disk.write(
            PersistSeq(1),
            Write::Append((1..=5).map(|i| entry(i, 1)).collect()),
        )
        .unwrap();
        let mut snapshot = Snapshot::default();
        snapshot.meta.last_index = LogIndex(3);
        snapshot.meta.last_term = Term(1);
        snapshot.meta.membership = raft_core::Membership::new([NodeId(1)]);
        disk.write(
            PersistSeq(2),
            Write::Snapshot {
                snapshot,
                discard_log: false,
            },
        )
        .unwrap();
        disk.start_fsync();
        disk.complete_fsync(0).unwrap();
        let restored = disk.durable().restored();
        assert_eq!(restored.applied, LogIndex(3));
        let indexes: Vec<_> = restored.entries.iter().map(|e| e.index.0).collect();
        assert_eq!(indexes, [4, 5]);
        assert_eq!(disk.durable().term_at(LogIndex(3)), Some(Term(1)));
        assert_eq!(disk.durable().term_at(LogIndex(2)), None);
    }
}
