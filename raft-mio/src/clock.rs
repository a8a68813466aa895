//! The wall clock: the only code in the workspace that reads real time.
//!
//! The core counts time in ticks; this module turns the wall clock into ticks at a
//! fixed interval and tells the event loop how long it may sleep in `poll`.

use std::time::{Duration, Instant};

/// The current instant. Everything else in the crate receives instants as arguments.
pub fn now() -> Instant {
    Instant::now()
}

/// How long to wait from `now` until `deadline` (zero if it has passed).
pub fn time_until(deadline: Instant, now: Instant) -> Duration {
    deadline.saturating_duration_since(now)
}

/// After a stall (a long fsync, a paused process), at most this many ticks are
/// delivered at once; the rest are forgotten, so that one slow disk does not make the
/// node feel that whole election timeouts passed in an instant. A node with read
/// leases delivers more (see [`catch_up_ticks_max`]).
pub const CATCH_UP_TICKS_MAX: u32 = 2;

/// The most ticks delivered at once after a stall, for a node with `core`'s
/// configuration. With read leases, forgetting ticks would stop the lease's clock
/// while real time runs on: a leader paused past its lease would answer reads from it
/// after resuming, though the voters may have elected another leader meanwhile. So a
/// leasing node delivers at least one tick more than a lease lasts, which ends any
/// lease granted before the stall, and then forgets the rest.
pub fn catch_up_ticks_max(core: &raft_core::Config) -> u32 {
    if core.read_lease {
        CATCH_UP_TICKS_MAX.max(core.read_lease_ticks() + 1)
    } else {
        CATCH_UP_TICKS_MAX
    }
}

/// Emits a tick every `interval`, anchored to the first deadline so ticks do not drift
/// with the loop's latency.
#[derive(Clone, Debug)]
pub struct Ticker {
    interval: Duration,
    next_deadline: Instant,
    catch_up_ticks_max: u32,
}

impl Ticker {
    /// A ticker whose first tick is due one interval after `now`, delivering at most
    /// `catch_up_ticks_max` ticks at once after a stall.
    pub fn new(interval: Duration, now: Instant, catch_up_ticks_max: u32) -> Self {
        debug_assert!(interval > Duration::ZERO);
        debug_assert!(catch_up_ticks_max >= 1);
        Ticker {
            interval,
            next_deadline: now + interval,
            catch_up_ticks_max,
        }
    }

    /// When the next tick is due.
    pub fn next_deadline(&self) -> Instant {
        self.next_deadline
    }

    /// The ticks due at `now` (at most the ticker's catch-up bound); advances the
    /// deadline.
    pub fn due_ticks(&mut self, now: Instant) -> u32 {
        if now < self.next_deadline {
            return 0;
        }
        let behind = now.duration_since(self.next_deadline);
        let due = 1 + (behind.as_nanos() / self.interval.as_nanos()).min(u32::MAX as u128) as u32;
        if due > self.catch_up_ticks_max {
            self.next_deadline = now + self.interval;
        } else {
            self.next_deadline += self.interval * due;
        }
        debug_assert!(self.next_deadline > now);
        due.min(self.catch_up_ticks_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_come_at_the_interval_and_a_stall_is_capped() {
        let start = now();
        let ms = Duration::from_millis;
        let mut ticker = Ticker::new(ms(10), start, CATCH_UP_TICKS_MAX);
        assert_eq!(ticker.due_ticks(start + ms(9)), 0);
        assert_eq!(ticker.due_ticks(start + ms(10)), 1);
        assert_eq!(ticker.next_deadline(), start + ms(20));
        assert_eq!(ticker.due_ticks(start + ms(31)), 2);
        assert_eq!(ticker.next_deadline(), start + ms(40));
        assert_eq!(ticker.due_ticks(start + ms(1000)), CATCH_UP_TICKS_MAX);
        assert_eq!(ticker.next_deadline(), start + ms(1010));
        assert_eq!(time_until(start, start + ms(5)), Duration::ZERO);
    }

    #[test]
    fn a_leasing_node_catches_up_past_its_lease_after_a_stall() {
        let mut core = raft_core::Config::new(raft_core::NodeId(1), [raft_core::NodeId(1)]);
        assert_eq!(catch_up_ticks_max(&core), CATCH_UP_TICKS_MAX);
        core.read_lease = true;
        let max = catch_up_ticks_max(&core);
        assert!(max > core.read_lease_ticks(), "a stall ends every lease");
        let start = now();
        let ms = Duration::from_millis;
        let mut ticker = Ticker::new(ms(10), start, max);
        assert_eq!(ticker.due_ticks(start + ms(5_000)), max);
    }
}
