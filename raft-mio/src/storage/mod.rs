//! Durable storage of one node: the segmented log, the hard state, snapshots, and the
//! directory lock. It executes the core's persistence actions in order and reports,
//! after one group commit, the highest sequence number made durable.
//!
//! Files in the data directory:
//! - `LOCK`: held (flock) while a process has the directory open;
//! - `hardstate`: term and vote, replaced atomically (see [`hard_state`]);
//! - `log-<first index>.seg`: the log's segments (see [`segment`]);
//! - `snapshot-<last index>.snap`: the newest snapshot (see [`snapshot_file`]).

pub mod error;
pub mod faults;
mod fsutil;
pub mod hard_state;
pub mod lock;
pub mod log;
pub mod record;
pub mod segment;
pub mod snapshot_file;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use raft_core::{Action, Entry, HardState, LogIndex, PersistSeq, Restored, Snapshot, SnapshotMeta};

pub use error::StorageError;
pub use faults::StorageFaults;

use self::fsutil::remove_if_exists;
use self::hard_state::{read_hard_state, write_hard_state, HARD_STATE_FILE_NAME};
use self::lock::DirLock;
use self::log::SegmentedLog;
use self::snapshot_file::{read_newest_snapshot, write_snapshot};

/// How the storage behaves.
#[derive(Clone, Debug)]
pub struct StorageOptions {
    /// A segment rolls over to a new file once it holds this many bytes.
    pub segment_bytes_max: u64,
    /// Whether [`Storage::sync`] calls `fdatasync`. Turning it off gives up durability
    /// across machine crashes (not process crashes); for benchmarks and tests only.
    pub fsync: bool,
    /// Injected faults, for tests (see [`faults`]); none by default.
    pub faults: StorageFaults,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            segment_bytes_max: 64 << 20,
            fsync: true,
            faults: StorageFaults::default(),
        }
    }
}

/// The durable state of one node.
#[derive(Debug)]
pub struct Storage {
    dir: PathBuf,
    _lock: DirLock,
    log: SegmentedLog,
    hard_state: HardState,
    snapshot_meta: SnapshotMeta,
    options: StorageOptions,
    /// The highest sequence number written (durable after the next sync).
    written_seq: Option<PersistSeq>,
    /// The highest sequence number made durable.
    durable_seq: Option<PersistSeq>,
    /// The highest sequence number returned by `sync`, `begin_sync` or `end_sync`
    /// (each is reported to the core once).
    announced_seq: Option<PersistSeq>,
}

impl Storage {
    /// Opens (creating if needed) the data directory `dir`, takes its lock, and
    /// recovers what was durable, in the shape `RaftNode::new` takes.
    pub fn open(dir: &Path, options: StorageOptions) -> Result<(Storage, Restored), StorageError> {
        fs::create_dir_all(dir).map_err(StorageError::io(dir, "create data directory"))?;
        let lock = DirLock::acquire(dir)?;
        remove_if_exists(&dir.join(format!("{HARD_STATE_FILE_NAME}.tmp")))?;
        remove_leftover_temp_files(dir)?;
        let hard_state = read_hard_state(dir)?;
        let snapshot = read_newest_snapshot(dir)?;
        let snapshot_index = snapshot.as_ref().map_or(LogIndex(0), |s| s.meta.last_index);
        let recovered = SegmentedLog::open(dir, snapshot_index.next(), options.segment_bytes_max)?;
        let mut log = recovered.log;
        log.set_faults(options.faults.clone());
        let entries = entries_after_snapshot(dir, &mut log, recovered.entries, snapshot.as_ref())?;
        let restored = Restored {
            hard_state,
            applied: snapshot_index,
            snapshot,
            entries,
        };
        let storage = Storage {
            dir: dir.to_path_buf(),
            _lock: lock,
            log,
            hard_state,
            snapshot_meta: restored
                .snapshot
                .as_ref()
                .map(|s| s.meta.clone())
                .unwrap_or_default(),
            options,
            written_seq: None,
            durable_seq: None,
            announced_seq: None,
        };
        Ok((storage, restored))
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The hard state last written.
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// The index of the last log entry written.
    pub fn last_index(&self) -> LogIndex {
        self.log.last_index()
    }

    /// The description of the newest snapshot written (last index 0 if none).
    pub fn snapshot_meta(&self) -> &SnapshotMeta {
        &self.snapshot_meta
    }

    /// How many log segment files there are.
    pub fn segment_count(&self) -> usize {
        self.log.segment_count()
    }

    /// Executes one persistence action (other actions are not storage's business and
    /// are rejected by a debug assertion). Log appends are buffered until
    /// [`sync`](Self::sync); the rare hard-state and snapshot writes are durable when
    /// this returns, after everything before them (persistence stays in order).
    pub fn write(&mut self, action: &Action) -> Result<(), StorageError> {
        let seq = match action {
            Action::AppendToLog { seq, entries } => {
                self.log.append(entries)?;
                *seq
            }
            Action::PersistHardState { seq, hard_state } => {
                self.sync_log()?;
                write_hard_state(&self.dir, *hard_state)?;
                self.hard_state = *hard_state;
                // Everything written so far is durable now (the log was synced first).
                self.durable_seq = Some(*seq);
                *seq
            }
            Action::PersistSnapshot {
                seq,
                snapshot,
                discard_log,
            } => {
                self.sync_log()?;
                self.write_snapshot(snapshot, *discard_log)?;
                self.durable_seq = Some(*seq);
                *seq
            }
            other => {
                debug_assert!(false, "not a persistence action: {other:?}");
                return Ok(());
            }
        };
        debug_assert!(
            self.written_seq.is_none_or(|s| s < seq),
            "persistence out of order"
        );
        self.written_seq = Some(seq);
        Ok(())
    }

    /// Makes everything written durable (one `fdatasync` of the log, if it has
    /// anything new) and returns the highest sequence number now durable, if that
    /// was not returned before.
    pub fn sync(&mut self) -> Result<Option<PersistSeq>, StorageError> {
        self.sync_log()?;
        self.durable_seq = self.written_seq;
        Ok(self.announce(self.durable_seq))
    }

    /// Starts a group commit without waiting for the disk: writes everything buffered
    /// and says what remains to be done. [`SyncStart::Job`] must be run (on any
    /// thread) and then reported with [`end_sync`](Self::end_sync); only one job
    /// should be outstanding at a time (writes made meanwhile wait for the next).
    pub fn begin_sync(&mut self) -> Result<SyncStart, StorageError> {
        if self.written_seq > self.durable_seq {
            let through = self.written_seq.expect("something was written");
            if !self.options.fsync {
                self.log.flush_without_sync()?;
                self.durable_seq = Some(through);
            } else if let Some((file, path)) = self.log.begin_sync()? {
                return Ok(SyncStart::Job(SyncJob {
                    file,
                    path,
                    through,
                    faults: self.options.faults.clone(),
                }));
            } else {
                // Only synchronous writes (hard state, snapshot) since the last sync.
                self.durable_seq = Some(through);
            }
        }
        Ok(match self.announce(self.durable_seq) {
            Some(through) => SyncStart::Durable(through),
            None => SyncStart::Nothing,
        })
    }

    /// Records that a job from [`begin_sync`](Self::begin_sync) finished. Returns the
    /// sequence number to report, unless a synchronous write already reported it.
    pub fn end_sync(&mut self, through: PersistSeq) -> Option<PersistSeq> {
        debug_assert!(self.written_seq >= Some(through));
        self.durable_seq = self.durable_seq.max(Some(through));
        self.announce(Some(through))
    }

    /// Returns `durable` if it is newer than anything returned before, and remembers it.
    fn announce(&mut self, durable: Option<PersistSeq>) -> Option<PersistSeq> {
        if durable > self.announced_seq {
            self.announced_seq = durable;
            return durable;
        }
        None
    }

    /// The highest sequence number known durable.
    pub fn durable_seq(&self) -> Option<PersistSeq> {
        self.durable_seq
    }

    fn sync_log(&mut self) -> Result<(), StorageError> {
        if self.options.fsync {
            self.log.sync()
        } else {
            self.log.flush_without_sync()
        }
    }

    fn write_snapshot(
        &mut self,
        snapshot: &Snapshot,
        discard_log: bool,
    ) -> Result<(), StorageError> {
        let last_index = snapshot.meta.last_index;
        debug_assert!(last_index >= self.snapshot_meta.last_index);
        let path = self.dir.join(snapshot_file::snapshot_file_name(last_index));
        self.options
            .faults
            .before_snapshot_write()
            .map_err(StorageError::io(&path, "write"))?;
        write_snapshot(&self.dir, snapshot)?;
        if discard_log || self.log.last_index() <= last_index {
            self.log.reset(last_index.next())?;
        } else {
            self.log.drop_segments_through(last_index)?;
        }
        self.snapshot_meta = snapshot.meta.clone();
        Ok(())
    }
}

/// What [`Storage::begin_sync`] found to do.
#[derive(Debug)]
pub enum SyncStart {
    /// Nothing was written since the last sync.
    Nothing,
    /// Everything through this sequence number is durable already.
    Durable(PersistSeq),
    /// The log needs an `fdatasync`; run the job, then report it.
    Job(SyncJob),
}

/// One `fdatasync` of the active segment, covering every write made before
/// [`Storage::begin_sync`] returned it.
#[derive(Debug)]
pub struct SyncJob {
    file: Arc<File>,
    path: PathBuf,
    through: PersistSeq,
    faults: StorageFaults,
}

impl SyncJob {
    /// The sequence number durable once the job is done.
    pub fn through(&self) -> PersistSeq {
        self.through
    }

    /// Runs the `fdatasync` (blocking). A failure is final: the caller must not retry
    /// (see [`StorageError::Io`]).
    pub fn run(&self) -> Result<PersistSeq, StorageError> {
        self.faults
            .before_fdatasync()
            .and_then(|()| self.file.sync_data())
            .map_err(StorageError::io(&self.path, "fdatasync"))?;
        Ok(self.through)
    }
}

/// Removes temp files that a crash during an atomic replacement left behind.
fn remove_leftover_temp_files(dir: &Path) -> Result<(), StorageError> {
    for item in fs::read_dir(dir).map_err(StorageError::io(dir, "list"))? {
        let item = item.map_err(StorageError::io(dir, "list"))?;
        if item
            .file_name()
            .to_str()
            .is_some_and(|n| n.ends_with(".tmp"))
        {
            remove_if_exists(&item.path())?;
        }
    }
    Ok(())
}

/// The recovered entries that follow the snapshot, by the rule of Raft §7: if the log
/// holds the snapshot's last entry (same index and term), the entries after it stay;
/// otherwise the whole log is discarded. A crash between writing a snapshot and
/// dropping the log it replaced lands here.
fn entries_after_snapshot(
    dir: &Path,
    log: &mut SegmentedLog,
    entries: Vec<Entry>,
    snapshot: Option<&Snapshot>,
) -> Result<Vec<Entry>, StorageError> {
    let Some(snapshot) = snapshot else {
        if let Some(first) = entries.first().filter(|e| e.index != LogIndex(1)) {
            let path = dir.join(segment::segment_file_name(log.first_index()));
            return Err(StorageError::corrupt(
                &path,
                segment::SEGMENT_HEADER_BYTES as u64,
                format!(
                    "the log starts at {} but there is no snapshot before it",
                    first.index
                ),
            ));
        }
        return Ok(entries);
    };
    let meta = &snapshot.meta;
    if log.first_index() > meta.last_index.next() {
        let path = dir.join(segment::segment_file_name(log.first_index()));
        return Err(StorageError::corrupt(
            &path,
            0,
            format!(
                "the log starts at {} but the newest valid snapshot ends at {}",
                log.first_index(),
                meta.last_index
            ),
        ));
    }
    let at_snapshot = entries.iter().find(|e| e.index == meta.last_index);
    let agrees = match at_snapshot {
        Some(entry) => entry.term == meta.last_term,
        // The segments up to the snapshot were dropped: the log starts right after it.
        None => log.first_index() == meta.last_index.next(),
    };
    if !agrees || log.last_index() < meta.last_index {
        log.reset(meta.last_index.next())?;
        return Ok(Vec::new());
    }
    Ok(entries
        .into_iter()
        .filter(|e| e.index > meta.last_index)
        .collect())
}

#[cfg(test)]
mod tests;
