//! How raft-mio lays out the bytes it hands the core: command entries carry a
//! one-byte tag that says whose they are, and snapshots carry the members' address
//! table next to the application's state. The application never sees either
//! envelope: the committed stream unwraps them.
//!
//! - A command entry is [`TAG_COMMAND`] and the application command's postcard
//!   encoding, or [`TAG_ADDRS`] and an address record (an [`AddrTable`], see
//!   [`members`](crate::members)).
//! - A snapshot's data is a versioned envelope: the address table as of the
//!   snapshot's last index, then the application's bytes.

use std::cell::RefCell;

use raft_core::SharedBytes;
use serde::{Deserialize, Serialize};

use crate::encoding::encode_into;
use crate::members::AddrTable;

/// The first byte of a command entry that holds an application command (its
/// postcard encoding follows).
pub const TAG_COMMAND: u8 = 0;
/// The first byte of a command entry that holds an address record (an [`AddrTable`]
/// in postcard follows).
pub const TAG_ADDRS: u8 = 1;

/// A thread's scratch buffer over this size is not kept for its next command.
const SCRATCH_BYTES_KEPT_MAX: usize = 64 << 10;

thread_local! {
    /// Where a thread encodes a command before it is copied into its shared buffer:
    /// one allocation per command, where a fresh `Vec` grew several times and was
    /// then copied anyway (`SharedBytes` is an `Arc<[u8]>`).
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The entry bytes of an application command.
pub(crate) fn encode_command<T: Serialize>(command: &T) -> Result<SharedBytes, postcard::Error> {
    encode_tagged(TAG_COMMAND, command)
}

/// The entry bytes of an address record.
pub(crate) fn encode_record(record: &AddrTable) -> SharedBytes {
    encode_tagged(TAG_ADDRS, record).expect("an address table always encodes")
}

fn encode_tagged<T: Serialize + ?Sized>(
    tag: u8,
    value: &T,
) -> Result<SharedBytes, postcard::Error> {
    let encode = |buf: &mut Vec<u8>| {
        buf.clear();
        buf.push(tag);
        encode_into(value, buf).map(|()| SharedBytes::copy_from_slice(buf))
    };
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut buf) => {
            let encoded = encode(&mut buf);
            if buf.capacity() > SCRATCH_BYTES_KEPT_MAX {
                *buf = Vec::new();
            }
            encoded
        }
        // A `Serialize` impl that itself encodes a command.
        Err(_) => encode(&mut Vec::new()),
    })
}

/// What a command entry holds.
#[derive(Debug)]
pub(crate) enum Payload<'a> {
    /// An application command's encoding.
    Command(&'a [u8]),
    /// An address record.
    Record(AddrTable),
    /// Neither: another version of raft-mio wrote it, or it is corrupt.
    Invalid(String),
}

/// Reads a command entry's envelope.
pub(crate) fn decode_entry(bytes: &[u8]) -> Payload<'_> {
    match bytes.split_first() {
        Some((&TAG_COMMAND, command)) => Payload::Command(command),
        Some((&TAG_ADDRS, record)) => match postcard::from_bytes(record) {
            Ok(table) => Payload::Record(table),
            Err(e) => Payload::Invalid(format!("an address record that does not decode: {e}")),
        },
        Some((tag, _)) => Payload::Invalid(format!("an entry with the unknown tag {tag}")),
        None => Payload::Invalid("an empty command entry".into()),
    }
}

/// The version of the snapshot envelope; bumped on any change to its layout.
const SNAPSHOT_FORMAT: u32 = 1;

/// What raft-mio stores as a snapshot's data: the address table as of the snapshot's
/// last index, and the application's state.
#[derive(Serialize)]
struct SnapshotEnvelopeRef<'a> {
    format: u32,
    addrs: &'a AddrTable,
    app: &'a SharedBytes,
}

#[derive(Deserialize)]
struct SnapshotEnvelope {
    format: u32,
    addrs: AddrTable,
    app: SharedBytes,
}

/// Wraps the application's snapshot with the address table.
pub(crate) fn wrap_snapshot(addrs: &AddrTable, app: &SharedBytes) -> SharedBytes {
    let envelope = SnapshotEnvelopeRef {
        format: SNAPSHOT_FORMAT,
        addrs,
        app,
    };
    postcard::to_allocvec(&envelope)
        .expect("a snapshot envelope always encodes")
        .into()
}

/// Splits a snapshot's data into the address table and the application's state.
pub(crate) fn unwrap_snapshot(data: &[u8]) -> Result<(AddrTable, SharedBytes), String> {
    let envelope: SnapshotEnvelope = postcard::from_bytes(data)
        .map_err(|e| format!("the snapshot is not one raft-mio wrote: {e}"))?;
    if envelope.format != SNAPSHOT_FORMAT {
        return Err(format!(
            "the snapshot has format {}, this raft-mio reads format {SNAPSHOT_FORMAT}",
            envelope.format
        ));
    }
    Ok((envelope.addrs, envelope.app))
}

#[cfg(test)]
mod tests {
    use raft_core::NodeId;

    use super::*;
    use crate::members::MemberAddrs;

    fn table(items: &[(u64, &str)]) -> AddrTable {
        items
            .iter()
            .map(|(id, a)| {
                (
                    NodeId(*id),
                    MemberAddrs::new(*a).with("client", format!("{a}-client")),
                )
            })
            .collect()
    }

    #[test]
    fn entries_carry_their_kind_in_one_byte() {
        let command = encode_command(&"hello".to_string()).unwrap();
        assert_eq!(command[0], TAG_COMMAND);
        let Payload::Command(bytes) = decode_entry(&command) else {
            panic!("a command");
        };
        assert_eq!(postcard::from_bytes::<String>(bytes).unwrap(), "hello");

        let record = table(&[(4, "h4:7004")]);
        let Payload::Record(decoded) = decode_entry(&encode_record(&record)) else {
            panic!("a record");
        };
        assert_eq!(decoded, record);
        assert!(matches!(decode_entry(&[7, 1]), Payload::Invalid(_)));
        assert!(matches!(decode_entry(&[]), Payload::Invalid(_)));
        assert!(matches!(
            decode_entry(&[TAG_ADDRS, 0xff]),
            Payload::Invalid(_)
        ));
    }

    #[test]
    fn a_snapshot_carries_the_table_next_to_the_application_state() {
        let addrs = table(&[(1, "h1:1"), (2, "h2:2")]);
        let app = SharedBytes::from(vec![1u8, 2, 3]);
        let wrapped = wrap_snapshot(&addrs, &app);
        assert_eq!(unwrap_snapshot(&wrapped).unwrap(), (addrs, app));
        let err = unwrap_snapshot(&[1, 2, 3]).unwrap_err();
        assert!(err.contains("not one raft-mio wrote"), "{err}");
    }
}
