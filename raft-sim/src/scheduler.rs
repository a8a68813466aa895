//! The discrete-event queue: events ordered by virtual time, ties broken by the
//! order they were scheduled in, so a run never depends on heap internals.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::time::SimTime;

/// The most events pending at once. Raft is reactive (every message answers a tick or
/// another message), so a healthy run stays far below; hitting it means a runaway.
pub const EVENTS_PENDING_MAX: usize = 1 << 20;

struct Scheduled<E> {
    at: SimTime,
    /// Ties at the same instant pop in scheduling order.
    seq: u64,
    event: E,
}

impl<E> PartialEq for Scheduled<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<E> Eq for Scheduled<E> {}

impl<E> PartialOrd for Scheduled<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Scheduled<E> {
    fn cmp(&self, other: &Self) -> Ordering {
        // BinaryHeap is a max-heap: reverse so the earliest pops first.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// A queue of future events in virtual time.
pub struct Scheduler<E> {
    heap: BinaryHeap<Scheduled<E>>,
    now: SimTime,
    seq_next: u64,
}

/// The queue is full: the run is out of control.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueFull {
    /// When it happened.
    pub at: SimTime,
}

impl<E> Default for Scheduler<E> {
    fn default() -> Self {
        Scheduler::new()
    }
}

impl<E> Scheduler<E> {
    /// An empty queue at time zero.
    pub fn new() -> Self {
        Scheduler {
            heap: BinaryHeap::new(),
            now: SimTime::ZERO,
            seq_next: 0,
        }
    }

    /// The time of the event being processed (of the last one popped).
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// The number of events pending.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Schedules `event` at `at`, which must not be in the past.
    pub fn schedule_at(&mut self, at: SimTime, event: E) -> Result<(), QueueFull> {
        assert!(at >= self.now, "scheduled in the past: {at} < {}", self.now);
        if self.heap.len() >= EVENTS_PENDING_MAX {
            return Err(QueueFull { at: self.now });
        }
        let seq = self.seq_next;
        self.seq_next += 1;
        self.heap.push(Scheduled { at, seq, event });
        Ok(())
    }

    /// Schedules `event` `delay_us` microseconds from now.
    pub fn schedule_in(&mut self, delay_us: u64, event: E) -> Result<(), QueueFull> {
        self.schedule_at(self.now.plus_us(delay_us), event)
    }

    /// Pops the earliest event and advances time to it.
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        let next = self.heap.pop()?;
        debug_assert!(next.at >= self.now, "time never runs backwards");
        self.now = next.at;
        Some((next.at, next.event))
    }

    /// The time of the earliest pending event.
    pub fn peek_time(&self) -> Option<SimTime> {
        self.heap.peek().map(|s| s.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_order_then_scheduling_order() {
        let mut s = Scheduler::new();
        s.schedule_at(SimTime(30), "c").unwrap();
        s.schedule_at(SimTime(10), "a").unwrap();
        s.schedule_at(SimTime(30), "d").unwrap();
        s.schedule_at(SimTime(20), "b").unwrap();
        let order: Vec<_> = std::iter::from_fn(|| s.pop()).map(|(_, e)| e).collect();
        assert_eq!(order, ["a", "b", "c", "d"]);
        assert_eq!(s.now(), SimTime(30));
    }

    #[test]
    fn schedule_in_is_relative_to_now() {
        let mut s = Scheduler::new();
        s.schedule_at(SimTime(100), 1).unwrap();
        s.pop();
        s.schedule_in(5, 2).unwrap();
        assert_eq!(s.pop(), Some((SimTime(105), 2)));
    }

    #[test]
    #[should_panic(expected = "scheduled in the past")]
    fn the_past_is_refused() {
        let mut s = Scheduler::new();
        s.schedule_at(SimTime(100), 1).unwrap();
        s.pop();
        let _ = s.schedule_at(SimTime(99), 2);
    }
}
