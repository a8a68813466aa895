//! The chunks of a snapshot transfer, with their own flow control: the leader's
//! sending state per follower, and the follower's assembly of the chunks it receives.
//!
//! Transfers are offset-based: the follower answers every chunk with the offset it
//! wants next, so a lost chunk is resent from there and nothing starts over.

use crate::message::SnapshotChunk;
use crate::types::{LogIndex, SharedBytes, Snapshot, SnapshotMeta};

/// The leader's state of a snapshot transfer to one follower.
#[derive(Clone, Debug)]
pub(crate) struct SnapshotSend {
    /// The snapshot being sent (identified by its last index).
    pub(crate) last_index: LogIndex,
    /// The total size of the snapshot.
    pub(crate) total_bytes: u64,
    /// Bytes before this offset were sent.
    pub(crate) sent_offset: u64,
    /// Bytes before this offset are acknowledged.
    pub(crate) acked_offset: u64,
    /// An empty snapshot travels as one empty chunk; it was sent.
    empty_chunk_sent: bool,
}

impl SnapshotSend {
    /// A transfer of `snapshot` from its start.
    pub(crate) fn new(snapshot: &Snapshot) -> Self {
        SnapshotSend {
            last_index: snapshot.meta.last_index,
            total_bytes: snapshot.data.len() as u64,
            sent_offset: 0,
            acked_offset: 0,
            empty_chunk_sent: false,
        }
    }

    /// The next chunk to send, if the window (`chunks_inflight_max` chunks of
    /// `chunk_bytes`) allows one. An empty snapshot is sent as one empty chunk.
    pub(crate) fn next_chunk(
        &mut self,
        snapshot: &Snapshot,
        chunk_bytes: u64,
        chunks_inflight_max: usize,
    ) -> Option<SnapshotChunk> {
        debug_assert_eq!(snapshot.meta.last_index, self.last_index);
        let window_bytes = chunk_bytes.saturating_mul(chunks_inflight_max as u64);
        let in_flight = self.sent_offset - self.acked_offset;
        let everything_sent = if self.total_bytes == 0 {
            self.empty_chunk_sent
        } else {
            self.sent_offset >= self.total_bytes
        };
        if everything_sent || in_flight >= window_bytes {
            return None;
        }
        let start = self.sent_offset;
        let end = (start + chunk_bytes).min(self.total_bytes);
        self.sent_offset = end;
        self.empty_chunk_sent = self.total_bytes == 0;
        Some(SnapshotChunk {
            meta: snapshot.meta.clone(),
            offset: start,
            total_bytes: self.total_bytes,
            data: SharedBytes::copy_from_slice(&snapshot.data[start as usize..end as usize]),
        })
    }

    /// The follower wants `next_offset` next. Returns whether that acknowledged
    /// something new.
    pub(crate) fn acknowledged(&mut self, next_offset: u64) -> bool {
        let next_offset = next_offset.min(self.total_bytes);
        if next_offset > self.acked_offset {
            self.acked_offset = next_offset;
            if self.sent_offset < self.acked_offset {
                self.sent_offset = self.acked_offset;
            }
            return true;
        }
        false
    }

    /// Resends from the last acknowledged offset (a chunk was lost).
    pub(crate) fn rewind(&mut self) {
        self.sent_offset = self.acked_offset;
        self.empty_chunk_sent = false;
    }

    /// Whether sent bytes wait for acknowledgement.
    pub(crate) fn has_unacknowledged(&self) -> bool {
        self.sent_offset > self.acked_offset || self.empty_chunk_sent
    }
}

/// A snapshot being received.
#[derive(Clone, Debug)]
pub(crate) struct IncomingSnapshot {
    meta: SnapshotMeta,
    total_bytes: u64,
    data: Vec<u8>,
}

/// What receiving a chunk led to.
#[derive(Debug)]
pub(crate) enum ChunkOutcome {
    /// More is needed, from this offset.
    Need(u64),
    /// The snapshot is whole.
    Complete(Snapshot),
}

impl IncomingSnapshot {
    /// Adds `chunk` to the transfer in `slot`, starting a new transfer if the chunk
    /// belongs to another snapshot. Chunks out of order are not kept: the answer
    /// asks for the missing offset.
    pub(crate) fn receive(
        slot: &mut Option<IncomingSnapshot>,
        chunk: SnapshotChunk,
    ) -> ChunkOutcome {
        let same = slot.as_ref().is_some_and(|s| {
            s.meta.last_index == chunk.meta.last_index
                && s.meta.last_term == chunk.meta.last_term
                && s.total_bytes == chunk.total_bytes
        });
        if !same {
            if chunk.offset != 0 {
                *slot = None;
                return ChunkOutcome::Need(0);
            }
            *slot = Some(IncomingSnapshot {
                meta: chunk.meta.clone(),
                total_bytes: chunk.total_bytes,
                data: Vec::new(),
            });
        }
        let incoming = slot.as_mut().expect("set above");
        if chunk.offset == incoming.data.len() as u64 {
            incoming.data.extend_from_slice(&chunk.data);
        }
        let have = incoming.data.len() as u64;
        debug_assert!(have <= incoming.total_bytes);
        if have < incoming.total_bytes {
            return ChunkOutcome::Need(have);
        }
        let done = slot.take().expect("set above");
        ChunkOutcome::Complete(Snapshot {
            meta: done.meta,
            data: SharedBytes::from(done.data),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Term;

    fn snapshot(len: usize) -> Snapshot {
        Snapshot {
            meta: SnapshotMeta {
                last_index: LogIndex(10),
                last_term: Term(2),
                membership: Default::default(),
            },
            data: SharedBytes::from((0..len).map(|i| i as u8).collect::<Vec<_>>()),
        }
    }

    #[test]
    fn transfer_resumes_after_a_lost_chunk() {
        let snap = snapshot(10);
        let mut send = SnapshotSend::new(&snap);
        let mut slot = None;
        let c1 = send.next_chunk(&snap, 4, 2).unwrap();
        let _lost = send.next_chunk(&snap, 4, 2).unwrap();
        assert!(
            send.next_chunk(&snap, 4, 2).is_none(),
            "window of two chunks"
        );
        let ChunkOutcome::Need(next) = IncomingSnapshot::receive(&mut slot, c1) else {
            panic!()
        };
        assert_eq!(next, 4);
        send.acknowledged(next);
        let c3 = send.next_chunk(&snap, 4, 2).unwrap();
        assert_eq!(c3.offset, 8);
        let ChunkOutcome::Need(next) = IncomingSnapshot::receive(&mut slot, c3) else {
            panic!()
        };
        assert_eq!(next, 4, "out of order: ask again for the lost chunk");
        send.rewind();
        let again = send.next_chunk(&snap, 4, 2).unwrap();
        assert_eq!(again.offset, 4);
        IncomingSnapshot::receive(&mut slot, again);
        let last = send.next_chunk(&snap, 4, 2).unwrap();
        let ChunkOutcome::Complete(done) = IncomingSnapshot::receive(&mut slot, last) else {
            panic!()
        };
        assert_eq!(done, snap);
    }

    #[test]
    fn empty_snapshot_is_one_empty_chunk() {
        let snap = snapshot(0);
        let mut send = SnapshotSend::new(&snap);
        let chunk = send.next_chunk(&snap, 4, 2).unwrap();
        assert!(send.next_chunk(&snap, 4, 2).is_none());
        let mut slot = None;
        assert!(matches!(
            IncomingSnapshot::receive(&mut slot, chunk),
            ChunkOutcome::Complete(_)
        ));
    }
}
