//! Storage fault injection: a deliberate testing API, off unless a test turns it on.
//!
//! A node must stop when its disk fails (fail-stop), and say why. Tests check that
//! with real faults where they can (kv-example's end-to-end test runs a node under
//! libfiu and makes `fdatasync` fail); this hook makes the same failures happen
//! inside one process, in any test, at the exact calls that matter:
//! - [`fail_fdatasync`](StorageFaults::fail_fdatasync): every later `fdatasync` of
//!   the log fails (what a disk error or a lost write-back looks like to a program);
//! - [`fail_log_writes`](StorageFaults::fail_log_writes): every later write of log
//!   records fails (ENOSPC: the disk is full);
//! - [`fail_snapshot_writes`](StorageFaults::fail_snapshot_writes): every later
//!   snapshot file write fails.
//!
//! Give the same handle to [`StorageOptions::faults`](super::StorageOptions::faults)
//! and keep a clone to switch faults on while the node runs. The errors are the
//! operating system's own (`io::Error::from_raw_os_error`), so messages read as
//! they would on a real failure.

use std::io;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;

/// `ENOSPC` on Linux: no space left on device.
pub const ENOSPC: i32 = 28;
/// `EIO` on Linux: an I/O error.
pub const EIO: i32 = 5;

#[derive(Debug, Default)]
struct Switches {
    /// The errno every `fdatasync` of the log fails with (0: none).
    fdatasync_errno: AtomicI32,
    /// The errno every write of log records fails with (0: none).
    log_write_errno: AtomicI32,
    /// The errno every snapshot file write fails with (0: none).
    snapshot_write_errno: AtomicI32,
    /// How many `fdatasync`s of the log were attempted (failed ones included).
    fdatasync_calls: AtomicU64,
}

/// A handle on a node's storage faults; clones share the switches.
#[derive(Clone, Debug, Default)]
pub struct StorageFaults {
    switches: Arc<Switches>,
}

impl StorageFaults {
    /// No fault switched on yet.
    pub fn new() -> StorageFaults {
        StorageFaults::default()
    }

    /// Every later `fdatasync` of the log fails with `errno` (for example [`EIO`]).
    pub fn fail_fdatasync(&self, errno: i32) {
        debug_assert!(errno > 0);
        self.switches.fdatasync_errno.store(errno, Ordering::SeqCst);
    }

    /// Every later write of log records fails with `errno` (for example [`ENOSPC`]).
    pub fn fail_log_writes(&self, errno: i32) {
        debug_assert!(errno > 0);
        self.switches.log_write_errno.store(errno, Ordering::SeqCst);
    }

    /// Every later write of a snapshot file fails with `errno`.
    pub fn fail_snapshot_writes(&self, errno: i32) {
        debug_assert!(errno > 0);
        self.switches
            .snapshot_write_errno
            .store(errno, Ordering::SeqCst);
    }

    /// How many `fdatasync`s of the log were attempted, failed ones included (a test
    /// checks that a failed one is never retried).
    pub fn fdatasync_calls(&self) -> u64 {
        self.switches.fdatasync_calls.load(Ordering::SeqCst)
    }

    /// Called before each `fdatasync` of the log.
    pub(crate) fn before_fdatasync(&self) -> io::Result<()> {
        self.switches.fdatasync_calls.fetch_add(1, Ordering::SeqCst);
        injected(&self.switches.fdatasync_errno)
    }

    /// Called before each write of log records.
    pub(crate) fn before_log_write(&self) -> io::Result<()> {
        injected(&self.switches.log_write_errno)
    }

    /// Called before each snapshot file is written.
    pub(crate) fn before_snapshot_write(&self) -> io::Result<()> {
        injected(&self.switches.snapshot_write_errno)
    }
}

fn injected(errno: &AtomicI32) -> io::Result<()> {
    match errno.load(Ordering::SeqCst) {
        0 => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}
