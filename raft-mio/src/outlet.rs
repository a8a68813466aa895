//! The loop's end of the committed stream.
//!
//! A slow application must not stall the loop: while it waits on the application,
//! a node sends no heartbeats, votes or acknowledgements, and a leader loses its
//! quorum (seen in the bench: the stream of 4096 batches filled within milliseconds
//! when the application's thread was starved). So deliveries the stream cannot take
//! wait here, merged into one batch, and the loop blocks only once
//! `backlog_entries_max` entries wait: liveness through short stalls, bounded memory
//! beyond them.

use std::collections::VecDeque;
use std::sync::mpsc::{SyncSender, TrySendError};

use crate::committed::Delivery;

/// Deliveries on their way to the application, in order.
#[derive(Debug)]
pub struct Outlet {
    tx: SyncSender<Delivery>,
    /// What the stream has not taken yet (it was full), in order.
    waiting: VecDeque<Delivery>,
    /// The entries in `waiting`.
    waiting_entries: usize,
    backlog_entries_max: usize,
    receiver_gone: bool,
}

impl Outlet {
    /// An outlet into `tx` that blocks beyond `backlog_entries_max` waiting entries.
    pub fn new(tx: SyncSender<Delivery>, backlog_entries_max: usize) -> Self {
        debug_assert!(backlog_entries_max > 0);
        Outlet {
            tx,
            waiting: VecDeque::new(),
            waiting_entries: 0,
            backlog_entries_max,
            receiver_gone: false,
        }
    }

    /// Queues `delivery` after everything waiting, then hands over what the stream takes.
    pub fn push(&mut self, delivery: Delivery) {
        if let Delivery::Entries(entries) = &delivery {
            self.waiting_entries += entries.len();
        }
        match (self.waiting.back_mut(), delivery) {
            (Some(Delivery::Entries(waiting)), Delivery::Entries(more)) => waiting.extend(more),
            (_, delivery) => self.waiting.push_back(delivery),
        }
        self.flush();
    }

    /// Hands waiting deliveries to the stream, in order, as far as it takes them
    /// (blocking only while the backlog is over its bound).
    pub fn flush(&mut self) {
        while let Some(delivery) = self.waiting.pop_front() {
            let entries = match &delivery {
                Delivery::Entries(entries) => entries.len(),
                Delivery::Restore { .. } => 0,
            };
            let sent = match self.tx.try_send(delivery) {
                Ok(()) => true,
                Err(TrySendError::Full(delivery))
                    if self.waiting_entries > self.backlog_entries_max =>
                {
                    tracing::debug!(
                        backlog = self.waiting_entries,
                        "waiting for the application"
                    );
                    self.tx.send(delivery).is_ok()
                }
                Err(TrySendError::Full(delivery)) => {
                    self.waiting.push_front(delivery);
                    return;
                }
                Err(TrySendError::Disconnected(_)) => false,
            };
            self.waiting_entries -= entries;
            if !sent && !self.receiver_gone {
                self.receiver_gone = true;
                tracing::warn!("the committed stream was dropped; committed entries are discarded");
            }
        }
        debug_assert_eq!(self.waiting_entries, 0);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::sync_channel;

    use raft_core::{Entry, EntryPayload, LogIndex, Term};

    use super::*;

    fn batch(range: std::ops::Range<u64>) -> Delivery {
        Delivery::Entries(
            range
                .map(|i| Entry {
                    term: Term(1),
                    index: LogIndex(i),
                    payload: EntryPayload::Noop,
                })
                .collect(),
        )
    }

    fn indexes(delivery: Delivery) -> Vec<u64> {
        match delivery {
            Delivery::Entries(entries) => entries.iter().map(|e| e.index.0).collect(),
            Delivery::Restore { .. } => vec![],
        }
    }

    #[test]
    fn a_full_stream_makes_deliveries_wait_merged_and_in_order() {
        let (tx, rx) = sync_channel(1);
        let mut outlet = Outlet::new(tx, 1000);
        outlet.push(batch(1..3));
        outlet.push(batch(3..5));
        outlet.push(batch(5..7));
        assert_eq!(indexes(rx.try_recv().unwrap()), vec![1, 2]);
        assert!(
            rx.try_recv().is_err(),
            "the rest waits in the outlet, not blocking"
        );
        outlet.flush();
        assert_eq!(
            indexes(rx.try_recv().unwrap()),
            vec![3, 4, 5, 6],
            "waiting batches merge"
        );
        outlet.flush();
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn a_dropped_stream_discards_without_blocking() {
        let (tx, rx) = sync_channel(1);
        drop(rx);
        let mut outlet = Outlet::new(tx, 1);
        outlet.push(batch(1..10));
        outlet.push(batch(10..20));
        outlet.flush();
    }
}
