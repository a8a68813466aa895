//! Tick counters. The election timeout is drawn from the node's rng once per reset,
//! never per tick, so a node's timing depends only on its seed and its events.

use rand_chacha::ChaCha8Rng;
use rand_core::Rng;

/// Counts ticks toward a randomized election timeout.
#[derive(Clone, Debug)]
pub(crate) struct ElectionTimer {
    elapsed_ticks: u32,
    timeout_ticks: u32,
    timeout_ticks_min: u32,
    timeout_ticks_max: u32,
}

impl ElectionTimer {
    /// A timer drawing timeouts uniformly from `[min, max)`.
    pub(crate) fn new(
        rng: &mut ChaCha8Rng,
        timeout_ticks_min: u32,
        timeout_ticks_max: u32,
    ) -> Self {
        debug_assert!(timeout_ticks_min < timeout_ticks_max);
        let mut timer = ElectionTimer {
            elapsed_ticks: 0,
            timeout_ticks: timeout_ticks_min,
            timeout_ticks_min,
            timeout_ticks_max,
        };
        timer.reset(rng);
        timer
    }

    /// Starts counting from zero toward a freshly drawn timeout.
    pub(crate) fn reset(&mut self, rng: &mut ChaCha8Rng) {
        let span = u64::from(self.timeout_ticks_max - self.timeout_ticks_min);
        // Modulo bias over a span of a few dozen ticks is below 2^-58: irrelevant.
        let offset = rng.next_u64() % span;
        self.timeout_ticks = self.timeout_ticks_min + offset as u32;
        self.elapsed_ticks = 0;
        debug_assert!(self.timeout_ticks < self.timeout_ticks_max);
    }

    /// Starts counting from zero toward the same timeout: the leader was heard from.
    /// (A fresh draw matters when an election may start, not on every heartbeat.)
    pub(crate) fn restart(&mut self) {
        self.elapsed_ticks = 0;
    }

    /// Advances one tick; true when the timeout has just been reached or passed.
    pub(crate) fn tick(&mut self) -> bool {
        self.elapsed_ticks = self.elapsed_ticks.saturating_add(1);
        self.elapsed_ticks >= self.timeout_ticks
    }

    /// Whether fewer than the minimum election timeout have passed since the last
    /// reset: a follower that heard its leader this recently keeps its lease.
    pub(crate) fn within_lease(&self) -> bool {
        self.elapsed_ticks < self.timeout_ticks_min
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    #[test]
    fn timeouts_stay_in_range_and_vary() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut timer = ElectionTimer::new(&mut rng, 10, 20);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            timer.reset(&mut rng);
            let mut ticks = 0;
            while !timer.tick() {
                ticks += 1;
                assert!(ticks < 20);
            }
            assert!((9..20).contains(&ticks));
            seen.insert(ticks);
        }
        assert!(seen.len() > 5, "timeouts should be randomized: {seen:?}");
    }

    #[test]
    fn same_seed_same_timeouts() {
        let draw = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut timer = ElectionTimer::new(&mut rng, 10, 20);
            (0..10)
                .map(|_| {
                    timer.reset(&mut rng);
                    timer.timeout_ticks
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
    }
}
