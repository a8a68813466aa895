//! Snapshot files: one file per snapshot, named by its last index, written atomically
//! (temp file, fsync, rename, fsync of the directory) and checksummed.
//!
//! ```text
//! magic "RAFTSN01" | body_len: u64 LE | body_crc: u32 | header_crc: u32 | body
//! ```
//! The body is the postcard encoding of [`Snapshot`] (its meta and the application's
//! data).

use std::fs;
use std::path::{Path, PathBuf};

use raft_core::{LogIndex, Snapshot};

use super::error::StorageError;
use super::fsutil::{remove_if_exists, write_atomically};
use crate::encoding::encode_into;

const MAGIC: &[u8; 8] = b"RAFTSN01";
const HEADER_BYTES: usize = 24;
const PREFIX: &str = "snapshot-";
const SUFFIX: &str = ".snap";

/// The file name of the snapshot whose last index is `last_index`.
pub fn snapshot_file_name(last_index: LogIndex) -> String {
    format!("{PREFIX}{:020}{SUFFIX}", last_index.0)
}

fn parse_snapshot_file_name(name: &str) -> Option<LogIndex> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    digits.parse().ok().map(LogIndex)
}

/// Encodes a snapshot file.
pub fn encode_snapshot(snapshot: &Snapshot) -> Vec<u8> {
    let mut bytes = vec![0u8; HEADER_BYTES];
    encode_into(snapshot, &mut bytes).expect("a snapshot always serializes");
    let body_len = (bytes.len() - HEADER_BYTES) as u64;
    let body_crc = crc32c::crc32c(&bytes[HEADER_BYTES..]);
    bytes[0..8].copy_from_slice(MAGIC);
    bytes[8..16].copy_from_slice(&body_len.to_le_bytes());
    bytes[16..20].copy_from_slice(&body_crc.to_le_bytes());
    let header_crc = crc32c::crc32c(&bytes[0..20]);
    bytes[20..24].copy_from_slice(&header_crc.to_le_bytes());
    bytes
}

/// Decodes a snapshot file; the error is the offset and what is wrong.
pub fn decode_snapshot(bytes: &[u8]) -> Result<Snapshot, (u64, String)> {
    if bytes.len() < HEADER_BYTES || &bytes[0..8] != MAGIC {
        return Err((0, "not a snapshot file (bad magic or too short)".into()));
    }
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    if crc32c::crc32c(&bytes[0..20]) != word(20) {
        return Err((20, "the snapshot header checksum does not match".into()));
    }
    let body_len = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    if body_len != (bytes.len() - HEADER_BYTES) as u64 {
        return Err((
            8,
            format!(
                "the header says {body_len} body bytes, the file has {}",
                bytes.len() - HEADER_BYTES
            ),
        ));
    }
    let body = &bytes[HEADER_BYTES..];
    if crc32c::crc32c(body) != word(16) {
        return Err((
            HEADER_BYTES as u64,
            "the snapshot body checksum does not match".into(),
        ));
    }
    postcard::from_bytes(body)
        .map_err(|e| (HEADER_BYTES as u64, format!("undecodable snapshot: {e}")))
}

/// Durably writes `snapshot` into `dir`, then removes every older snapshot file.
pub fn write_snapshot(dir: &Path, snapshot: &Snapshot) -> Result<PathBuf, StorageError> {
    let name = snapshot_file_name(snapshot.meta.last_index);
    write_atomically(dir, &name, &encode_snapshot(snapshot))?;
    for (index, path) in list_snapshots(dir)? {
        if index < snapshot.meta.last_index {
            remove_if_exists(&path)?;
        }
    }
    Ok(dir.join(name))
}

/// The snapshot files of `dir`, newest (highest last index) first.
pub fn list_snapshots(dir: &Path) -> Result<Vec<(LogIndex, PathBuf)>, StorageError> {
    let mut found = Vec::new();
    for item in fs::read_dir(dir).map_err(StorageError::io(dir, "list"))? {
        let item = item.map_err(StorageError::io(dir, "list"))?;
        if let Some(index) = item.file_name().to_str().and_then(parse_snapshot_file_name) {
            found.push((index, item.path()));
        }
    }
    found.sort_by_key(|(index, _)| std::cmp::Reverse(*index));
    Ok(found)
}

/// Reads the newest valid snapshot of `dir`. A damaged newer snapshot is skipped with
/// a warning; recovery then needs the log from an older snapshot on, and refuses to
/// start if that log is gone.
pub fn read_newest_snapshot(dir: &Path) -> Result<Option<Snapshot>, StorageError> {
    for (index, path) in list_snapshots(dir)? {
        let bytes = fs::read(&path).map_err(StorageError::io(&path, "read"))?;
        match decode_snapshot(&bytes) {
            Ok(snapshot) if snapshot.meta.last_index == index => return Ok(Some(snapshot)),
            Ok(snapshot) => tracing::warn!(
                path = %path.display(),
                "skipping snapshot file whose name says {index} but whose content says {}",
                snapshot.meta.last_index
            ),
            Err((offset, reason)) => tracing::warn!(
                path = %path.display(),
                offset,
                "skipping damaged snapshot file: {reason}"
            ),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use raft_core::{Membership, NodeId, SnapshotMeta, Term};

    use super::*;

    fn snapshot(last_index: u64) -> Snapshot {
        Snapshot {
            meta: SnapshotMeta {
                last_index: LogIndex(last_index),
                last_term: Term(2),
                membership: Membership::new([NodeId(1), NodeId(2)]),
            },
            data: vec![7u8; 100].into(),
        }
    }

    #[test]
    fn the_newest_snapshot_replaces_older_ones() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_newest_snapshot(dir.path()).unwrap(), None);
        write_snapshot(dir.path(), &snapshot(10)).unwrap();
        write_snapshot(dir.path(), &snapshot(20)).unwrap();
        assert_eq!(
            read_newest_snapshot(dir.path()).unwrap(),
            Some(snapshot(20))
        );
        assert_eq!(list_snapshots(dir.path()).unwrap().len(), 1);
    }

    #[test]
    fn a_damaged_snapshot_is_skipped_for_an_older_valid_one() {
        let dir = tempfile::tempdir().unwrap();
        write_snapshot(dir.path(), &snapshot(10)).unwrap();
        let mut bad = encode_snapshot(&snapshot(20));
        let last = bad.len() - 1;
        bad[last] ^= 1;
        fs::write(dir.path().join(snapshot_file_name(LogIndex(20))), &bad).unwrap();
        assert_eq!(decode_snapshot(&bad).unwrap_err().0, HEADER_BYTES as u64);
        assert_eq!(
            read_newest_snapshot(dir.path()).unwrap(),
            Some(snapshot(10))
        );
    }
}
