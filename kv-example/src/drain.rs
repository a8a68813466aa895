//! Letting answers out before a node exits: a count of requests between the moment
//! a front end reads them and the moment their answers are written.
//!
//! When a node stops (a signal, or its raft loop failed), raft-mio answers every
//! write it had taken ("fate unknown"); the connection threads then write those
//! answers. A process that exited at once would cut them off, and a client would see
//! a reset connection instead of an answer that tells it what to do. So the node
//! waits, for a bounded time, until no request is in flight.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often [`InFlight::wait_idle`] looks.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// The number of requests being served; clones share it.
#[derive(Clone, Debug, Default)]
pub struct InFlight {
    count: Arc<AtomicUsize>,
}

/// A request in flight: counted until dropped (after its answer is written).
#[derive(Debug)]
pub struct InFlightGuard {
    count: Arc<AtomicUsize>,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let before = self.count.fetch_sub(1, Ordering::AcqRel);
        debug_assert!(before > 0);
    }
}

impl InFlight {
    /// No request in flight.
    pub fn new() -> InFlight {
        InFlight::default()
    }

    /// Counts one request until the guard is dropped.
    pub fn begin(&self) -> InFlightGuard {
        self.count.fetch_add(1, Ordering::AcqRel);
        InFlightGuard {
            count: Arc::clone(&self.count),
        }
    }

    /// The requests in flight now.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Waits until no request is in flight, at most `timeout`; whether none is.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.count() > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guard_counts_until_it_is_dropped() {
        let in_flight = InFlight::new();
        let guard = in_flight.begin();
        assert_eq!(in_flight.count(), 1);
        assert!(!in_flight.wait_idle(Duration::from_millis(1)));
        let waiter = {
            let in_flight = in_flight.clone();
            std::thread::spawn(move || in_flight.wait_idle(Duration::from_secs(10)))
        };
        drop(guard);
        assert!(waiter.join().unwrap());
    }
}
