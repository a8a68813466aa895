//! Seeded randomness, split into independent streams.
//!
//! One seed makes one `ChaCha8Rng` per concern, each on its own ChaCha stream (same
//! key, different nonce). Draws from the network never shift draws of the fault plan,
//! so pinning one knob (say `--loss 0`) leaves the rest of the world as it was.

use std::fmt;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

/// A probability in parts per million: integer arithmetic, exact and printable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ppm(pub u32);

impl Ppm {
    /// Certainty.
    pub const ONE: Ppm = Ppm(1_000_000);
    /// Never.
    pub const ZERO: Ppm = Ppm(0);

    /// A probability from a percentage (clamped to 0..=100).
    pub fn from_percent(percent: f64) -> Ppm {
        let clamped = percent.clamp(0.0, 100.0);
        Ppm((clamped * 10_000.0).round() as u32)
    }
}

impl fmt::Display for Ppm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}%", self.0 / 10_000, (self.0 % 10_000) / 100)
    }
}

/// Which concern a stream serves. The discriminant is the ChaCha stream number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum StreamKind {
    /// Swarm parameters: what kind of world this seed simulates.
    Swarm = 1,
    /// Message delays, loss, duplication.
    Network = 2,
    /// Fsync latencies and what a crash keeps.
    Disk = 3,
    /// Clock drift between nodes.
    Clock = 4,
    /// Client operations and their pacing.
    Client = 5,
    /// The fault plan: partitions, crashes, restarts.
    Fault = 6,
    /// Node seeds (each node's own rng for election timeouts).
    Node = 7,
    /// Membership changes and crashes during snapshot installs: their times in the
    /// plan and whom they hit. A stream of its own, so that worlds without them draw
    /// every other fault exactly as before they existed.
    Reconfig = 8,
    /// Which messages on cut links are held until the heal, and which delivered ones
    /// take the very late tail. A stream of its own, so worlds without them draw
    /// every other network decision as before they existed.
    Late = 9,
    /// Faults aimed at the spots PreVote, CheckQuorum, joint consensus and the
    /// leader's own fsync exist for: partial connectivity (a node that reaches only
    /// one other, nodes that cannot hear the leader), crashes of a leader with
    /// unsynced appends, and membership changes that replace two voters at once.
    Targeted = 10,
}

/// A deterministic random stream with the few draws the simulator needs.
#[derive(Clone, Debug)]
pub struct SimRng(ChaCha8Rng);

impl SimRng {
    /// The stream `kind` of `seed`.
    pub fn new(seed: u64, kind: StreamKind) -> SimRng {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(kind as u64);
        SimRng(rng)
    }

    /// A raw 64-bit draw.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A uniform draw from `0..bound` (`bound` > 0), without modulo bias
    /// (Lemire's multiply-and-reject).
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "below(0) has no values to draw");
        // Rejection keeps the draw unbiased; each round rejects with probability
        // below one half, so 64 rounds failing is 2^-64: then accept a tiny bias.
        const ROUNDS_MAX: u32 = 64;
        let threshold = bound.wrapping_neg() % bound;
        let mut product = 0u128;
        for _ in 0..ROUNDS_MAX {
            product = u128::from(self.next_u64()) * u128::from(bound);
            if (product as u64) >= threshold {
                break;
            }
        }
        (product >> 64) as u64
    }

    /// A uniform draw from `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        assert!(low <= high, "empty range {low}..={high}");
        if high - low == u64::MAX {
            return self.next_u64();
        }
        low + self.below(high - low + 1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: Ppm) -> bool {
        self.below(u64::from(Ppm::ONE.0)) < u64::from(p.0)
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        assert!(!items.is_empty(), "pick from an empty slice");
        &items[self.below(items.len() as u64) as usize]
    }

    /// Shuffles `items` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// All the streams of one seed.
#[derive(Clone, Debug)]
pub struct Streams {
    /// Swarm parameters.
    pub swarm: SimRng,
    /// The network.
    pub network: SimRng,
    /// The disks.
    pub disk: SimRng,
    /// The clocks.
    pub clock: SimRng,
    /// The clients.
    pub client: SimRng,
    /// The fault plan.
    pub fault: SimRng,
    /// The nodes' own seeds.
    pub node: SimRng,
    /// Membership changes and snapshot-install crashes.
    pub reconfig: SimRng,
    /// Held and very late messages.
    pub late: SimRng,
    /// Partial connectivity, unsynced-leader crashes, two-voter changes.
    pub targeted: SimRng,
}

impl Streams {
    /// Splits `seed` into its streams.
    pub fn new(seed: u64) -> Streams {
        Streams {
            swarm: SimRng::new(seed, StreamKind::Swarm),
            network: SimRng::new(seed, StreamKind::Network),
            disk: SimRng::new(seed, StreamKind::Disk),
            clock: SimRng::new(seed, StreamKind::Clock),
            client: SimRng::new(seed, StreamKind::Client),
            fault: SimRng::new(seed, StreamKind::Fault),
            node: SimRng::new(seed, StreamKind::Node),
            reconfig: SimRng::new(seed, StreamKind::Reconfig),
            late: SimRng::new(seed, StreamKind::Late),
            targeted: SimRng::new(seed, StreamKind::Targeted),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_draws() {
        let mut a = SimRng::new(42, StreamKind::Network);
        let mut b = SimRng::new(42, StreamKind::Network);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn streams_of_one_seed_differ() {
        let mut a = SimRng::new(42, StreamKind::Network);
        let mut b = SimRng::new(42, StreamKind::Disk);
        let same = (0..16).filter(|_| a.next_u64() == b.next_u64()).count();
        assert_eq!(same, 0);
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = SimRng::new(1, StreamKind::Client);
        let mut seen = [false; 7];
        for _ in 0..1_000 {
            let x = rng.below(7);
            assert!(x < 7);
            seen[x as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn chance_is_roughly_right() {
        let mut rng = SimRng::new(3, StreamKind::Fault);
        let hits = (0..10_000)
            .filter(|_| rng.chance(Ppm::from_percent(25.0)))
            .count();
        assert!(
            (2_200..2_800).contains(&hits),
            "{hits} hits of 10000 at 25%"
        );
        assert!(!rng.chance(Ppm::ZERO));
        assert!(rng.chance(Ppm::ONE));
    }

    #[test]
    fn ppm_prints_as_percent() {
        assert_eq!(Ppm(12_345).to_string(), "1.23%");
        assert_eq!(Ppm::from_percent(5.0), Ppm(50_000));
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut rng = SimRng::new(9, StreamKind::Fault);
        let mut items: Vec<u32> = (0..20).collect();
        rng.shuffle(&mut items);
        let mut sorted = items.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..20).collect::<Vec<_>>());
        assert_ne!(items, sorted);
    }
}
