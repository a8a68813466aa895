//! Why a node could not start, or stopped.

use std::fmt;
use std::io;

use raft_core::NewNodeError;

use crate::config::ConfigError;
use crate::storage::StorageError;

/// Why [`run`](crate::run) or [`NodeLoop::new`](crate::NodeLoop::new) failed.
#[derive(Debug)]
pub enum StartError {
    /// The configuration is invalid.
    Config(ConfigError),
    /// The data directory could not be opened or recovered (the error names the file
    /// and, for corruption, the offset).
    Storage(StorageError),
    /// The core refused the configuration or the recovered state.
    Core(NewNodeError),
    /// The recovered snapshot's data is not in a format this raft-mio reads.
    Snapshot(String),
    /// A socket or thread could not be set up.
    Io {
        /// What was being done.
        what: &'static str,
        /// The address involved, if any.
        addr: String,
        /// The operating system's error.
        source: io::Error,
    },
}

impl StartError {
    pub(crate) fn io(what: &'static str, addr: &str, source: io::Error) -> StartError {
        StartError::Io {
            what,
            addr: addr.to_string(),
            source,
        }
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(e) => e.fmt(f),
            StartError::Storage(e) => e.fmt(f),
            StartError::Core(e) => e.fmt(f),
            StartError::Snapshot(reason) => {
                write!(f, "cannot read the recovered snapshot: {reason}")
            }
            StartError::Io { what, addr, source } if addr.is_empty() => {
                write!(f, "cannot {what}: {source}")
            }
            StartError::Io { what, addr, source } => write!(f, "cannot {what} {addr}: {source}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Config(e) => Some(e),
            StartError::Storage(e) => Some(e),
            StartError::Core(e) => Some(e),
            StartError::Snapshot(_) => None,
            StartError::Io { source, .. } => Some(source),
        }
    }
}

/// Why a running loop stopped on its own.
#[derive(Debug)]
pub enum LoopError {
    /// Durable storage failed: the node cannot keep its promises and stops.
    Storage(StorageError),
    /// `poll` failed.
    Poll(io::Error),
    /// A snapshot from the leader is not in a format this raft-mio reads (a leader
    /// of another version): the node cannot restore it and stops.
    Snapshot(String),
}

impl fmt::Display for LoopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoopError::Storage(e) => write!(f, "storage failed: {e}"),
            LoopError::Poll(e) => write!(f, "poll failed: {e}"),
            LoopError::Snapshot(reason) => write!(f, "cannot restore a snapshot: {reason}"),
        }
    }
}

impl std::error::Error for LoopError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoopError::Storage(e) => Some(e),
            LoopError::Poll(e) => Some(e),
            LoopError::Snapshot(_) => None,
        }
    }
}
