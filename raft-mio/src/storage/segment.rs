//! One log segment file: a header naming its first index, then one record per entry.
//!
//! ```text
//! magic "RAFTLG01" | first_index: u64 LE | header_crc: u32 | zero: u32 | records...
//! ```
//! Segments are named by their first index, so the log's prefix below a snapshot is
//! dropped by deleting whole files, and recovery lists them in order by name.
//!
//! The active segment is preallocated, so the bytes after its last record read as
//! zeros: an all-zero tail is the end of the data, not damage (a zero header never
//! passes its checksum, so it can never be mistaken for a record).

use std::path::{Path, PathBuf};

use raft_core::{Entry, LogIndex};

use super::error::StorageError;
use super::record::{decode_record, valid_record_after, RecordRead};

/// The size of a segment's header in bytes.
pub const SEGMENT_HEADER_BYTES: usize = 24;

const MAGIC: &[u8; 8] = b"RAFTLG01";
const PREFIX: &str = "log-";
const SUFFIX: &str = ".seg";

/// The file name of the segment whose first entry is `first_index`.
pub fn segment_file_name(first_index: LogIndex) -> String {
    format!("{PREFIX}{:020}{SUFFIX}", first_index.0)
}

/// The first index a segment file name stands for, if it is one.
pub fn parse_segment_file_name(name: &str) -> Option<LogIndex> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    digits.parse().ok().map(LogIndex)
}

/// The header of a segment starting at `first_index`.
pub fn encode_segment_header(first_index: LogIndex) -> [u8; SEGMENT_HEADER_BYTES] {
    let mut header = [0u8; SEGMENT_HEADER_BYTES];
    header[0..8].copy_from_slice(MAGIC);
    header[8..16].copy_from_slice(&first_index.0.to_le_bytes());
    let crc = crc32c::crc32c(&header[0..16]);
    header[16..20].copy_from_slice(&crc.to_le_bytes());
    header
}

fn header_is_valid(bytes: &[u8], first_index: LogIndex) -> bool {
    bytes.len() >= SEGMENT_HEADER_BYTES
        && bytes[0..8] == *MAGIC
        && bytes[8..16] == first_index.0.to_le_bytes()
        && bytes[16..20] == crc32c::crc32c(&bytes[0..16]).to_le_bytes()
}

/// What recovery found in one segment.
#[derive(Debug)]
pub struct ScannedSegment {
    /// The segment's file.
    pub path: PathBuf,
    /// The index its first record holds.
    pub first_index: LogIndex,
    /// The valid entries, consecutive from `first_index`.
    pub entries: Vec<Entry>,
    /// The byte offset of each entry's record.
    pub offsets: Vec<u64>,
    /// The length of the valid prefix; a torn tail starts here.
    pub valid_bytes: u64,
    /// Whether the file has a torn tail (or a torn header) to cut off.
    pub torn: bool,
}

/// Scans a segment's bytes. Damage in the last segment with no valid record after it
/// is a torn tail (what a crash during the last write leaves): the scan stops there
/// and says so. Any other damage is corruption, refused with the file and offset.
pub fn scan_segment(
    path: &Path,
    first_index: LogIndex,
    bytes: &[u8],
    is_last: bool,
) -> Result<ScannedSegment, StorageError> {
    let mut scanned = ScannedSegment {
        path: path.to_path_buf(),
        first_index,
        entries: Vec::new(),
        offsets: Vec::new(),
        valid_bytes: SEGMENT_HEADER_BYTES as u64,
        torn: false,
    };
    if !header_is_valid(bytes, first_index) {
        let nothing_after =
            valid_record_after(bytes, SEGMENT_HEADER_BYTES.min(bytes.len())).is_none();
        if is_last && nothing_after {
            // The segment was being created when the node crashed.
            scanned.torn = true;
            scanned.valid_bytes = 0;
            return Ok(scanned);
        }
        return Err(StorageError::corrupt(path, 0, "bad segment header"));
    }
    let mut offset = SEGMENT_HEADER_BYTES;
    while offset < bytes.len() {
        if is_last && bytes[offset..].iter().all(|b| *b == 0) {
            // The preallocated space after the last record.
            scanned.torn = bytes.len() > offset;
            return Ok(scanned);
        }
        let damage = match decode_record(bytes, offset) {
            RecordRead::Record {
                payload,
                next_offset,
            } => {
                let entry: Entry = postcard::from_bytes(payload).map_err(|e| {
                    StorageError::corrupt(
                        path,
                        offset as u64,
                        format!("a checksummed record does not decode as an entry: {e}"),
                    )
                })?;
                let expected = LogIndex(first_index.0 + scanned.entries.len() as u64);
                if entry.index != expected {
                    return Err(StorageError::corrupt(
                        path,
                        offset as u64,
                        format!(
                            "record holds entry {} where {expected} belongs",
                            entry.index
                        ),
                    ));
                }
                scanned.entries.push(entry);
                scanned.offsets.push(offset as u64);
                offset = next_offset;
                scanned.valid_bytes = offset as u64;
                continue;
            }
            RecordRead::Truncated => "a record is cut short",
            RecordRead::BadHeader => "a record header fails its checksum",
            RecordRead::BadPayload => "a record payload fails its checksum",
        };
        if is_last && valid_record_after(bytes, offset + 1).is_none() {
            scanned.torn = true;
            return Ok(scanned);
        }
        let reason = if is_last {
            format!("{damage}, and valid records follow (not a torn tail)")
        } else {
            format!("{damage} in a sealed segment")
        };
        return Err(StorageError::corrupt(path, offset as u64, reason));
    }
    debug_assert_eq!(scanned.valid_bytes, bytes.len() as u64);
    Ok(scanned)
}

/// Whether the bytes after a segment's valid prefix are only preallocated zeros (a
/// clean end, not worth a warning).
pub fn tail_is_zeros(bytes: &[u8], valid_bytes: u64) -> bool {
    bytes
        .get(valid_bytes as usize..)
        .is_some_and(|tail| tail.iter().all(|b| *b == 0))
}
