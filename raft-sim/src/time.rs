//! Virtual time. Nothing in the simulator reads a wall clock: time is the timestamp
//! of the event being processed, and it only moves when the scheduler pops one.

use std::fmt;

/// An instant in virtual time, in microseconds since the start of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(pub u64);

impl SimTime {
    /// The start of every run.
    pub const ZERO: SimTime = SimTime(0);

    /// This instant plus `duration_us` microseconds.
    pub fn plus_us(self, duration_us: u64) -> SimTime {
        SimTime(self.0.saturating_add(duration_us))
    }

    /// Microseconds since the start of the run.
    pub fn as_us(self) -> u64 {
        self.0
    }

    /// Whole milliseconds since the start of the run.
    pub fn as_ms(self) -> u64 {
        self.0 / 1_000
    }

    /// Microseconds from `earlier` to this instant (zero if `earlier` is later).
    pub fn since_us(self, earlier: SimTime) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}ms", self.0 / 1_000, self.0 % 1_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_shows_milliseconds_with_microsecond_precision() {
        assert_eq!(SimTime(12_345).to_string(), "12.345ms");
        assert_eq!(SimTime::ZERO.plus_us(7).to_string(), "0.007ms");
    }

    #[test]
    fn since_saturates() {
        assert_eq!(SimTime(5).since_us(SimTime(9)), 0);
        assert_eq!(SimTime(9).since_us(SimTime(5)), 4);
    }
}
