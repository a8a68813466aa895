//! The record format of the log segments: a checksummed header, then the payload.
//!
//! ```text
//! +--------------+------------------+-----------------+---------------------+
//! | len: u32 LE  | payload_crc: u32 | header_crc: u32 | payload (len bytes) |
//! +--------------+------------------+-----------------+---------------------+
//! ```
//! Both checksums are CRC32C. The header has its own checksum so that a flipped bit in
//! the length cannot send recovery off reading the wrong span as a torn tail: a bad
//! header is detected before its length is trusted.

/// The size of a record header in bytes.
pub const RECORD_HEADER_BYTES: usize = 12;

/// The largest payload a record may hold. Far above any entry the core produces
/// (`msg_bytes_max` bounds batches, not entries, but an entry of 256 MiB would be
/// absurd), and low enough that a corrupt length can never make recovery allocate
/// gigabytes.
pub const RECORD_PAYLOAD_BYTES_MAX: u32 = 256 << 20;

/// Appends one record holding `payload` to `out`.
pub fn encode_record(payload: &[u8], out: &mut Vec<u8>) {
    let start = begin_record(out);
    out.extend_from_slice(payload);
    finish_record(out, start);
}

/// Reserves a record header at the end of `out` and returns where the record starts;
/// the caller appends the payload and calls [`finish_record`]. Serializing straight
/// into the write buffer this way saves a copy per entry.
pub fn begin_record(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0u8; RECORD_HEADER_BYTES]);
    start
}

/// Fills in the header of the record that starts at `start` and whose payload is
/// everything after its header in `out`.
pub fn finish_record(out: &mut [u8], start: usize) {
    debug_assert!(out.len() >= start + RECORD_HEADER_BYTES);
    let payload = &out[start + RECORD_HEADER_BYTES..];
    let len = u32::try_from(payload.len()).expect("record payload over 4 GiB");
    assert!(
        len <= RECORD_PAYLOAD_BYTES_MAX,
        "record payload of {len} bytes over the maximum"
    );
    let payload_crc = crc32c::crc32c(payload);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&payload_crc.to_le_bytes());
    let header_crc = crc32c::crc32c(&out[start..start + 8]);
    out[start + 8..start + 12].copy_from_slice(&header_crc.to_le_bytes());
}

/// What [`decode_record`] found at an offset.
#[derive(Debug, PartialEq, Eq)]
pub enum RecordRead<'a> {
    /// A valid record: its payload and the offset just past it.
    Record {
        /// The payload bytes.
        payload: &'a [u8],
        /// The offset of the next record.
        next_offset: usize,
    },
    /// The bytes end before the record does (a torn tail, if nothing valid follows).
    Truncated,
    /// The header's checksum does not match, or its length is impossible.
    BadHeader,
    /// The header is valid but the payload's checksum does not match.
    BadPayload,
}

/// Reads the record starting at `offset` of `bytes`.
pub fn decode_record(bytes: &[u8], offset: usize) -> RecordRead<'_> {
    debug_assert!(offset <= bytes.len());
    let rest = &bytes[offset..];
    if rest.len() < RECORD_HEADER_BYTES {
        return RecordRead::Truncated;
    }
    let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes"));
    let payload_crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
    let header_crc = u32::from_le_bytes(rest[8..12].try_into().expect("4 bytes"));
    if crc32c::crc32c(&rest[0..8]) != header_crc || len > RECORD_PAYLOAD_BYTES_MAX {
        return RecordRead::BadHeader;
    }
    let end = RECORD_HEADER_BYTES + len as usize;
    if rest.len() < end {
        return RecordRead::Truncated;
    }
    let payload = &rest[RECORD_HEADER_BYTES..end];
    if crc32c::crc32c(payload) != payload_crc {
        return RecordRead::BadPayload;
    }
    RecordRead::Record {
        payload,
        next_offset: offset + end,
    }
}

/// Whether any complete, valid record starts at an offset in `from..bytes.len()`.
///
/// Recovery uses it to tell a torn tail (nothing valid after the damage: the crash
/// interrupted the last write) from corruption in the middle (valid records follow:
/// something damaged acknowledged data, and the node must refuse to start).
pub fn valid_record_after(bytes: &[u8], from: usize) -> Option<usize> {
    (from..bytes.len())
        .find(|&offset| matches!(decode_record(bytes, offset), RecordRead::Record { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips() {
        let mut out = Vec::new();
        encode_record(b"hello", &mut out);
        encode_record(b"", &mut out);
        let RecordRead::Record {
            payload,
            next_offset,
        } = decode_record(&out, 0)
        else {
            panic!("first record")
        };
        assert_eq!(payload, b"hello");
        assert_eq!(
            decode_record(&out, next_offset),
            RecordRead::Record {
                payload: b"",
                next_offset: out.len()
            }
        );
    }

    #[test]
    fn a_flipped_length_bit_is_a_bad_header_not_a_short_read() {
        let mut out = Vec::new();
        encode_record(b"hello", &mut out);
        out[3] ^= 0x80;
        assert_eq!(decode_record(&out, 0), RecordRead::BadHeader);
    }

    #[test]
    fn a_flipped_payload_bit_is_a_bad_payload() {
        let mut out = Vec::new();
        encode_record(b"hello", &mut out);
        out[RECORD_HEADER_BYTES + 1] ^= 1;
        assert_eq!(decode_record(&out, 0), RecordRead::BadPayload);
    }

    #[test]
    fn every_prefix_of_a_record_is_truncated() {
        let mut out = Vec::new();
        encode_record(b"hello world", &mut out);
        for cut in 0..out.len() {
            assert_eq!(
                decode_record(&out[..cut], 0),
                RecordRead::Truncated,
                "cut at {cut}"
            );
        }
    }
}
