//! Storage errors: each names the file (and, for corruption, the byte offset) so an
//! operator can find the damage.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Why the durable storage failed or refused to open.
#[derive(Debug)]
pub enum StorageError {
    /// An I/O operation on `path` failed.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done ("open", "fsync", ...).
        op: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
    /// A file holds data that fails its checksum or breaks the format, somewhere a
    /// crash cannot explain (not a torn tail): the node refuses to start rather than
    /// lose acknowledged data silently.
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// The byte offset of the first bad record or header.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// Another process holds the data directory's lock file.
    Locked {
        /// The lock file.
        path: PathBuf,
    },
}

impl StorageError {
    pub(crate) fn io(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> StorageError {
        let path = path.to_path_buf();
        move |source| StorageError::Io { path, op, source }
    }

    pub(crate) fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> StorageError {
        StorageError::Corrupt {
            path: path.to_path_buf(),
            offset,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::Io { path, op, source } => {
                write!(f, "{op} {}: {source}", path.display())?;
                match io_hint(op, source) {
                    Some(hint) => write!(f, " ({hint})"),
                    None => Ok(()),
                }
            }
            StorageError::Corrupt {
                path,
                offset,
                reason,
            } => write!(
                f,
                "corrupt data in {} at byte offset {offset}: {reason}; refusing to start \
                 (restore this node's data from a healthy replica)",
                path.display()
            ),
            StorageError::Locked { path } => write!(
                f,
                "data directory is in use by another process (lock file {} is held)",
                path.display()
            ),
        }
    }
}

/// What an operator should know about an I/O failure, for the two that stop a node
/// in production: a full disk, and a failed sync.
fn io_hint(op: &str, source: &io::Error) -> Option<&'static str> {
    if source.kind() == io::ErrorKind::StorageFull {
        return Some(
            "the disk is full: free space on it, then restart the node; it recovers from \
             what it had made durable",
        );
    }
    if op.contains("fsync") || op.contains("fdatasync") {
        return Some(
            "writes since the last sync may not be on disk; the node stops instead of \
             retrying, because after a failed sync the kernel may have dropped the unsynced \
             pages and a retry could succeed without them (fsyncgate); check the disk, then \
             restart the node",
        );
    }
    None
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StorageError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
