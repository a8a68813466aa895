//! Capped exponential backoff with jitter, for reconnecting to a peer.

use std::time::Duration;

/// The delays before successive reconnection attempts: doubling from `base` up to
/// `max`, each drawn uniformly from its upper half so that nodes that lost a peer at
/// the same moment do not all call back in step.
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempts: u32,
    /// SplitMix64 state: jitter needs spread, not cryptographic strength.
    rng: u64,
}

/// Doubling stops after this many attempts (2^16 times the base is beyond any cap).
const DOUBLINGS_MAX: u32 = 16;

impl Backoff {
    /// A backoff from `base` to `max`; `seed` varies the jitter between peers.
    pub fn new(base: Duration, max: Duration, seed: u64) -> Self {
        debug_assert!(base > Duration::ZERO);
        debug_assert!(max >= base);
        Backoff {
            base,
            max,
            attempts: 0,
            rng: seed ^ 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// The delay before the next attempt; each call counts one attempt.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1 << self.attempts.min(DOUBLINGS_MAX))
            .min(self.max);
        self.attempts = self.attempts.saturating_add(1);
        let half = ceiling / 2;
        let jitter_nanos = self.next_random() % (half.as_nanos() as u64 + 1);
        let delay = half + Duration::from_nanos(jitter_nanos);
        debug_assert!(delay <= self.max);
        delay
    }

    /// Forgets past failures (after a successful handshake).
    pub fn reset(&mut self) {
        self.attempts = 0;
    }

    /// How many attempts since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_with_jitter_and_reset() {
        let base = Duration::from_millis(10);
        let max = Duration::from_millis(500);
        let mut backoff = Backoff::new(base, max, 42);
        let mut ceiling = base;
        for _ in 0..40 {
            let delay = backoff.next_delay();
            assert!(
                delay >= ceiling / 2 && delay <= ceiling,
                "{delay:?} outside {ceiling:?}/2..={ceiling:?}"
            );
            ceiling = (ceiling * 2).min(max);
        }
        backoff.reset();
        assert!(backoff.next_delay() <= base);
    }

    #[test]
    fn different_seeds_jitter_differently() {
        let mut a = Backoff::new(Duration::from_millis(100), Duration::from_secs(1), 1);
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1), 2);
        let a: Vec<_> = (0..5).map(|_| a.next_delay()).collect();
        let b: Vec<_> = (0..5).map(|_| b.next_delay()).collect();
        assert_ne!(a, b);
    }
}
