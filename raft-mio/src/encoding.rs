//! Appending postcard encodings to a byte buffer.
//!
//! postcard's own `to_extend` writes a byte string (every command in an entry, every
//! snapshot) one byte at a time through `Extend<u8>`: in the bench that loop was 14%
//! of all instructions (callgrind, 1024 proposals in flight). [`encode_into`] copies
//! byte strings with one `extend_from_slice` and reuses the buffer's capacity.
//!
//! The two encodings on the hot path, a command entry (a log record, three per
//! commit across the cluster) and an AppendEntries (a frame per follower), are
//! written by hand: postcard passes each varint through a 10-byte buffer and a
//! `memcpy`, about 250 instructions per command entry where these take about 60.
//! The bytes are postcard's to the byte (a property test compares them for any
//! entry and message), and decoding stays postcard's own; anything else (no-ops,
//! configurations, other messages) goes through serde.

use postcard::ser_flavors::Flavor;
use raft_core::{Entry, EntryPayload, Message, MessageBody};
use serde::Serialize;

/// A postcard flavor that appends to a `Vec<u8>`.
struct AppendToVec<'a>(&'a mut Vec<u8>);

impl Flavor for AppendToVec<'_> {
    type Output = ();

    #[inline]
    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.0.push(byte);
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Appends the postcard encoding of `value` to `out` (on an error, `out` may hold
/// part of it).
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> postcard::Result<()> {
    postcard::serialize_with_flavor(value, AppendToVec(out))
}

/// postcard's variant index of `EntryPayload::Command` (its second variant).
const COMMAND_VARIANT: u64 = 1;
/// postcard's variant index of `MessageBody::AppendEntries` (its third variant).
const APPEND_ENTRIES_VARIANT: u64 = 2;
/// The most bytes of one varint.
const VARINT_BYTES_MAX: usize = 10;

/// Appends postcard's varint of `n`: seven bits a byte, low first, the high bit set on
/// every byte but the last.
#[inline]
fn push_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Appends the postcard encoding of `entry` to `out`.
pub(crate) fn encode_entry(entry: &Entry, out: &mut Vec<u8>) {
    let EntryPayload::Command(command) = &entry.payload else {
        encode_into(entry, out).expect("an entry always serializes");
        return;
    };
    out.reserve(4 * VARINT_BYTES_MAX + command.len());
    push_varint(out, entry.term.0);
    push_varint(out, entry.index.0);
    push_varint(out, COMMAND_VARIANT);
    push_varint(out, command.len() as u64);
    out.extend_from_slice(command);
}

/// Appends the postcard encoding of `message` to `out`.
pub(crate) fn encode_message(message: &Message, out: &mut Vec<u8>) {
    let MessageBody::AppendEntries {
        prev_log_index,
        prev_log_term,
        entries,
        leader_commit,
    } = &message.body
    else {
        encode_into(message, out).expect("a message always serializes");
        return;
    };
    let entries_bytes: u64 = entries.iter().map(Entry::size_bytes).sum();
    out.reserve(8 * VARINT_BYTES_MAX + entries_bytes as usize + 16 * entries.len());
    push_varint(out, message.from.0);
    push_varint(out, message.to.0);
    push_varint(out, message.term.0);
    push_varint(out, APPEND_ENTRIES_VARIANT);
    push_varint(out, prev_log_index.0);
    push_varint(out, prev_log_term.0);
    push_varint(out, entries.len() as u64);
    for entry in entries {
        encode_entry(entry, out);
    }
    push_varint(out, leader_commit.0);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use raft_core::{LogIndex, Membership, NodeId, Term};

    use super::*;

    fn payload(kind: u8, bytes: Vec<u8>) -> EntryPayload {
        match kind {
            0 => EntryPayload::Noop,
            1 => EntryPayload::Membership(Box::new(Membership::new(
                bytes.iter().map(|b| NodeId(u64::from(*b) + 1)),
            ))),
            _ => EntryPayload::Command(bytes.into()),
        }
    }

    fn any_u64() -> impl Strategy<Value = u64> {
        prop_oneof![0u64..300, any::<u64>()]
    }

    fn any_entry() -> impl Strategy<Value = Entry> {
        (
            any_u64(),
            any_u64(),
            0u8..4,
            proptest::collection::vec(any::<u8>(), 0..300),
        )
            .prop_map(|(term, index, kind, bytes)| Entry {
                term: Term(term),
                index: LogIndex(index),
                payload: payload(kind, bytes),
            })
    }

    proptest! {
        /// The hand-written encodings are postcard's, byte for byte.
        #[test]
        fn hand_written_encodings_are_postcards(
            entries in proptest::collection::vec(any_entry(), 0..6),
            ids in (any_u64(), any_u64(), any_u64()),
            indexes in (any_u64(), any_u64(), any_u64()),
        ) {
            for entry in &entries {
                let mut out = vec![9];
                encode_entry(entry, &mut out);
                prop_assert_eq!(&out[1..], &postcard::to_stdvec(entry).unwrap()[..]);
            }
            let bodies = [
                MessageBody::AppendEntries {
                    prev_log_index: LogIndex(indexes.0),
                    prev_log_term: Term(indexes.1),
                    entries,
                    leader_commit: LogIndex(indexes.2),
                },
                MessageBody::Heartbeat { commit: LogIndex(indexes.2), read_round: indexes.0 },
            ];
            for body in bodies {
                let message = Message { from: NodeId(ids.0), to: NodeId(ids.1), term: Term(ids.2), body };
                let mut out = Vec::new();
                encode_message(&message, &mut out);
                prop_assert_eq!(&out, &postcard::to_stdvec(&message).unwrap());
                let decoded: Message = postcard::from_bytes(&out).unwrap();
                prop_assert_eq!(decoded, message);
            }
        }
    }

    #[test]
    fn appends_exactly_what_postcard_encodes() {
        let entry = Entry {
            term: Term(3),
            index: LogIndex(300),
            payload: EntryPayload::Command(vec![7u8; 200].into()),
        };
        let mut out = vec![0xAA];
        encode_into(&entry, &mut out).unwrap();
        assert_eq!(out[0], 0xAA, "what was there stays");
        assert_eq!(out[1..], postcard::to_stdvec(&entry).unwrap()[..]);
    }
}
