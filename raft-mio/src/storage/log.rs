//! The durable log: a chain of segment files, appended to, truncated at a conflicting
//! suffix, and dropped whole below a snapshot.
//!
//! Writes are buffered in memory and reach the active segment in one `write` per
//! [`SegmentedLog::sync`], followed by one `fdatasync` (group commit). Rare structural
//! changes (rolling over to a new segment, deleting segments) make themselves durable
//! at once, so that the chain of segments on disk is always consecutive.

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use raft_core::{Entry, LogIndex};

use super::error::StorageError;
use super::faults::StorageFaults;
use super::fsutil::{preallocate, remove_if_exists, sync_dir};
use super::record::{begin_record, finish_record};
use super::segment::{
    encode_segment_header, parse_segment_file_name, scan_segment, segment_file_name, tail_is_zeros,
    SEGMENT_HEADER_BYTES,
};
use crate::encoding::encode_entry;

/// A segment on disk: where it starts and where each of its records is.
#[derive(Debug)]
struct Segment {
    path: PathBuf,
    first_index: LogIndex,
    /// The byte offset of each entry's record, in index order.
    offsets: Vec<u64>,
    /// The file's length once everything buffered is written.
    len_bytes: u64,
}

impl Segment {
    fn last_index(&self) -> LogIndex {
        LogIndex(self.first_index.0 + self.offsets.len() as u64).prev()
    }
}

/// The segmented, append-only log of one node.
#[derive(Debug)]
pub struct SegmentedLog {
    dir: PathBuf,
    /// Segments in index order; the last one is active (open for appends).
    segments: Vec<Segment>,
    /// Shared with a sync job on the fsync thread while it runs.
    active: Arc<File>,
    /// Records encoded but not yet written to `active`.
    pending: Vec<u8>,
    /// The active file's length on disk (what was written, synced or not).
    written_bytes: u64,
    /// The index of the last entry (buffered or written); `first_index - 1` if empty.
    last_index: LogIndex,
    /// A segment rolls over once it holds this many bytes.
    segment_bytes_max: u64,
    /// Whether `active` has writes not yet fsynced.
    dirty: bool,
    /// Injected faults (tests only; none by default).
    faults: StorageFaults,
}

/// What [`SegmentedLog::open`] recovered.
#[derive(Debug)]
pub struct RecoveredLog {
    /// The log, ready for appends after the last recovered entry.
    pub log: SegmentedLog,
    /// Every valid entry on disk, consecutive.
    pub entries: Vec<Entry>,
    /// How many bytes of torn tail were cut off (zero after a clean shutdown).
    pub torn_bytes: u64,
}

impl SegmentedLog {
    /// Opens the log of `dir`, recovering it: every segment is checked, a torn tail of
    /// the last one is truncated, corruption anywhere else is refused. A directory with
    /// no segment gets a fresh one starting at `first_index_if_empty`.
    pub fn open(
        dir: &Path,
        first_index_if_empty: LogIndex,
        segment_bytes_max: u64,
    ) -> Result<RecoveredLog, StorageError> {
        debug_assert!(segment_bytes_max > SEGMENT_HEADER_BYTES as u64);
        let names = list_segments(dir)?;
        let mut segments = Vec::with_capacity(names.len());
        let mut entries = Vec::new();
        let mut torn_bytes = 0;
        for (i, (first_index, path)) in names.iter().enumerate() {
            debug_assert!(i == 0 || names[i - 1].0 < *first_index);
            let is_last = i + 1 == names.len();
            let bytes = fs::read(path).map_err(StorageError::io(path, "read"))?;
            let chain_start = segments.last().map(|s: &Segment| s.last_index().next());
            if let Some(chain_start) = chain_start.filter(|start| start != first_index) {
                return Err(StorageError::corrupt(
                    path,
                    0,
                    format!("segment starts at {first_index} but the previous one ends before {chain_start}"),
                ));
            }
            let scanned = scan_segment(path, *first_index, &bytes, is_last)?;
            if scanned.torn && !tail_is_zeros(&bytes, scanned.valid_bytes) {
                torn_bytes = bytes.len() as u64 - scanned.valid_bytes;
                tracing::warn!(
                    path = %path.display(),
                    offset = scanned.valid_bytes,
                    torn_bytes,
                    "truncating a torn tail left by a crash"
                );
            }
            entries.extend(scanned.entries);
            segments.push(Segment {
                path: scanned.path,
                first_index: scanned.first_index,
                offsets: scanned.offsets,
                len_bytes: scanned.valid_bytes,
            });
        }
        let log = match segments.pop() {
            None => SegmentedLog::create(dir, first_index_if_empty, segment_bytes_max, Vec::new())?,
            Some(last) => SegmentedLog::reopen(dir, segments, last, segment_bytes_max)?,
        };
        debug_assert_eq!(
            log.last_index,
            entries.last().map_or(log.last_index, |e| e.index)
        );
        Ok(RecoveredLog {
            log,
            entries,
            torn_bytes,
        })
    }

    /// Starts a new log (or a new last segment) at `first_index`.
    fn create(
        dir: &Path,
        first_index: LogIndex,
        segment_bytes_max: u64,
        segments: Vec<Segment>,
    ) -> Result<SegmentedLog, StorageError> {
        let first_index = LogIndex(first_index.0.max(1));
        let (active, segment) = create_segment(dir, first_index, segment_bytes_max)?;
        let mut all = segments;
        all.push(segment);
        Ok(SegmentedLog {
            dir: dir.to_path_buf(),
            segments: all,
            active: Arc::new(active),
            pending: Vec::new(),
            written_bytes: SEGMENT_HEADER_BYTES as u64,
            last_index: first_index.prev(),
            segment_bytes_max,
            dirty: false,
            faults: StorageFaults::default(),
        })
    }

    /// Reopens the recovered last segment for appends, cutting any torn tail.
    fn reopen(
        dir: &Path,
        segments: Vec<Segment>,
        last: Segment,
        segment_bytes_max: u64,
    ) -> Result<SegmentedLog, StorageError> {
        if last.len_bytes == 0 {
            // Its header was torn: write the segment anew.
            remove_if_exists(&last.path)?;
            return SegmentedLog::create(dir, last.first_index, segment_bytes_max, segments);
        }
        let mut active = OpenOptions::new()
            .write(true)
            .open(&last.path)
            .map_err(StorageError::io(&last.path, "open"))?;
        // Cut the torn tail (and the old preallocation), then preallocate afresh, so
        // no stale byte can ever follow the records written from here on.
        active
            .set_len(last.len_bytes)
            .map_err(StorageError::io(&last.path, "truncate torn tail"))?;
        preallocate(&active, &last.path, segment_bytes_max);
        active
            .sync_all()
            .map_err(StorageError::io(&last.path, "fsync"))?;
        active
            .seek(SeekFrom::Start(last.len_bytes))
            .map_err(StorageError::io(&last.path, "seek"))?;
        let last_index = last.last_index();
        let written_bytes = last.len_bytes;
        let mut all = segments;
        all.push(last);
        Ok(SegmentedLog {
            dir: dir.to_path_buf(),
            segments: all,
            active: Arc::new(active),
            pending: Vec::new(),
            written_bytes,
            last_index,
            segment_bytes_max,
            dirty: false,
            faults: StorageFaults::default(),
        })
    }

    /// Makes later writes and syncs fail as `faults` says (see [`StorageFaults`]).
    pub fn set_faults(&mut self, faults: StorageFaults) {
        self.faults = faults;
    }

    /// The index of the last entry, buffered or written.
    pub fn last_index(&self) -> LogIndex {
        self.last_index
    }

    /// The index of the first entry the log can hold on disk.
    pub fn first_index(&self) -> LogIndex {
        self.segments[0].first_index
    }

    /// How many segment files the log has.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Buffers `entries` for the next [`sync`](Self::sync), first discarding every
    /// entry at or after `entries[0].index` (a conflicting suffix).
    pub fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        if first.index <= self.last_index {
            self.truncate_from(first.index)?;
        }
        assert_eq!(
            first.index,
            self.last_index.next(),
            "appending entry {} after {} would leave a gap in the durable log",
            first.index,
            self.last_index
        );
        for entry in entries {
            debug_assert_eq!(entry.index, self.last_index.next());
            if self.active_len_bytes() >= self.segment_bytes_max {
                self.roll_over(entry.index)?;
            }
            let offset = self.active_len_bytes();
            let start = begin_record(&mut self.pending);
            encode_entry(entry, &mut self.pending);
            finish_record(&mut self.pending, start);
            self.active_segment_mut().offsets.push(offset);
            self.last_index = entry.index;
        }
        self.active_segment_mut().len_bytes = self.active_len_bytes();
        Ok(())
    }

    fn active_len_bytes(&self) -> u64 {
        self.written_bytes + self.pending.len() as u64
    }

    fn active_segment_mut(&mut self) -> &mut Segment {
        self.segments
            .last_mut()
            .expect("the log always has an active segment")
    }

    /// Writes everything buffered to the active segment, without fsync.
    fn write_pending(&mut self) -> Result<(), StorageError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let path = &self.segments.last().expect("active segment").path;
        self.faults
            .before_log_write()
            .and_then(|()| (&*self.active).write_all(&self.pending))
            .map_err(StorageError::io(path, "write"))?;
        self.written_bytes += self.pending.len() as u64;
        self.pending.clear();
        self.dirty = true;
        Ok(())
    }

    /// Makes every buffered append durable: one write, one `fdatasync`.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.write_pending()?;
        if self.dirty {
            let path = &self.segments.last().expect("active segment").path;
            self.faults
                .before_fdatasync()
                .and_then(|()| self.active.sync_data())
                .map_err(StorageError::io(path, "fdatasync"))?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Writes every buffered append and returns the file to `fdatasync` (on another
    /// thread) if it has writes not yet synced. Appends made after this call need
    /// another sync.
    pub fn begin_sync(&mut self) -> Result<Option<(Arc<File>, PathBuf)>, StorageError> {
        self.write_pending()?;
        if !self.dirty {
            return Ok(None);
        }
        self.dirty = false;
        let path = self.segments.last().expect("active segment").path.clone();
        Ok(Some((Arc::clone(&self.active), path)))
    }

    /// Hands every buffered append to the operating system without `fdatasync`: it
    /// survives a crash of the process but not of the machine.
    pub fn flush_without_sync(&mut self) -> Result<(), StorageError> {
        self.write_pending()?;
        self.dirty = false;
        Ok(())
    }

    /// Seals the active segment (durably) and starts a new one at `first_index`.
    fn roll_over(&mut self, first_index: LogIndex) -> Result<(), StorageError> {
        // The sealed segment is synced before the next one exists, so a crash can tear
        // only the last segment: recovery treats damage anywhere else as corruption.
        self.sync()?;
        let (active, segment) = create_segment(&self.dir, first_index, self.segment_bytes_max)?;
        self.active = Arc::new(active);
        self.segments.push(segment);
        self.written_bytes = SEGMENT_HEADER_BYTES as u64;
        Ok(())
    }

    /// Discards every entry at or after `index`: later segments are deleted (durably,
    /// so the chain on disk stays consecutive) and the one holding `index` is cut.
    pub fn truncate_from(&mut self, index: LogIndex) -> Result<(), StorageError> {
        if index > self.last_index {
            return Ok(());
        }
        self.write_pending()?;
        let mut removed_any = false;
        while self.segments.len() > 1 && self.segments.last().expect("segment").first_index >= index
        {
            let gone = self.segments.pop().expect("segment");
            remove_if_exists(&gone.path)?;
            removed_any = true;
        }
        if removed_any {
            sync_dir(&self.dir)?;
        }
        let segment = self.segments.last_mut().expect("segment");
        let keep = index.0.saturating_sub(segment.first_index.0) as usize;
        let cut_at = segment
            .offsets
            .get(keep)
            .copied()
            .unwrap_or(segment.len_bytes);
        segment.offsets.truncate(keep);
        segment.len_bytes = cut_at.max(SEGMENT_HEADER_BYTES as u64);
        let cut_at = segment.len_bytes;
        let path = segment.path.clone();
        self.last_index = LogIndex(segment.first_index.0 + keep as u64).prev();
        if removed_any {
            let file = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(StorageError::io(&path, "open"))?;
            self.active = Arc::new(file);
        }
        self.active
            .set_len(cut_at)
            .map_err(StorageError::io(&path, "truncate"))?;
        preallocate(&self.active, &path, self.segment_bytes_max);
        (&*self.active)
            .seek(SeekFrom::Start(cut_at))
            .map_err(StorageError::io(&path, "seek"))?;
        self.written_bytes = cut_at;
        self.dirty = true;
        Ok(())
    }

    /// Deletes every segment whose entries all lie at or below `index` (covered by a
    /// durable snapshot), keeping the active one.
    pub fn drop_segments_through(&mut self, index: LogIndex) -> Result<(), StorageError> {
        let mut dropped = 0;
        while self.segments.len() > 1 && self.segments[0].last_index() <= index {
            let gone = self.segments.remove(0);
            remove_if_exists(&gone.path)?;
            dropped += 1;
        }
        if dropped > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Discards the whole log and starts an empty one whose first entry will be
    /// `first_index` (after a snapshot that the old log disagreed with or did not
    /// reach).
    pub fn reset(&mut self, first_index: LogIndex) -> Result<(), StorageError> {
        self.pending.clear();
        let old: Vec<PathBuf> = self.segments.drain(..).map(|s| s.path).collect();
        // Write the new segment before removing the old ones so that the directory
        // never lacks a segment; the new name may equal an old one.
        let (active, segment) = create_segment(&self.dir, first_index, self.segment_bytes_max)?;
        for path in old.iter().filter(|p| **p != segment.path) {
            remove_if_exists(path)?;
        }
        sync_dir(&self.dir)?;
        self.active = Arc::new(active);
        self.segments.push(segment);
        self.written_bytes = SEGMENT_HEADER_BYTES as u64;
        self.last_index = first_index.prev();
        self.dirty = false;
        Ok(())
    }
}

/// The segment files of `dir` in index order.
fn list_segments(dir: &Path) -> Result<Vec<(LogIndex, PathBuf)>, StorageError> {
    let mut found = Vec::new();
    for item in fs::read_dir(dir).map_err(StorageError::io(dir, "list"))? {
        let item = item.map_err(StorageError::io(dir, "list"))?;
        if let Some(first) = item.file_name().to_str().and_then(parse_segment_file_name) {
            found.push((first, item.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// Creates a segment file holding only its header and preallocated to
/// `segment_bytes_max`, durably (file and directory).
fn create_segment(
    dir: &Path,
    first_index: LogIndex,
    segment_bytes_max: u64,
) -> Result<(File, Segment), StorageError> {
    let path = dir.join(segment_file_name(first_index));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(StorageError::io(&path, "create"))?;
    file.write_all(&encode_segment_header(first_index))
        .map_err(StorageError::io(&path, "write"))?;
    preallocate(&file, &path, segment_bytes_max);
    file.sync_all().map_err(StorageError::io(&path, "fsync"))?;
    sync_dir(dir)?;
    let segment = Segment {
        path,
        first_index,
        offsets: Vec::new(),
        len_bytes: SEGMENT_HEADER_BYTES as u64,
    };
    Ok((file, segment))
}
