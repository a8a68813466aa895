//! The frame codec: a `u32` little-endian length, then that many bytes of a
//! `postcard`-encoded [`Message`].
//!
//! The decoder trusts nothing: a length over the maximum frame size is an error before
//! any byte of the body is buffered, so a hostile or broken peer can never make this
//! node allocate more than `4 + frame_bytes_max` bytes per connection.

use std::fmt;
use std::io::{self, Read};

use raft_core::Message;

use crate::encoding::encode_message;

/// The size of the length prefix in bytes.
pub const FRAME_HEADER_BYTES: usize = 4;

/// How many bytes one `read` asks the socket for, at least.
const READ_CHUNK_BYTES: usize = 64 << 10;

/// What [`decode_frame`] found at the start of a byte string.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A whole frame: the message and how many bytes it took.
    Frame {
        /// The decoded message.
        message: Message,
        /// The frame's size including its length prefix.
        consumed_bytes: usize,
    },
    /// The frame is incomplete; `frame_bytes` is its total size once the length prefix
    /// is known.
    NeedMore {
        /// The whole frame's size, if the prefix has arrived.
        frame_bytes: Option<usize>,
    },
}

/// A frame that can never be decoded; the connection must be closed.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The length prefix announces more than the maximum frame size.
    TooLarge {
        /// The announced body length.
        len_bytes: u64,
        /// The maximum.
        frame_bytes_max: usize,
    },
    /// The body is not a valid message.
    Malformed(String),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLarge {
                len_bytes,
                frame_bytes_max,
            } => write!(
                f,
                "frame of {len_bytes} bytes exceeds the maximum of {frame_bytes_max} bytes"
            ),
            FrameError::Malformed(reason) => write!(f, "malformed frame: {reason}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Decodes the frame at the start of `bytes`. Never panics, whatever the bytes.
pub fn decode_frame(bytes: &[u8], frame_bytes_max: usize) -> Result<Decoded, FrameError> {
    let Some(prefix) = bytes.get(..FRAME_HEADER_BYTES) else {
        return Ok(Decoded::NeedMore { frame_bytes: None });
    };
    let len_bytes = u32::from_le_bytes(prefix.try_into().expect("4 bytes")) as usize;
    if len_bytes > frame_bytes_max {
        return Err(FrameError::TooLarge {
            len_bytes: len_bytes as u64,
            frame_bytes_max,
        });
    }
    let frame_bytes = FRAME_HEADER_BYTES + len_bytes;
    let Some(body) = bytes.get(FRAME_HEADER_BYTES..frame_bytes) else {
        return Ok(Decoded::NeedMore {
            frame_bytes: Some(frame_bytes),
        });
    };
    match postcard::take_from_bytes::<Message>(body) {
        Ok((message, [])) => Ok(Decoded::Frame {
            message,
            consumed_bytes: frame_bytes,
        }),
        Ok((_, rest)) => Err(FrameError::Malformed(format!(
            "{} bytes after the message",
            rest.len()
        ))),
        Err(e) => Err(FrameError::Malformed(e.to_string())),
    }
}

/// Appends the frame of `message` to `out`; fails (leaving `out` as it was) if the
/// message encodes to more than `frame_bytes_max` bytes.
pub fn encode_frame(
    message: &Message,
    frame_bytes_max: usize,
    out: &mut Vec<u8>,
) -> Result<(), FrameError> {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER_BYTES]);
    encode_message(message, out);
    let len_bytes = out.len() - start - FRAME_HEADER_BYTES;
    if len_bytes > frame_bytes_max {
        out.truncate(start);
        return Err(FrameError::TooLarge {
            len_bytes: len_bytes as u64,
            frame_bytes_max,
        });
    }
    out[start..start + FRAME_HEADER_BYTES].copy_from_slice(&(len_bytes as u32).to_le_bytes());
    Ok(())
}

/// Reads frames from a non-blocking stream into a buffer that never grows past one
/// maximal frame plus one read chunk.
///
/// The buffer is zeroed only when it grows: `buf[start..end]` holds the bytes not yet
/// decoded, and reads go into `buf[end..]` (zero-filling a fresh chunk per read cost
/// 6% of the CPU of a lightly loaded cluster).
#[derive(Debug)]
pub struct FrameReader {
    buf: Vec<u8>,
    /// The start of the bytes not yet decoded.
    start: usize,
    /// The end of the bytes read.
    end: usize,
    frame_bytes_max: usize,
}

impl FrameReader {
    /// A reader for frames of at most `frame_bytes_max` body bytes.
    pub fn new(frame_bytes_max: usize) -> Self {
        FrameReader {
            buf: Vec::new(),
            start: 0,
            end: 0,
            frame_bytes_max,
        }
    }

    /// The bytes buffered and not yet decoded.
    pub fn buffered_bytes(&self) -> usize {
        self.end - self.start
    }

    /// Takes bytes that were read before the frames began (the handshake's leftovers).
    pub fn push_bytes(&mut self, bytes: &[u8]) {
        self.make_room(bytes.len());
        self.buf[self.end..self.end + bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
    }

    /// Makes room for at least `wanted` more bytes after `end`: first by moving the
    /// undecoded bytes to the front, then by growing (zero-filled).
    fn make_room(&mut self, wanted: usize) {
        if self.buf.len() - self.end >= wanted {
            return;
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < wanted {
            self.buf.resize(self.end + wanted, 0);
        }
    }

    /// Reads once from `stream`. Returns the number of bytes read (0: end of stream).
    pub fn read_from(&mut self, stream: &mut impl Read) -> io::Result<usize> {
        // Room for a whole chunk, or for the rest of a frame whose length is known, so
        // a large frame is read in few calls; never more than one maximal frame.
        let room = match decode_frame(&self.buf[self.start..self.end], self.frame_bytes_max) {
            Ok(Decoded::NeedMore {
                frame_bytes: Some(frame),
            }) => frame
                .saturating_sub(self.end - self.start)
                .max(READ_CHUNK_BYTES),
            _ => READ_CHUNK_BYTES,
        };
        self.make_room(room.min(READ_CHUNK_BYTES + FRAME_HEADER_BYTES + self.frame_bytes_max));
        let read = stream.read(&mut self.buf[self.end..])?;
        self.end += read;
        debug_assert!(
            self.buf.len() <= 2 * READ_CHUNK_BYTES + FRAME_HEADER_BYTES + self.frame_bytes_max
        );
        Ok(read)
    }

    /// Decodes the next buffered frame, if a whole one is there.
    pub fn next_frame(&mut self) -> Result<Option<Message>, FrameError> {
        match decode_frame(&self.buf[self.start..self.end], self.frame_bytes_max)? {
            Decoded::Frame {
                message,
                consumed_bytes,
            } => {
                self.start += consumed_bytes;
                if self.start == self.end {
                    self.start = 0;
                    self.end = 0;
                }
                Ok(Some(message))
            }
            Decoded::NeedMore { .. } => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use raft_core::{Entry, EntryPayload, LogIndex, MessageBody, NodeId, Term};

    use super::*;

    fn append_message(payload_bytes: usize) -> Message {
        Message {
            from: NodeId(1),
            to: NodeId(2),
            term: Term(3),
            body: MessageBody::AppendEntries {
                prev_log_index: LogIndex(4),
                prev_log_term: Term(3),
                entries: vec![Entry {
                    term: Term(3),
                    index: LogIndex(5),
                    payload: EntryPayload::Command(vec![9u8; payload_bytes].into()),
                }],
                leader_commit: LogIndex(4),
            },
        }
    }

    #[test]
    fn frames_round_trip_one_after_another() {
        let mut bytes = Vec::new();
        encode_frame(&append_message(10), 1 << 20, &mut bytes).unwrap();
        encode_frame(&append_message(20), 1 << 20, &mut bytes).unwrap();
        let mut reader = FrameReader::new(1 << 20);
        reader.read_from(&mut bytes.as_slice()).unwrap();
        assert_eq!(reader.next_frame().unwrap(), Some(append_message(10)));
        assert_eq!(reader.next_frame().unwrap(), Some(append_message(20)));
        assert_eq!(reader.next_frame().unwrap(), None);
    }

    /// Hands out at most `step` bytes per read.
    struct Trickle<'a> {
        bytes: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.bytes.len().min(self.step).min(buf.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    #[test]
    fn large_frames_in_small_pieces_decode_with_a_bounded_buffer() {
        let max = 1 << 20;
        let mut bytes = Vec::new();
        for payload in [300_000, 10, 700_000, 5] {
            encode_frame(&append_message(payload), max, &mut bytes).unwrap();
        }
        let mut stream = Trickle {
            bytes: &bytes,
            step: 7_001,
        };
        let mut reader = FrameReader::new(max);
        let mut decoded = Vec::new();
        for _ in 0..10_000 {
            if reader.read_from(&mut stream).unwrap() == 0 {
                break;
            }
            while let Some(message) = reader.next_frame().unwrap() {
                decoded.push(message);
            }
            assert!(reader.buf.len() <= READ_CHUNK_BYTES + FRAME_HEADER_BYTES + max);
        }
        let expected: Vec<Message> = [300_000, 10, 700_000, 5].map(append_message).into();
        assert_eq!(decoded, expected);
        assert_eq!(reader.buffered_bytes(), 0);
    }

    #[test]
    fn a_frame_over_the_maximum_is_refused_from_its_prefix_alone() {
        let huge = (1u32 << 31).to_le_bytes();
        let err = decode_frame(&huge, 1 << 20).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { len_bytes, .. } if len_bytes == 1 << 31));
        let mut out = Vec::new();
        assert!(encode_frame(&append_message(2000), 1000, &mut out).is_err());
        assert!(out.is_empty(), "a refused frame leaves nothing behind");
    }

    #[test]
    fn every_prefix_of_a_frame_needs_more() {
        let mut bytes = Vec::new();
        encode_frame(&append_message(30), 1 << 20, &mut bytes).unwrap();
        for cut in 0..bytes.len() {
            assert!(
                matches!(
                    decode_frame(&bytes[..cut], 1 << 20),
                    Ok(Decoded::NeedMore { .. })
                ),
                "cut {cut}"
            );
        }
    }

    proptest! {
        /// Any byte string decodes to a frame, "need more", or an error; never a panic.
        /// A frame is never larger than the maximum, and "need more" never asks for
        /// more than one maximal frame, so no caller buffers beyond it.
        #[test]
        fn any_bytes_decode_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), max in 0usize..256) {
            match decode_frame(&bytes, max) {
                Ok(Decoded::Frame { consumed_bytes, .. }) => {
                    prop_assert!(consumed_bytes <= FRAME_HEADER_BYTES + max);
                    prop_assert!(consumed_bytes <= bytes.len());
                }
                Ok(Decoded::NeedMore { frame_bytes: Some(n) }) => {
                    prop_assert!(n <= FRAME_HEADER_BYTES + max);
                    prop_assert!(n > bytes.len());
                }
                Ok(Decoded::NeedMore { frame_bytes: None }) => prop_assert!(bytes.len() < FRAME_HEADER_BYTES),
                Err(_) => {}
            }
        }

        /// Valid frames with garbage after them: the frame decodes, the garbage after
        /// it is the reader's next problem, never a panic.
        #[test]
        fn a_valid_prefix_decodes_whatever_follows(payload in 0usize..100, tail in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut bytes = Vec::new();
            encode_frame(&append_message(payload), 1 << 16, &mut bytes).unwrap();
            let frame_len = bytes.len();
            bytes.extend_from_slice(&tail);
            let mut reader = FrameReader::new(1 << 16);
            reader.push_bytes(&bytes);
            prop_assert_eq!(reader.next_frame().unwrap(), Some(append_message(payload)));
            prop_assert_eq!(reader.buffered_bytes(), bytes.len() - frame_len);
            let _ = reader.next_frame();
        }

        /// Random bodies behind a correct length prefix reach the message decoder,
        /// which must refuse them (or accept them) without panicking.
        #[test]
        fn random_bodies_with_a_valid_prefix_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut bytes = (body.len() as u32).to_le_bytes().to_vec();
            bytes.extend_from_slice(&body);
            match decode_frame(&bytes, 1 << 16) {
                Ok(Decoded::Frame { consumed_bytes, .. }) => prop_assert_eq!(consumed_bytes, bytes.len()),
                Ok(Decoded::NeedMore { .. }) => prop_assert!(false, "a whole frame never needs more"),
                Err(e) => prop_assert!(matches!(e, FrameError::Malformed(_))),
            }
        }
    }
}
