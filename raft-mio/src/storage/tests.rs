//! Storage tests: recovery after crashes (torn tails at every offset), refusal of
//! corruption, truncation, rollover, snapshots.

use std::fs;
use std::path::{Path, PathBuf};

use raft_core::{
    Action, Entry, EntryPayload, HardState, LogIndex, Membership, NodeId, PersistSeq, Snapshot,
    SnapshotMeta, Term,
};

use super::record::RECORD_HEADER_BYTES;
use super::segment::segment_file_name;
use super::{Storage, StorageError, StorageOptions};

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        term: Term(term),
        index: LogIndex(index),
        payload: EntryPayload::Command(format!("command {index}").as_str().into()),
    }
}

fn entries(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
    range.map(|i| entry(i, term)).collect()
}

fn small_segments() -> StorageOptions {
    StorageOptions {
        segment_bytes_max: 256,
        fsync: true,
        ..StorageOptions::default()
    }
}

/// Segments preallocated to one page, so tests that rewrite a file stay cheap.
fn page_segments() -> StorageOptions {
    StorageOptions {
        segment_bytes_max: 4096,
        fsync: true,
        ..StorageOptions::default()
    }
}

struct Seq(u64);
impl Seq {
    fn next(&mut self) -> PersistSeq {
        self.0 += 1;
        PersistSeq(self.0)
    }
}

fn append(storage: &mut Storage, seq: &mut Seq, entries: Vec<Entry>) {
    storage
        .write(&Action::AppendToLog {
            seq: seq.next(),
            entries,
        })
        .unwrap();
}

fn first_segment(dir: &Path) -> PathBuf {
    dir.join(segment_file_name(LogIndex(1)))
}

/// The record offsets of a segment and the end of its valid data (the file itself is
/// longer: preallocated zeros follow).
fn record_spans(path: &Path) -> (Vec<usize>, usize) {
    let bytes = fs::read(path).unwrap();
    let scanned = super::segment::scan_segment(path, LogIndex(1), &bytes, true).unwrap();
    let offsets = scanned.offsets.iter().map(|o| *o as usize).collect();
    (offsets, scanned.valid_bytes as usize)
}

#[test]
fn a_synced_log_and_hard_state_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let hs = HardState {
        term: Term(3),
        voted_for: Some(NodeId(2)),
    };
    {
        let (mut storage, restored) = Storage::open(dir.path(), StorageOptions::default()).unwrap();
        assert_eq!(restored, Default::default());
        let mut seq = Seq(0);
        storage
            .write(&Action::PersistHardState {
                seq: seq.next(),
                hard_state: hs,
            })
            .unwrap();
        append(&mut storage, &mut seq, entries(1..=5, 3));
        assert_eq!(storage.sync().unwrap(), Some(PersistSeq(2)));
        assert_eq!(storage.sync().unwrap(), None, "nothing new to report");
    }
    let (_storage, restored) = Storage::open(dir.path(), StorageOptions::default()).unwrap();
    assert_eq!(restored.hard_state, hs);
    assert_eq!(restored.entries, entries(1..=5, 3));
    restored.validate().unwrap();
}

#[test]
fn a_torn_tail_at_every_byte_offset_of_the_last_record_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut storage, _) = Storage::open(dir.path(), page_segments()).unwrap();
        append(&mut storage, &mut Seq(0), entries(1..=3, 1));
        storage.sync().unwrap();
    }
    let path = first_segment(dir.path());
    let whole = fs::read(&path).unwrap();
    let (offsets, end) = record_spans(&path);
    let last_start = offsets[2];
    for cut in last_start..end {
        // A crash mid-write leaves the record's prefix, then either nothing (the file
        // ends) or the preallocated zeros.
        for zeros_after in [false, true] {
            let mut torn = whole[..cut].to_vec();
            if zeros_after {
                torn.resize(whole.len(), 0);
            }
            fs::write(&path, &torn).unwrap();
            let (mut storage, restored) = Storage::open(dir.path(), page_segments()).unwrap();
            assert_eq!(restored.entries, entries(1..=2, 1), "cut at byte {cut}");
            let after = fs::read(&path).unwrap();
            assert!(
                after[last_start..].iter().all(|b| *b == 0),
                "torn bytes left behind (cut {cut})"
            );
            // The log goes on after the cut, and the new entry survives another reopen.
            append(&mut storage, &mut Seq(0), entries(3..=3, 1));
            storage.sync().unwrap();
            drop(storage);
            let (_, restored) = Storage::open(dir.path(), page_segments()).unwrap();
            assert_eq!(restored.entries, entries(1..=3, 1));
        }
    }
}

#[test]
fn a_flipped_bit_in_the_middle_is_refused_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut storage, _) = Storage::open(dir.path(), page_segments()).unwrap();
        append(&mut storage, &mut Seq(0), entries(1..=10, 1));
        storage.sync().unwrap();
    }
    let path = first_segment(dir.path());
    let mut bytes = fs::read(&path).unwrap();
    let (offsets, _) = record_spans(&path);
    let fourth = offsets[3];
    // A bit in the fourth record's payload, then separately in its length.
    for flip_at in [fourth + RECORD_HEADER_BYTES + 2, fourth] {
        bytes[flip_at] ^= 0x10;
        fs::write(&path, &bytes).unwrap();
        let err = Storage::open(dir.path(), page_segments()).unwrap_err();
        match &err {
            StorageError::Corrupt {
                path: p, offset, ..
            } => {
                assert_eq!(p, &path);
                assert_eq!(*offset, fourth as u64);
            }
            other => panic!("expected corruption, got {other}"),
        }
        assert!(
            err.to_string().contains("log-00000000000000000001.seg"),
            "{err}"
        );
        assert!(
            err.to_string().contains(&format!("offset {fourth}")),
            "{err}"
        );
        bytes[flip_at] ^= 0x10;
    }
    fs::write(&path, &bytes).unwrap();
    let (_, restored) = Storage::open(dir.path(), page_segments()).unwrap();
    assert_eq!(restored.entries, entries(1..=10, 1));
}

#[test]
fn a_conflicting_suffix_is_truncated_and_stays_truncated_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let mut seq = Seq(0);
    {
        let (mut storage, _) = Storage::open(dir.path(), small_segments()).unwrap();
        append(&mut storage, &mut seq, entries(1..=20, 1));
        storage.sync().unwrap();
        assert!(
            storage.segment_count() >= 3,
            "the test needs several segments"
        );
        // A new leader's entries overwrite everything from index 6 on.
        append(&mut storage, &mut seq, entries(6..=8, 2));
        storage.sync().unwrap();
        assert_eq!(storage.last_index(), LogIndex(8));
    }
    let (mut storage, restored) = Storage::open(dir.path(), small_segments()).unwrap();
    let mut expected = entries(1..=5, 1);
    expected.extend(entries(6..=8, 2));
    assert_eq!(restored.entries, expected);
    // Truncating inside the unsynced buffer works too.
    append(&mut storage, &mut seq, entries(9..=12, 2));
    append(&mut storage, &mut seq, entries(10..=10, 3));
    storage.sync().unwrap();
    drop(storage);
    let (_, restored) = Storage::open(dir.path(), small_segments()).unwrap();
    assert_eq!(restored.entries.last().unwrap(), &entry(10, 3));
    assert_eq!(restored.entries.len(), 10);
}

#[test]
fn a_sealed_segment_with_a_short_record_is_corruption_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut storage, _) = Storage::open(dir.path(), small_segments()).unwrap();
        append(&mut storage, &mut Seq(0), entries(1..=20, 1));
        storage.sync().unwrap();
    }
    let path = first_segment(dir.path());
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
    let err = Storage::open(dir.path(), small_segments()).unwrap_err();
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
}

fn snapshot(last_index: u64, last_term: u64) -> Snapshot {
    Snapshot {
        meta: SnapshotMeta {
            last_index: LogIndex(last_index),
            last_term: Term(last_term),
            membership: Membership::new([NodeId(1), NodeId(2), NodeId(3)]),
        },
        data: b"state".as_slice().into(),
    }
}

#[test]
fn a_snapshot_drops_whole_segments_below_it_and_recovery_starts_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut seq = Seq(0);
    let hs = HardState {
        term: Term(1),
        voted_for: None,
    };
    {
        let (mut storage, _) = Storage::open(dir.path(), small_segments()).unwrap();
        storage
            .write(&Action::PersistHardState {
                seq: seq.next(),
                hard_state: hs,
            })
            .unwrap();
        append(&mut storage, &mut seq, entries(1..=30, 1));
        let segments_before = storage.segment_count();
        let action = Action::PersistSnapshot {
            seq: seq.next(),
            snapshot: Box::new(snapshot(20, 1)),
            discard_log: false,
        };
        storage.write(&action).unwrap();
        storage.sync().unwrap();
        assert!(storage.segment_count() < segments_before);
        assert!(!first_segment(dir.path()).exists());
    }
    let (_, restored) = Storage::open(dir.path(), small_segments()).unwrap();
    assert_eq!(restored.snapshot, Some(snapshot(20, 1)));
    assert_eq!(restored.applied, LogIndex(20));
    assert_eq!(restored.entries, entries(21..=30, 1));
    restored.validate().unwrap();
}

#[test]
fn a_snapshot_beyond_or_against_the_log_replaces_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut seq = Seq(0);
    {
        let (mut storage, _) = Storage::open(dir.path(), small_segments()).unwrap();
        storage
            .write(&Action::PersistHardState {
                seq: seq.next(),
                hard_state: HardState {
                    term: Term(5),
                    voted_for: None,
                },
            })
            .unwrap();
        append(&mut storage, &mut seq, entries(1..=10, 1));
        // A leader's snapshot that disagrees with this log at its last index.
        let action = Action::PersistSnapshot {
            seq: seq.next(),
            snapshot: Box::new(snapshot(8, 4)),
            discard_log: true,
        };
        storage.write(&action).unwrap();
        append(&mut storage, &mut seq, entries(9..=9, 5));
        storage.sync().unwrap();
    }
    let (_, restored) = Storage::open(dir.path(), small_segments()).unwrap();
    assert_eq!(restored.snapshot, Some(snapshot(8, 4)));
    assert_eq!(restored.entries, entries(9..=9, 5));
    restored.validate().unwrap();
}

#[test]
fn a_crash_between_snapshot_and_log_reset_discards_the_disagreeing_log() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut storage, _) = Storage::open(dir.path(), StorageOptions::default()).unwrap();
        append(&mut storage, &mut Seq(0), entries(1..=10, 1));
        storage.sync().unwrap();
    }
    // Only the snapshot file made it to disk; the old log is still there.
    super::snapshot_file::write_snapshot(dir.path(), &snapshot(8, 2)).unwrap();
    let (_, restored) = Storage::open(dir.path(), StorageOptions::default()).unwrap();
    assert_eq!(restored.entries, Vec::new());
    assert_eq!(restored.snapshot, Some(snapshot(8, 2)));
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_storage, _) = Storage::open(dir.path(), StorageOptions::default()).unwrap();
    let err = Storage::open(dir.path(), StorageOptions::default()).unwrap_err();
    assert!(matches!(err, StorageError::Locked { .. }), "{err}");
}
