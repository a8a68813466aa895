//! The simulated network between nodes: per-message delay with a long tail, loss,
//! duplication, reordering (jitter), and partitions as a matrix of directed links.
//!
//! The network decides a message's fate when it is sent; the world schedules the
//! deliveries. A partition cuts links at send time: a message already in flight when
//! a partition starts still arrives, as on a real network. A message sent over a cut
//! link is lost, or (with the chance `hold`) held, as a router queue or a TCP buffer
//! holds it, and delivered once the link heals: long after it was sent, often in a
//! later term. A few delivered messages take a very late tail, longer than an
//! election timeout, without any partition.
//!
//! The held and very late decisions draw from a stream of their own (`late_rng`), so
//! a world without them draws every other network decision as it always did.

use raft_core::NodeId;

use crate::rng::{Ppm, SimRng};

/// The most copies of one message the network delivers (the original and a duplicate).
pub const COPIES_MAX: usize = 2;

/// How the network behaves in one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetworkParams {
    /// The least one-way delay.
    pub delay_us_min: u64,
    /// Uniform jitter on top of the minimum; wide jitter reorders messages.
    pub jitter_us_max: u64,
    /// The chance that a message takes the long tail.
    pub tail: Ppm,
    /// The most extra delay the long tail adds.
    pub tail_us_max: u64,
    /// The chance that a message is lost.
    pub loss: Ppm,
    /// The chance that a message is delivered twice.
    pub duplicate: Ppm,
    /// The chance that a message sent over a cut link is held until the link heals
    /// instead of lost.
    pub hold: Ppm,
    /// The chance that a delivered copy takes the very late tail.
    pub late: Ppm,
    /// The most delay of the very late tail (at least [`LATE_DELAY_US_MIN`]).
    pub late_us_max: u64,
}

/// The least delay of the very late tail: the longest election timeout (20 ticks of
/// 10ms), so that a very late message arrives after at least one election could
/// have come and gone.
pub const LATE_DELAY_US_MIN: u64 = 200_000;

/// The most messages held on cut links at once; more are lost (a router's queue is
/// bounded too).
pub const HELD_MAX: usize = 10_000;

impl NetworkParams {
    /// A fast, reliable network.
    pub fn calm() -> Self {
        NetworkParams {
            delay_us_min: 200,
            jitter_us_max: 300,
            tail: Ppm::ZERO,
            tail_us_max: 0,
            loss: Ppm::ZERO,
            duplicate: Ppm::ZERO,
            hold: Ppm::ZERO,
            late: Ppm::ZERO,
            late_us_max: 0,
        }
    }
}

/// Why a message was not delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropCause {
    /// The link from sender to receiver is cut.
    Partitioned,
    /// The network lost it.
    Lost,
}

/// What happens to one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    /// It never arrives.
    Dropped(DropCause),
    /// The link is cut: it waits for the link to heal (see [`Network::release_held`]).
    Held,
    /// It arrives after each of these delays (one, or two for a duplicate).
    Delivered {
        /// The delay of each copy.
        delays_us: [Option<u64>; COPIES_MAX],
    },
}

/// What the network did, for the coverage report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetworkCounters {
    /// Messages offered to the network.
    pub sent: u64,
    /// Dropped because the link was cut.
    pub dropped_partition: u64,
    /// Dropped at random.
    pub dropped_loss: u64,
    /// Delivered twice.
    pub duplicated: u64,
    /// Delayed by the long tail.
    pub delayed_tail: u64,
    /// Held on a cut link.
    pub held: u64,
    /// Held messages released when their link healed.
    pub held_released: u64,
    /// Delayed by the very late tail (longer than an election timeout).
    pub delayed_late: u64,
}

/// A message held on a cut link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held<M> {
    /// The sender.
    pub from: NodeId,
    /// The receiver.
    pub to: NodeId,
    /// The message (whatever the world sends: encoded bytes and when it was sent).
    pub message: M,
}

/// Directed links between `n` nodes (ids 1..=n) and the delivery model.
#[derive(Clone, Debug)]
pub struct Network {
    nodes_count: usize,
    /// `up[from][to]`: whether `from` can reach `to`. Row-major, index = id - 1.
    up: Vec<bool>,
    /// The parameters in force (the liveness phase replaces them with calm ones).
    pub params: NetworkParams,
    /// What happened so far.
    pub counters: NetworkCounters,
}

impl Network {
    /// A fully connected network of nodes `1..=nodes_count`.
    pub fn new(nodes_count: usize, params: NetworkParams) -> Network {
        assert!(nodes_count > 0);
        Network {
            nodes_count,
            up: vec![true; nodes_count * nodes_count],
            params,
            counters: NetworkCounters::default(),
        }
    }

    fn slot(&self, from: NodeId, to: NodeId) -> usize {
        let (f, t) = (from.0 as usize - 1, to.0 as usize - 1);
        assert!(f < self.nodes_count && t < self.nodes_count, "unknown node");
        f * self.nodes_count + t
    }

    /// Whether `from` can reach `to` now.
    pub fn is_up(&self, from: NodeId, to: NodeId) -> bool {
        self.up[self.slot(from, to)]
    }

    /// Sets one directed link.
    pub fn set_link(&mut self, from: NodeId, to: NodeId, up: bool) {
        let slot = self.slot(from, to);
        self.up[slot] = up;
    }

    /// Reconnects everything.
    pub fn heal(&mut self) {
        self.up.iter_mut().for_each(|l| *l = true);
    }

    /// Whether any link is cut.
    pub fn is_partitioned(&self) -> bool {
        self.up.iter().any(|l| !l)
    }

    /// Splits the nodes into groups that reach only their own group. `group_of[i]` is
    /// the group of node `i + 1`.
    pub fn split(&mut self, group_of: &[u8]) {
        assert_eq!(group_of.len(), self.nodes_count);
        for from in 0..self.nodes_count {
            for to in 0..self.nodes_count {
                self.up[from * self.nodes_count + to] = group_of[from] == group_of[to];
            }
        }
    }

    /// Cuts `node` off from everyone, both ways.
    pub fn isolate(&mut self, node: NodeId) {
        for other in self.ids() {
            if other != node {
                self.set_link(node, other, false);
                self.set_link(other, node, false);
            }
        }
    }

    /// Arranges the nodes on a ring in the given order; each reaches only its nearest
    /// neighbours, just enough that every node sees a majority (itself included) but
    /// no two neighbouring majorities are the same (Jepsen's "majorities ring").
    pub fn majorities_ring(&mut self, ring: &[NodeId]) {
        let n = self.nodes_count;
        assert_eq!(ring.len(), n);
        let others_needed = n / 2; // a majority is n/2 + 1 including the node itself
        let reach = others_needed.div_ceil(2);
        self.up.iter_mut().for_each(|l| *l = false);
        for (i, from) in ring.iter().enumerate() {
            for (j, to) in ring.iter().enumerate() {
                let gap = i.abs_diff(j);
                let distance = gap.min(n - gap);
                let up = distance <= reach;
                self.set_link(*from, *to, up);
            }
        }
    }

    /// The ids of the nodes, in order.
    pub fn ids(&self) -> impl Iterator<Item = NodeId> {
        (1..=self.nodes_count as u64).map(NodeId)
    }

    /// Decides the fate of one message from `from` to `to`: `rng` draws loss,
    /// duplication and delays, `late_rng` whether it is held or very late.
    pub fn send(
        &mut self,
        rng: &mut SimRng,
        late_rng: &mut SimRng,
        from: NodeId,
        to: NodeId,
    ) -> Fate {
        self.counters.sent += 1;
        if !self.is_up(from, to) {
            if self.params.hold > Ppm::ZERO && late_rng.chance(self.params.hold) {
                self.counters.held += 1;
                return Fate::Held;
            }
            self.counters.dropped_partition += 1;
            return Fate::Dropped(DropCause::Partitioned);
        }
        if rng.chance(self.params.loss) {
            self.counters.dropped_loss += 1;
            return Fate::Dropped(DropCause::Lost);
        }
        let first = self.draw_delay_us(rng, late_rng);
        let second = if rng.chance(self.params.duplicate) {
            self.counters.duplicated += 1;
            Some(self.draw_delay_us(rng, late_rng))
        } else {
            None
        };
        Fate::Delivered {
            delays_us: [Some(first), second],
        }
    }

    fn draw_delay_us(&mut self, rng: &mut SimRng, late_rng: &mut SimRng) -> u64 {
        let p = self.params;
        let mut delay_us = p.delay_us_min + rng.between(0, p.jitter_us_max);
        if p.tail_us_max > 0 && rng.chance(p.tail) {
            self.counters.delayed_tail += 1;
            delay_us += rng.between(0, p.tail_us_max);
        }
        if p.late > Ppm::ZERO && late_rng.chance(p.late) {
            self.counters.delayed_late += 1;
            let late_us_max = p.late_us_max.max(LATE_DELAY_US_MIN);
            delay_us += late_rng.between(LATE_DELAY_US_MIN, late_us_max);
        }
        delay_us
    }

    /// Takes from `held` the messages whose link is up again, in the order they
    /// were held, each with the delay it takes once released (drawn from
    /// `late_rng`: the minimum delay plus jitter, so a burst of them reorders).
    pub fn release_held<M>(
        &mut self,
        late_rng: &mut SimRng,
        held: &mut Vec<Held<M>>,
    ) -> Vec<(Held<M>, u64)> {
        let mut released = Vec::new();
        let mut kept = Vec::with_capacity(held.len());
        for h in held.drain(..) {
            if self.is_up(h.from, h.to) {
                let delay_us =
                    self.params.delay_us_min + late_rng.between(0, self.params.jitter_us_max);
                released.push((h, delay_us));
            } else {
                kept.push(h);
            }
        }
        *held = kept;
        self.counters.held_released += released.len() as u64;
        released
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::StreamKind;

    fn rng() -> SimRng {
        SimRng::new(7, StreamKind::Network)
    }

    fn late_rng() -> SimRng {
        SimRng::new(7, StreamKind::Late)
    }

    #[test]
    fn a_calm_network_delivers_everything_once() {
        let mut net = Network::new(3, NetworkParams::calm());
        let mut rng = rng();
        for _ in 0..100 {
            match net.send(&mut rng, &mut late_rng(), NodeId(1), NodeId(2)) {
                Fate::Delivered { delays_us } => {
                    let d = delays_us[0].unwrap();
                    assert!((200..=500).contains(&d));
                    assert_eq!(delays_us[1], None);
                }
                other => panic!("calm network dropped a message: {other:?}"),
            }
        }
    }

    #[test]
    fn a_cut_link_drops_only_its_direction() {
        let mut net = Network::new(3, NetworkParams::calm());
        net.set_link(NodeId(1), NodeId(2), false);
        let mut rng = rng();
        assert_eq!(
            net.send(&mut rng, &mut late_rng(), NodeId(1), NodeId(2)),
            Fate::Dropped(DropCause::Partitioned)
        );
        assert!(matches!(
            net.send(&mut rng, &mut late_rng(), NodeId(2), NodeId(1)),
            Fate::Delivered { .. }
        ));
        assert_eq!(net.counters.dropped_partition, 1);
    }

    #[test]
    fn loss_and_duplication_happen_at_their_rates() {
        let params = NetworkParams {
            loss: Ppm::from_percent(20.0),
            duplicate: Ppm::from_percent(10.0),
            ..NetworkParams::calm()
        };
        let mut net = Network::new(2, params);
        let mut rng = rng();
        for _ in 0..10_000 {
            let _ = net.send(&mut rng, &mut late_rng(), NodeId(1), NodeId(2));
        }
        let c = net.counters;
        assert!((1_700..2_300).contains(&c.dropped_loss), "{c:?}");
        assert!((600..1_000).contains(&c.duplicated), "{c:?}");
    }

    #[test]
    fn split_keeps_groups_apart() {
        let mut net = Network::new(5, NetworkParams::calm());
        net.split(&[0, 0, 1, 1, 1]);
        assert!(net.is_up(NodeId(1), NodeId(2)));
        assert!(net.is_up(NodeId(3), NodeId(5)));
        assert!(!net.is_up(NodeId(2), NodeId(3)));
        assert!(!net.is_up(NodeId(5), NodeId(1)));
        net.heal();
        assert!(!net.is_partitioned());
    }

    #[test]
    fn isolate_cuts_both_directions() {
        let mut net = Network::new(3, NetworkParams::calm());
        net.isolate(NodeId(2));
        assert!(!net.is_up(NodeId(2), NodeId(1)));
        assert!(!net.is_up(NodeId(3), NodeId(2)));
        assert!(net.is_up(NodeId(1), NodeId(3)));
    }

    #[test]
    fn in_a_majorities_ring_every_node_sees_a_majority_but_not_all() {
        for n in [5usize, 7] {
            let mut net = Network::new(n, NetworkParams::calm());
            let ring: Vec<NodeId> = (1..=n as u64).map(NodeId).collect();
            net.majorities_ring(&ring);
            for from in net.ids().collect::<Vec<_>>() {
                let seen = net.ids().filter(|to| net.is_up(from, *to)).count();
                assert!(seen > n / 2, "node {from} sees {seen} of {n}");
                assert!(seen < n, "node {from} sees everyone");
            }
        }
    }

    #[test]
    fn a_held_message_waits_for_its_link_to_heal() {
        let params = NetworkParams {
            hold: Ppm::ONE,
            ..NetworkParams::calm()
        };
        let mut net = Network::new(3, params);
        let (mut rng, mut late) = (rng(), late_rng());
        net.set_link(NodeId(1), NodeId(2), false);
        assert_eq!(
            net.send(&mut rng, &mut late, NodeId(1), NodeId(2)),
            Fate::Held
        );
        let mut held = vec![Held {
            from: NodeId(1),
            to: NodeId(2),
            message: "m",
        }];
        assert!(
            net.release_held(&mut late, &mut held).is_empty(),
            "still cut"
        );
        assert_eq!(held.len(), 1);
        net.heal();
        let released = net.release_held(&mut late, &mut held);
        assert!(held.is_empty());
        assert_eq!(released.len(), 1);
        assert!((200..=500).contains(&released[0].1), "{released:?}");
        assert_eq!((net.counters.held, net.counters.held_released), (1, 1));
    }

    #[test]
    fn the_very_late_tail_is_longer_than_an_election_timeout() {
        let params = NetworkParams {
            late: Ppm::ONE,
            late_us_max: 3 * LATE_DELAY_US_MIN,
            ..NetworkParams::calm()
        };
        let mut net = Network::new(2, params);
        let (mut rng, mut late) = (rng(), late_rng());
        for _ in 0..100 {
            let Fate::Delivered { delays_us } = net.send(&mut rng, &mut late, NodeId(1), NodeId(2))
            else {
                panic!("nothing is lost on a calm network");
            };
            let d = delays_us[0].unwrap();
            assert!(
                (LATE_DELAY_US_MIN..=3 * LATE_DELAY_US_MIN + 500).contains(&d),
                "{d}"
            );
        }
        assert_eq!(net.counters.delayed_late, 100);
    }
}
