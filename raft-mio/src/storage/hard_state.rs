//! The hard state file: the current term and vote, replaced atomically.
//!
//! ## Why a file of its own, replaced by rename, and not records in the log
//! The hard state changes once per term (an election), while the log takes thousands
//! of appends per second. A separate file costs two extra fsyncs (the temp file and the
//! directory) per term change, which no steady-state workload notices, and buys
//! simplicity where it matters for safety:
//! - recovery reads one small file instead of searching the log for the newest
//!   hard-state record, and
//! - the log stays a pure sequence of entries, so truncating a conflicting suffix and
//!   dropping whole segments below a snapshot can never discard the latest vote (with
//!   hard-state records in the segments, every compaction would have to copy the last
//!   one forward, and every truncation would have to reason about which records it
//!   removes).
//!
//! The file also carries a checksum: rename makes the replacement atomic, and the
//! checksum turns later damage (bit rot, a bad copy) into a refusal to start instead
//! of a node that silently votes twice in one term.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use raft_core::{HardState, NodeId, Term};

use super::error::StorageError;
use super::fsutil::write_atomically;

/// The hard state file's name inside the data directory.
pub const HARD_STATE_FILE_NAME: &str = "hardstate";

const MAGIC: &[u8; 8] = b"RAFTHS01";
const FILE_BYTES: usize = 8 + 8 + 8 + 4;

/// Encodes `hard_state` as the file's bytes.
pub fn encode_hard_state(hard_state: HardState) -> [u8; FILE_BYTES] {
    let mut bytes = [0u8; FILE_BYTES];
    bytes[0..8].copy_from_slice(MAGIC);
    bytes[8..16].copy_from_slice(&hard_state.term.0.to_le_bytes());
    // Node id 0 is reserved (never a valid node), so it encodes "no vote".
    let vote = hard_state.voted_for.map_or(0, |n| n.0);
    bytes[16..24].copy_from_slice(&vote.to_le_bytes());
    let crc = crc32c::crc32c(&bytes[0..24]);
    bytes[24..28].copy_from_slice(&crc.to_le_bytes());
    bytes
}

/// Decodes the file's bytes; the error says what is wrong (the caller adds the path).
pub fn decode_hard_state(bytes: &[u8]) -> Result<HardState, (u64, &'static str)> {
    if bytes.len() != FILE_BYTES {
        return Err((0, "the hard state file has the wrong size"));
    }
    if &bytes[0..8] != MAGIC {
        return Err((0, "the hard state file does not start with its magic bytes"));
    }
    let crc = u32::from_le_bytes(bytes[24..28].try_into().expect("4 bytes"));
    if crc32c::crc32c(&bytes[0..24]) != crc {
        return Err((24, "the hard state checksum does not match"));
    }
    let term = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    let vote = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
    Ok(HardState {
        term: Term(term),
        voted_for: (vote != 0).then_some(NodeId(vote)),
    })
}

/// Durably replaces the hard state of `dir`.
pub fn write_hard_state(dir: &Path, hard_state: HardState) -> Result<(), StorageError> {
    write_atomically(dir, HARD_STATE_FILE_NAME, &encode_hard_state(hard_state))
}

/// Reads the hard state of `dir`; the default (term 0, no vote) if there is none yet.
pub fn read_hard_state(dir: &Path) -> Result<HardState, StorageError> {
    let path = dir.join(HARD_STATE_FILE_NAME);
    match fs::read(&path) {
        Ok(bytes) => decode_hard_state(&bytes)
            .map_err(|(offset, reason)| StorageError::corrupt(&path, offset, reason)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(HardState::default()),
        Err(e) => Err(StorageError::io(&path, "read")(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_state_round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_hard_state(dir.path()).unwrap(), HardState::default());
        let hs = HardState {
            term: Term(7),
            voted_for: Some(NodeId(3)),
        };
        write_hard_state(dir.path(), hs).unwrap();
        assert_eq!(read_hard_state(dir.path()).unwrap(), hs);
        let hs2 = HardState {
            term: Term(8),
            voted_for: None,
        };
        write_hard_state(dir.path(), hs2).unwrap();
        assert_eq!(read_hard_state(dir.path()).unwrap(), hs2);
    }

    #[test]
    fn a_damaged_hard_state_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        write_hard_state(
            dir.path(),
            HardState {
                term: Term(7),
                voted_for: None,
            },
        )
        .unwrap();
        let path = dir.path().join(HARD_STATE_FILE_NAME);
        let mut bytes = fs::read(&path).unwrap();
        bytes[9] ^= 1;
        fs::write(&path, bytes).unwrap();
        let err = read_hard_state(dir.path()).unwrap_err();
        assert!(
            matches!(err, StorageError::Corrupt { offset: 24, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("hardstate"));
    }
}
