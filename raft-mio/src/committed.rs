//! The committed stream: every committed entry, in index order, decoded into the
//! application's command type on the application's thread (which keeps the event
//! loop's share of the work small).

use std::marker::PhantomData;
use std::sync::mpsc::{Receiver, RecvError, RecvTimeoutError, TryRecvError};
use std::time::Duration;

use raft_core::{Entry, EntryPayload, LogIndex, Membership, SharedBytes, SnapshotMeta, Term};
use serde::de::DeserializeOwned;

use crate::envelope::{decode_entry, Payload};
use crate::members::AddrTable;

/// What the loop hands the stream: a batch of applied entries, or a snapshot that
/// replaces the state machine.
#[derive(Debug)]
pub(crate) enum Delivery {
    Entries(Vec<Entry>),
    Restore {
        meta: SnapshotMeta,
        data: SharedBytes,
    },
}

/// One item of the committed stream. Every log index appears exactly once per node
/// lifetime, in order (a `Restore` stands for every index up to its `meta.last_index`),
/// so an application that tracks [`Committed::index`] knows how far it has applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Committed<T> {
    /// A committed command: apply it.
    Command {
        /// The entry's index.
        index: LogIndex,
        /// The term it was proposed in.
        term: Term,
        /// The command.
        command: T,
    },
    /// A leader's no-op entry (nothing to apply; it advances the index).
    Noop {
        /// The entry's index.
        index: LogIndex,
        /// Its term.
        term: Term,
    },
    /// A membership change took effect in the log (nothing to apply).
    Membership {
        /// The entry's index.
        index: LogIndex,
        /// Its term.
        term: Term,
        /// The new membership.
        membership: Membership,
    },
    /// raft-mio's address record (see [`members`](crate::members)): where members
    /// are reached, now known cluster-wide (nothing to apply; it advances the index).
    Addresses {
        /// The entry's index.
        index: LogIndex,
        /// Its term.
        term: Term,
        /// The members' addresses the record adds or replaces.
        addrs: AddrTable,
    },
    /// Replace the state machine with this snapshot (state as of `meta.last_index`).
    Restore {
        /// What the snapshot covers.
        meta: SnapshotMeta,
        /// The application's serialized state.
        data: SharedBytes,
    },
    /// A committed command that does not decode as `T` (a different application
    /// version wrote it). Every node sees the same bytes, so skipping it keeps the
    /// replicas identical; the application decides whether that is acceptable.
    Undecodable {
        /// The entry's index.
        index: LogIndex,
        /// Its term.
        term: Term,
        /// The decoder's complaint.
        error: String,
    },
}

impl<T> Committed<T> {
    /// The log index this item brings the application to.
    pub fn index(&self) -> LogIndex {
        match self {
            Committed::Command { index, .. }
            | Committed::Noop { index, .. }
            | Committed::Membership { index, .. }
            | Committed::Addresses { index, .. }
            | Committed::Undecodable { index, .. } => *index,
            Committed::Restore { meta, .. } => meta.last_index,
        }
    }
}

/// The receiving end of the committed stream.
#[derive(Debug)]
pub struct CommittedStream<T> {
    rx: Receiver<Delivery>,
    /// The rest of the last delivery (taken as it came, not copied).
    batch: std::vec::IntoIter<Entry>,
    last_index: LogIndex,
    _command: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> CommittedStream<T> {
    pub(crate) fn new(rx: Receiver<Delivery>) -> Self {
        CommittedStream {
            rx,
            batch: Vec::new().into_iter(),
            last_index: LogIndex(0),
            _command: PhantomData,
        }
    }

    /// The index of the last item returned (0 before the first). Once it reaches the
    /// index returned by [`Client::read_index`](crate::Client::read_index), a read of
    /// the application's state is linearizable.
    pub fn last_index(&self) -> LogIndex {
        self.last_index
    }

    /// Blocks for the next committed item; an error once the node has stopped.
    pub fn recv(&mut self) -> Result<Committed<T>, RecvError> {
        if self.batch.len() == 0 {
            let delivery = self.rx.recv()?;
            if let Some(item) = self.accept(delivery) {
                return Ok(item);
            }
        }
        Ok(self.next_from_batch())
    }

    /// The next committed item if one is ready.
    pub fn try_recv(&mut self) -> Result<Committed<T>, TryRecvError> {
        if self.batch.len() == 0 {
            let delivery = self.rx.try_recv()?;
            if let Some(item) = self.accept(delivery) {
                return Ok(item);
            }
        }
        Ok(self.next_from_batch())
    }

    /// Waits at most `timeout` for the next committed item.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Committed<T>, RecvTimeoutError> {
        if self.batch.len() == 0 {
            let delivery = self.rx.recv_timeout(timeout)?;
            if let Some(item) = self.accept(delivery) {
                return Ok(item);
            }
        }
        Ok(self.next_from_batch())
    }

    /// Takes a delivery: a restore is returned at once, entries are buffered.
    fn accept(&mut self, delivery: Delivery) -> Option<Committed<T>> {
        match delivery {
            Delivery::Entries(entries) => {
                debug_assert!(!entries.is_empty(), "the loop never sends an empty batch");
                debug_assert_eq!(
                    self.batch.len(),
                    0,
                    "a delivery is taken once the last is done"
                );
                self.batch = entries.into_iter();
                None
            }
            Delivery::Restore { meta, data } => {
                self.last_index = meta.last_index;
                Some(Committed::Restore { meta, data })
            }
        }
    }

    fn next_from_batch(&mut self) -> Committed<T> {
        let entry = self.batch.next().expect("a delivered batch is never empty");
        debug_assert!(
            self.last_index == LogIndex(0) || entry.index == self.last_index.next(),
            "committed entries arrive in order without gaps"
        );
        self.last_index = entry.index;
        let (index, term) = (entry.index, entry.term);
        match entry.payload {
            EntryPayload::Command(bytes) => match decode_entry(&bytes) {
                Payload::Command(command) => match postcard::from_bytes(command) {
                    Ok(command) => Committed::Command {
                        index,
                        term,
                        command,
                    },
                    Err(e) => Committed::Undecodable {
                        index,
                        term,
                        error: e.to_string(),
                    },
                },
                Payload::Record(addrs) => Committed::Addresses { index, term, addrs },
                Payload::Invalid(error) => Committed::Undecodable { index, term, error },
            },
            EntryPayload::Noop => Committed::Noop { index, term },
            EntryPayload::Membership(membership) => Committed::Membership {
                index,
                term,
                membership: *membership,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::sync_channel;

    use super::*;

    fn entry(index: u64, payload: EntryPayload) -> Entry {
        Entry {
            term: Term(1),
            index: LogIndex(index),
            payload,
        }
    }

    #[test]
    fn batches_come_out_one_item_at_a_time_in_order() {
        let (tx, rx) = sync_channel(4);
        let mut stream = CommittedStream::<String>::new(rx);
        let command = |s: &str| {
            EntryPayload::Command(crate::envelope::encode_command(&s.to_string()).unwrap())
        };
        let record: AddrTable = [(raft_core::NodeId(4), "h4:7004".into())].into();
        tx.send(Delivery::Entries(vec![
            entry(1, EntryPayload::Noop),
            entry(2, command("a")),
        ]))
        .unwrap();
        tx.send(Delivery::Entries(vec![
            entry(3, EntryPayload::Command(vec![0xff, 0xff].into())),
            entry(4, EntryPayload::Command(vec![0, 0xff].into())),
            entry(
                5,
                EntryPayload::Command(crate::envelope::encode_record(&record)),
            ),
        ]))
        .unwrap();
        assert_eq!(
            stream.recv().unwrap(),
            Committed::Noop {
                index: LogIndex(1),
                term: Term(1)
            }
        );
        assert_eq!(
            stream.recv().unwrap(),
            Committed::Command {
                index: LogIndex(2),
                term: Term(1),
                command: "a".to_string()
            }
        );
        for undecodable in [3, 4] {
            assert!(matches!(
                stream.try_recv().unwrap(),
                Committed::Undecodable { index, .. } if index == LogIndex(undecodable)
            ));
        }
        assert_eq!(
            stream.recv().unwrap(),
            Committed::Addresses {
                index: LogIndex(5),
                term: Term(1),
                addrs: record
            }
        );
        assert_eq!(stream.last_index(), LogIndex(5));
        assert!(stream.try_recv().is_err());
        drop(tx);
        assert!(
            stream.recv().is_err(),
            "the stream ends when the node stops"
        );
    }
}
