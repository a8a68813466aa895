//! How answers reach an event-loop front end: a [`Ticket`] names one request (or one
//! batch of reads), and whoever learns what became of it (raft-mio's loop, the
//! applier, or the backend at once) pushes an [`Event`] into the front end's
//! [`Completions`], which wakes the front end's `mio` loop.
//!
//! The wake is rung only when the queue was drained since the last one, so a batch
//! of commits answered together costs the front end one wake-up, not one per request
//! (the same rule as raft-mio's own mailbox).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use mio::Waker;

use crate::api::{KvError, WriteAck};

/// What a front end keys its requests by: opaque to the backend.
pub type RequestKey = u64;

/// What became of a request, or how far it got.
#[derive(Debug)]
pub enum Event {
    /// The write committed at this index (its answer waits for the local apply).
    Committed(u64),
    /// The write's answer.
    Written(Result<WriteAck, KvError>),
    /// A read barrier's answer: once `Ok`, every read that started before it was
    /// asked for may be answered from the local store.
    Barrier(Result<(), KvError>),
}

/// One answer for the front end.
#[derive(Debug)]
pub struct Completion {
    /// The request it is for.
    pub key: RequestKey,
    /// What happened.
    pub event: Event,
}

/// The queue of answers for one front end, and the waker of its loop.
#[derive(Debug)]
pub struct Completions {
    queue: Mutex<Vec<Completion>>,
    /// Set by the first push after a drain; the one that sets it wakes the loop.
    wake_pending: AtomicBool,
    waker: Arc<Waker>,
}

impl Completions {
    /// An empty queue that wakes `waker`.
    pub fn new(waker: Arc<Waker>) -> Arc<Completions> {
        Arc::new(Completions {
            queue: Mutex::new(Vec::new()),
            wake_pending: AtomicBool::new(false),
            waker,
        })
    }

    /// A ticket for request `key`.
    pub fn ticket(self: &Arc<Self>, key: RequestKey) -> Ticket {
        Ticket {
            completions: Arc::clone(self),
            key,
        }
    }

    fn push(&self, completion: Completion, wake: bool) {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(completion);
        if wake && !self.wake_pending.swap(true, Ordering::AcqRel) {
            // A failed wake means the loop is gone: nobody waits for the answer.
            let _ = self.waker.wake();
        }
    }

    /// Moves every queued answer into `into`, in the order they came.
    pub fn drain_into(&self, into: &mut Vec<Completion>) {
        // Cleared before taking: an answer pushed after the take rings again.
        self.wake_pending.store(false, Ordering::Release);
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if into.is_empty() {
            std::mem::swap(into, &mut queue);
        } else {
            into.append(&mut queue);
        }
    }
}

/// The right to answer one request (clones answer the same one).
#[derive(Clone, Debug)]
pub struct Ticket {
    completions: Arc<Completions>,
    key: RequestKey,
}

impl Ticket {
    /// The request this ticket answers.
    pub fn key(&self) -> RequestKey {
        self.key
    }

    /// Says that the write committed at `index`. This does not wake the front end:
    /// it needs to know only when the request times out (it wakes for that), and the
    /// answer itself follows soon.
    pub fn committed(&self, index: u64) {
        self.send(Event::Committed(index), false);
    }

    /// Answers the write.
    pub fn written(&self, result: Result<WriteAck, KvError>) {
        self.send(Event::Written(result), true);
    }

    /// Answers the read barrier.
    pub fn barrier(&self, result: Result<(), KvError>) {
        self.send(Event::Barrier(result), true);
    }

    fn send(&self, event: Event, wake: bool) {
        let completion = Completion {
            key: self.key,
            event,
        };
        self.completions.push(completion, wake);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_come_out_in_order_and_one_wake_covers_a_burst() {
        let mut poll = mio::Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let completions = Completions::new(waker);
        for key in 1..=3 {
            completions
                .ticket(key)
                .written(Ok(WriteAck { index: key * 10 }));
        }
        completions.ticket(4).committed(40);
        let mut events = mio::Events::with_capacity(8);
        poll.poll(&mut events, Some(std::time::Duration::from_secs(5)))
            .unwrap();
        assert_eq!(events.iter().count(), 1, "one wake for the burst");
        let mut got = Vec::new();
        completions.drain_into(&mut got);
        let keys: Vec<RequestKey> = got.iter().map(|c| c.key).collect();
        assert_eq!(
            keys,
            [1, 2, 3, 4],
            "a commit rides along without a wake of its own"
        );
        completions.ticket(5).barrier(Ok(()));
        completions.drain_into(&mut got);
        assert_eq!(got.len(), 5, "appended after what was there");
        assert!(matches!(got[4].event, Event::Barrier(Ok(()))));
    }
}
