//! Swarm testing: each seed draws its own world (cluster size, fault rates, network,
//! disks, clocks, workload), so a sweep covers calm and stormy worlds alike. Every
//! drawn parameter is printed next to the seed, and each can be pinned from the CLI.
//!
//! All parameters are drawn, always in the same order, before pins are applied, so
//! pinning one knob leaves every other draw of the seed unchanged.

use std::fmt;

use crate::client::WorkloadParams;
use crate::faults::FaultRates;
use crate::network::{NetworkParams, LATE_DELAY_US_MIN};
use crate::rng::{Ppm, SimRng, StreamKind};

/// The nominal length of one tick: what `Event::Tick` stands for in virtual time.
pub const TICK_US: u64 = 10_000;

/// The cluster sizes a world may start with. The swarm draws 3, 5 and 7 for most
/// seeds and 1, 2 and 4 (no fault tolerance, or none to spare) for some; `--nodes`
/// pins any of them.
pub const NODES_SUPPORTED: [u32; 6] = [1, 2, 3, 4, 5, 7];

/// The share of seeds whose nodes serve reads from a leader lease (where CheckQuorum
/// is on).
pub const LEASE_READS: Ppm = Ppm(300_000);

/// The share of seeds where half the clients read through one node of their own.
pub const LOCAL_READERS: Ppm = Ppm(300_000);

/// The share of seeds that start with a small or even cluster (1, 2 or 4 voters).
pub const SMALL_CLUSTERS: Ppm = Ppm(300_000);

/// Everything that describes the world of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimParams {
    /// The seed everything is drawn from.
    pub seed: u64,
    /// Voters in the cluster at the start: one of [`NODES_SUPPORTED`].
    pub nodes_count: u32,
    /// PreVote on the nodes.
    pub pre_vote: bool,
    /// CheckQuorum on the nodes.
    pub check_quorum: bool,
    /// Half the clients (the odd ids) are local readers: every read of theirs goes
    /// to one node, the one they first guessed (`Client::with_read_home`).
    pub local_readers: bool,
    /// Reads served from a leader lease (`Config::read_lease`) on the nodes; only
    /// where CheckQuorum is on, which the lease needs. The nodes allow for the
    /// world's clock drift (`lease_clock_drift_percent_max`, rounded up).
    pub read_lease: bool,
    /// The network between nodes during the fault phase.
    pub network: NetworkParams,
    /// The most one-way delay between a client and a node.
    pub client_delay_us_max: u64,
    /// The shortest fsync.
    pub fsync_us_min: u64,
    /// The longest fsync.
    pub fsync_us_max: u64,
    /// The most a node's tick interval deviates from `TICK_US` (clock drift).
    pub clock_drift: Ppm,
    /// How often faults fire.
    pub faults: FaultRates,
    /// How long faults fire; then the world heals and liveness is checked.
    pub fault_phase_ms: u32,
    /// The clients.
    pub workload: WorkloadParams,
    /// A node compacts its log whenever it has applied this many entries past its
    /// last snapshot (None: never).
    pub compact_every_entries: Option<u64>,
    /// After the heal, a minority of nodes stays down (the rest is the quorum core).
    pub minority_stays_down: bool,
    /// The most entries per AppendEntries (small values make entries trickle one at
    /// a time, which opens the windows of the commit rule, §5.4.2).
    pub msg_entries_max: usize,
    /// The most AppendEntries in flight to one follower.
    pub inflight_msgs_max: usize,
    /// Membership changes during the fault phase (the spare pool and how often).
    pub membership: MembershipParams,
    /// The size of one InstallSnapshot chunk (small values split a snapshot into
    /// many chunks, which opens the window of a crash between chunks).
    pub snapshot_chunk_bytes: u64,
    /// After the heal, a leader must be known within this many ticks.
    pub liveness_leader_ticks_max: u64,
    /// After the heal, every pending client operation must complete within this many ticks.
    pub liveness_ops_ticks_max: u64,
}

/// Membership changes: the fault plan asks whoever leads to add spares as learners,
/// promote learners and remove voters (the leader too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MembershipParams {
    /// The mean time between membership changes (None: the membership never changes).
    pub change_interval_ms_mean: Option<u32>,
    /// Extra node ids that start outside the configuration, empty, waiting to be
    /// added (0 when the membership never changes).
    pub spares_count: u32,
    /// The spares the world has if it changes membership (drawn for every seed, so
    /// that pinning membership changes on gives the drawn pool).
    pub spares_if_changing: u32,
}

impl MembershipParams {
    /// The fewest voters a removal may leave (so that a crashed or partitioned voter
    /// still leaves a quorum whose liveness can be checked).
    pub const VOTERS_MIN: usize = 3;
}

/// Knobs that override what the swarm draws (None: keep the draw).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pins {
    /// Cluster size.
    pub nodes: Option<u32>,
    /// Message loss, percent.
    pub loss_percent: Option<f64>,
    /// Message duplication, percent.
    pub duplicate_percent: Option<f64>,
    /// Partitions on or off.
    pub partitions: Option<bool>,
    /// Crashes on or off.
    pub crashes: Option<bool>,
    /// Number of clients.
    pub clients: Option<u32>,
    /// Number of keys.
    pub keys: Option<u32>,
    /// Fault phase length.
    pub fault_phase_ms: Option<u32>,
    /// Compaction interval (0: never).
    pub compact_every: Option<u64>,
    /// PreVote on or off.
    pub pre_vote: Option<bool>,
    /// CheckQuorum on or off.
    pub check_quorum: Option<bool>,
    /// Clock drift bound, percent.
    pub drift_percent: Option<f64>,
    /// Whether a minority stays down after the heal.
    pub minority_stays_down: Option<bool>,
    /// The mean time between crashes, ms (0: none).
    pub crash_every_ms: Option<u32>,
    /// The mean time between partitions, ms (0: none).
    pub partition_every_ms: Option<u32>,
    /// The most entries per AppendEntries.
    pub msg_entries_max: Option<usize>,
    /// The most AppendEntries in flight per follower.
    pub inflight_msgs_max: Option<usize>,
    /// Membership changes on or off.
    pub membership_changes: Option<bool>,
    /// The mean time between membership changes, ms (0: none).
    pub membership_every_ms: Option<u32>,
    /// Held messages (delivered after the heal) and the very late tail on or off.
    pub late_messages: Option<bool>,
    /// Partial-connectivity partitions on or off.
    pub partial_connectivity: Option<bool>,
    /// Crashes aimed at leaders with unsynced appends on or off.
    pub unsynced_leader_crashes: Option<bool>,
    /// Membership changes of two voters at once on or off.
    pub two_voter_changes: Option<bool>,
    /// Small and even clusters (1, 2 or 4 voters, drawn for some seeds) on or off:
    /// off keeps the 3, 5 or 7 the seed draws first; on always takes 1, 2 or 4.
    pub small_clusters: Option<bool>,
    /// Local readers (half the clients read through one node of their own) on or off.
    pub local_readers: Option<bool>,
    /// Lease reads on or off. On turns CheckQuorum on too, unless it is pinned off
    /// (then there is no lease: the core needs CheckQuorum for one).
    pub read_lease: Option<bool>,
}

fn maybe(rng: &mut SimRng, p_none: Ppm, low: u64, high: u64) -> Option<u64> {
    let value = rng.between(low, high);
    if rng.chance(p_none) {
        None
    } else {
        Some(value)
    }
}

fn percent(rng: &mut SimRng, p_zero: Ppm, max_percent: u64) -> Ppm {
    let ppm = rng.between(0, max_percent * 10_000) as u32;
    if rng.chance(p_zero) {
        Ppm::ZERO
    } else {
        Ppm(ppm)
    }
}

/// The knobs added for issue 9, drawn after every older one so that those keep their
/// draws: small clusters, held and very late messages, partial connectivity, crashes
/// aimed at unsynced leaders, two-voter changes and the spares they need.
struct TargetedDraws {
    small_cluster: bool,
    small_nodes_count: u32,
    hold: Ppm,
    late: Ppm,
    late_us_max: u64,
    partial_interval_ms_mean: Option<u32>,
    unsynced_crash_interval_ms_mean: Option<u32>,
    two_voter_changes: Ppm,
    /// Room to grow 3 voters to 5 in one change, with a spare left to replace.
    spares_extra: u32,
}

impl TargetedDraws {
    fn draw(rng: &mut SimRng) -> TargetedDraws {
        let quarter = Ppm::from_percent(25.0);
        let some = Ppm::from_percent(30.0);
        TargetedDraws {
            small_cluster: rng.chance(SMALL_CLUSTERS),
            small_nodes_count: *rng.pick(&[1u32, 2, 4]),
            hold: percent(rng, some, 100),
            late: percent(rng, some, 3),
            late_us_max: rng.between(LATE_DELAY_US_MIN, 3 * LATE_DELAY_US_MIN),
            partial_interval_ms_mean: maybe(rng, quarter, 200, 2_000).map(|v| v as u32),
            unsynced_crash_interval_ms_mean: maybe(rng, quarter, 300, 3_000).map(|v| v as u32),
            two_voter_changes: percent(rng, quarter, 60),
            spares_extra: rng.between(0, 2) as u32,
        }
    }
}

impl SimParams {
    /// Draws the world of `seed`, then applies `pins`.
    pub fn draw(seed: u64, pins: &Pins) -> SimParams {
        let mut rng = SimRng::new(seed, StreamKind::Swarm);
        let quarter = Ppm::from_percent(25.0);
        let half = Ppm::from_percent(50.0);
        let nodes_count = *rng.pick(&[3u32, 5, 7]);
        let pre_vote = !rng.chance(quarter);
        let check_quorum = !rng.chance(quarter);
        let network = NetworkParams {
            delay_us_min: rng.between(100, 1_000),
            jitter_us_max: rng.between(0, 5_000),
            tail: percent(&mut rng, quarter, 5),
            tail_us_max: rng.between(0, 100_000),
            loss: percent(&mut rng, Ppm::from_percent(30.0), 10),
            duplicate: percent(&mut rng, half, 5),
            // Drawn at the end (below), with the other knobs added for issue 9.
            hold: Ppm::ZERO,
            late: Ppm::ZERO,
            late_us_max: 0,
        };
        let client_delay_us_max = rng.between(200, 3_000);
        let fsync_us_min = rng.between(50, 500);
        let fsync_us_max = fsync_us_min + rng.between(0, 20_000);
        let clock_drift = percent(&mut rng, quarter, 10);
        let faults = FaultRates {
            partition_interval_ms_mean: maybe(&mut rng, quarter, 200, 2_000).map(|v| v as u32),
            crash_interval_ms_mean: maybe(&mut rng, quarter, 300, 3_000).map(|v| v as u32),
            partition_ms_max: rng.between(100, 1_500) as u32,
            down_ms_max: rng.between(10, 1_000) as u32,
            // Drawn at the end (below) with the other membership parameters.
            membership_interval_ms_mean: None,
            partial_interval_ms_mean: None,
            unsynced_crash_interval_ms_mean: None,
            two_voter_changes: Ppm::ZERO,
        };
        let fault_phase_ms = rng.between(2_000, 5_000) as u32;
        let workload = WorkloadParams {
            clients_count: rng.between(1, 5) as u32,
            keys_count: rng.between(1, 4) as u32,
            think_us_max: rng.between(5_000, 50_000),
            request_timeout_us: rng.between(100_000, 500_000),
            attempts_max: rng.between(1, 6) as u32,
            reads: Ppm(rng.between(100_000, 600_000) as u32),
            cas: Ppm(rng.between(0, 500_000) as u32),
            deletes: Ppm(rng.between(0, 300_000) as u32),
        };
        let compact_every_entries = maybe(&mut rng, half, 5, 100);
        let minority_stays_down = rng.chance(half);
        // Drawn last so that adding them left every earlier draw of a seed unchanged.
        let msg_entries_max = *rng.pick(&[1usize, 2, 8, 512]);
        let inflight_msgs_max = *rng.pick(&[1usize, 4, 64]);
        let change_interval_ms_mean = maybe(&mut rng, half, 100, 1_000).map(|v| v as u32);
        let spares_count = rng.between(1, 2) as u32;
        let snapshot_chunk_bytes = *rng.pick(&[64u64, 1_024, 256 << 10]);
        let t = TargetedDraws::draw(&mut rng);
        let network = NetworkParams {
            hold: t.hold,
            late: t.late,
            late_us_max: t.late_us_max,
            ..network
        };
        let spares_if_changing = spares_count + t.spares_extra;
        // Drawn after every knob above, so that adding it left their draws unchanged.
        let read_lease = rng.chance(LEASE_READS);
        let local_readers = rng.chance(LOCAL_READERS);
        let membership = MembershipParams {
            change_interval_ms_mean,
            spares_count: if change_interval_ms_mean.is_some() {
                spares_if_changing
            } else {
                0
            },
            spares_if_changing,
        };
        let nodes_count = if pins.small_clusters.unwrap_or(t.small_cluster) {
            t.small_nodes_count
        } else {
            nodes_count
        };
        let faults = FaultRates {
            membership_interval_ms_mean: membership.change_interval_ms_mean,
            partial_interval_ms_mean: t.partial_interval_ms_mean,
            unsynced_crash_interval_ms_mean: t.unsynced_crash_interval_ms_mean,
            two_voter_changes: t.two_voter_changes,
            ..faults
        };
        let mut params = SimParams {
            seed,
            nodes_count,
            pre_vote,
            check_quorum,
            read_lease,
            local_readers,
            network,
            client_delay_us_max,
            fsync_us_min,
            fsync_us_max,
            clock_drift,
            faults,
            fault_phase_ms,
            workload,
            compact_every_entries,
            minority_stays_down,
            msg_entries_max,
            inflight_msgs_max,
            membership,
            snapshot_chunk_bytes,
            liveness_leader_ticks_max: 300,
            liveness_ops_ticks_max: 600,
        };
        params.apply(pins);
        params
    }

    fn apply(&mut self, pins: &Pins) {
        if let Some(n) = pins.nodes {
            self.nodes_count = n;
        }
        if let Some(p) = pins.loss_percent {
            self.network.loss = Ppm::from_percent(p);
        }
        if let Some(p) = pins.duplicate_percent {
            self.network.duplicate = Ppm::from_percent(p);
        }
        if pins.partitions == Some(false) {
            self.faults.partition_interval_ms_mean = None;
        } else if pins.partitions == Some(true) && self.faults.partition_interval_ms_mean.is_none()
        {
            self.faults.partition_interval_ms_mean = Some(1_000);
        }
        if pins.crashes == Some(false) {
            self.faults.crash_interval_ms_mean = None;
        } else if pins.crashes == Some(true) && self.faults.crash_interval_ms_mean.is_none() {
            self.faults.crash_interval_ms_mean = Some(1_000);
        }
        if let Some(c) = pins.clients {
            self.workload.clients_count = c;
        }
        if let Some(k) = pins.keys {
            self.workload.keys_count = k;
        }
        if let Some(ms) = pins.fault_phase_ms {
            self.fault_phase_ms = ms;
        }
        if let Some(every) = pins.compact_every {
            self.compact_every_entries = (every > 0).then_some(every);
        }
        if let Some(on) = pins.pre_vote {
            self.pre_vote = on;
        }
        if pins.read_lease == Some(true) && pins.check_quorum.is_none() {
            self.check_quorum = true;
        }
        if let Some(on) = pins.check_quorum {
            self.check_quorum = on;
        }
        if let Some(on) = pins.read_lease {
            self.read_lease = on;
        }
        if let Some(on) = pins.local_readers {
            self.local_readers = on;
        }
        // The core refuses a lease without CheckQuorum.
        self.read_lease &= self.check_quorum;
        if let Some(p) = pins.drift_percent {
            self.clock_drift = Ppm::from_percent(p);
        }
        if let Some(on) = pins.minority_stays_down {
            self.minority_stays_down = on;
        }
        if let Some(ms) = pins.crash_every_ms {
            self.faults.crash_interval_ms_mean = (ms > 0).then_some(ms);
        }
        if let Some(ms) = pins.partition_every_ms {
            self.faults.partition_interval_ms_mean = (ms > 0).then_some(ms);
        }
        if let Some(n) = pins.msg_entries_max {
            self.msg_entries_max = n.max(1);
        }
        if let Some(n) = pins.inflight_msgs_max {
            self.inflight_msgs_max = n.max(1);
        }
        let every = match (pins.membership_every_ms, pins.membership_changes) {
            (Some(ms), _) => Some((ms > 0).then_some(ms)),
            (None, Some(false)) => Some(None),
            (None, Some(true)) => Some(self.membership.change_interval_ms_mean.or(Some(500))),
            (None, None) => None,
        };
        if let Some(every) = every {
            self.membership.change_interval_ms_mean = every;
            self.faults.membership_interval_ms_mean = every;
            self.membership.spares_count = match every {
                None => 0,
                Some(_) => self.membership.spares_if_changing.max(1),
            };
        }
        self.apply_targeted_pins(pins);
    }

    /// The knobs of issue 9. Partial connectivity is a kind of partition and the
    /// crashes aimed at unsynced leaders a kind of crash: with their class off, they
    /// are off too, unless pinned on by name.
    fn apply_targeted_pins(&mut self, pins: &Pins) {
        let f = &mut self.faults;
        if f.partition_interval_ms_mean.is_none() {
            f.partial_interval_ms_mean = None;
        }
        if f.crash_interval_ms_mean.is_none() {
            f.unsynced_crash_interval_ms_mean = None;
        }
        match pins.partial_connectivity {
            Some(false) => f.partial_interval_ms_mean = None,
            Some(true) => {
                f.partial_interval_ms_mean = f.partial_interval_ms_mean.or(Some(500));
            }
            None => {}
        }
        match pins.unsynced_leader_crashes {
            Some(false) => f.unsynced_crash_interval_ms_mean = None,
            Some(true) => {
                f.unsynced_crash_interval_ms_mean = f.unsynced_crash_interval_ms_mean.or(Some(500));
            }
            None => {}
        }
        match pins.two_voter_changes {
            Some(false) => f.two_voter_changes = Ppm::ZERO,
            Some(true) if f.two_voter_changes == Ppm::ZERO => {
                f.two_voter_changes = Ppm::from_percent(50.0);
            }
            _ => {}
        }
        let n = &mut self.network;
        match pins.late_messages {
            Some(false) => {
                n.hold = Ppm::ZERO;
                n.late = Ppm::ZERO;
            }
            Some(true) => {
                if n.hold == Ppm::ZERO {
                    n.hold = Ppm::from_percent(50.0);
                }
                if n.late == Ppm::ZERO {
                    n.late = Ppm::from_percent(1.0);
                }
            }
            None => {}
        }
    }

    /// Every node id of the world: the initial voters, then the spares.
    pub fn nodes_total(&self) -> u32 {
        self.nodes_count + self.membership.spares_count
    }
}

fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

fn every_ms(mean: Option<u32>) -> String {
    mean.map_or("never".into(), |ms| format!("~{ms}ms"))
}

impl fmt::Display for SimParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = &self.network;
        let w = &self.workload;
        writeln!(
            f,
            "cluster:  nodes={} pre_vote={} check_quorum={} read_lease={} msg_entries_max={} inflight_msgs_max={} compact_every={} drift=±{}",
            self.nodes_count,
            on_off(self.pre_vote),
            on_off(self.check_quorum),
            on_off(self.read_lease),
            self.msg_entries_max,
            self.inflight_msgs_max,
            self.compact_every_entries
                .map_or("never".into(), |e| format!("{e}entries")),
            self.clock_drift
        )?;
        writeln!(
            f,
            "network:  delay={}us+0..{}us tail={} up to {}us loss={} dup={} client_delay<={}us",
            n.delay_us_min,
            n.jitter_us_max,
            n.tail,
            n.tail_us_max,
            n.loss,
            n.duplicate,
            self.client_delay_us_max
        )?;
        writeln!(
            f,
            "late:     held_on_cut_links={} very_late={} ({}..{}us)",
            n.hold, n.late, LATE_DELAY_US_MIN, n.late_us_max
        )?;
        writeln!(
            f,
            "disk:     fsync={}..{}us",
            self.fsync_us_min, self.fsync_us_max
        )?;
        writeln!(
            f,
            "faults:   phase={}ms partitions={} (<= {}ms) crashes={} (down <= {}ms) minority_stays_down={}",
            self.fault_phase_ms,
            every_ms(self.faults.partition_interval_ms_mean),
            self.faults.partition_ms_max,
            every_ms(self.faults.crash_interval_ms_mean),
            self.faults.down_ms_max,
            on_off(self.minority_stays_down)
        )?;
        writeln!(
            f,
            "targeted: partial_connectivity={} unsynced_leader_crashes={} two_voter_changes={}",
            every_ms(self.faults.partial_interval_ms_mean),
            every_ms(self.faults.unsynced_crash_interval_ms_mean),
            self.faults.two_voter_changes
        )?;
        writeln!(
            f,
            "members:  membership_changes={} spares={} snapshot_chunk={}bytes",
            every_ms(self.membership.change_interval_ms_mean),
            self.membership.spares_count,
            self.snapshot_chunk_bytes
        )?;
        write!(
            f,
            "clients:  count={} keys={} think<={}us timeout={}us attempts={} reads={} cas={} deletes={} local_readers={}",
            w.clients_count, w.keys_count, w.think_us_max, w.request_timeout_us, w.attempts_max,
            w.reads, w.cas, w.deletes, on_off(self.local_readers)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_draws_the_same_world() {
        assert_eq!(
            SimParams::draw(7, &Pins::default()),
            SimParams::draw(7, &Pins::default())
        );
    }

    #[test]
    fn seeds_draw_every_cluster_size() {
        let sizes: std::collections::BTreeSet<u32> = (0..200)
            .map(|s| SimParams::draw(s, &Pins::default()).nodes_count)
            .collect();
        assert_eq!(sizes.into_iter().collect::<Vec<_>>(), NODES_SUPPORTED);
    }

    #[test]
    fn some_seeds_draw_small_clusters_and_a_pin_turns_them_off() {
        let small = (0..1_000)
            .filter(|s| [1, 2, 4].contains(&SimParams::draw(*s, &Pins::default()).nodes_count))
            .count();
        assert!(
            (250..=350).contains(&small),
            "{small} small clusters in 1,000 seeds"
        );
        let off = Pins {
            small_clusters: Some(false),
            ..Pins::default()
        };
        assert!((0..200).all(|s| [3, 5, 7].contains(&SimParams::draw(s, &off).nodes_count)));
    }

    #[test]
    fn a_fault_class_turned_off_turns_off_its_targeted_kind() {
        let pins = Pins {
            partitions: Some(false),
            crashes: Some(false),
            ..Pins::default()
        };
        for seed in 0..50 {
            let p = SimParams::draw(seed, &pins);
            assert_eq!(p.faults.partial_interval_ms_mean, None);
            assert_eq!(p.faults.unsynced_crash_interval_ms_mean, None);
        }
        let late_off = Pins {
            late_messages: Some(false),
            ..Pins::default()
        };
        let p = SimParams::draw(3, &late_off);
        assert_eq!((p.network.hold, p.network.late), (Ppm::ZERO, Ppm::ZERO));
    }

    #[test]
    fn pinning_one_knob_leaves_the_others_alone() {
        let free = SimParams::draw(11, &Pins::default());
        let pins = Pins {
            nodes: Some(3),
            loss_percent: Some(0.0),
            ..Pins::default()
        };
        let pinned = SimParams::draw(11, &pins);
        assert_eq!(pinned.nodes_count, 3);
        assert_eq!(pinned.network.loss, Ppm::ZERO);
        assert_eq!(pinned.network.jitter_us_max, free.network.jitter_us_max);
        assert_eq!(pinned.workload, free.workload);
        assert_eq!(pinned.faults, free.faults);
    }

    #[test]
    fn membership_changes_are_drawn_last_and_pinnable() {
        let on = SimParams::draw(
            5,
            &Pins {
                membership_changes: Some(true),
                ..Pins::default()
            },
        );
        let off = SimParams::draw(
            5,
            &Pins {
                membership_changes: Some(false),
                ..Pins::default()
            },
        );
        assert!(on.membership.change_interval_ms_mean.is_some());
        assert!(on.membership.spares_count >= 1);
        assert_eq!(off.membership.change_interval_ms_mean, None);
        assert_eq!(off.membership.spares_count, 0);
        assert_eq!(off.nodes_total(), off.nodes_count);
        assert_eq!(on.workload, off.workload);
        assert_eq!(
            on.faults.crash_interval_ms_mean,
            off.faults.crash_interval_ms_mean
        );
        assert_eq!(
            on.faults.partition_interval_ms_mean,
            off.faults.partition_interval_ms_mean
        );
        let seeds_with_changes = (0..40)
            .filter(|s| {
                SimParams::draw(*s, &Pins::default())
                    .membership
                    .change_interval_ms_mean
                    .is_some()
            })
            .count();
        assert!(
            (8..=32).contains(&seeds_with_changes),
            "{seeds_with_changes}"
        );
    }

    #[test]
    fn the_report_names_every_drawn_parameter() {
        let text = SimParams::draw(3, &Pins::default()).to_string();
        for name in [
            "nodes=",
            "pre_vote=",
            "check_quorum=",
            "read_lease=",
            "local_readers=",
            "compact_every=",
            "drift=",
            "delay=",
            "tail=",
            "loss=",
            "dup=",
            "client_delay",
            "fsync=",
            "phase=",
            "partitions=",
            "crashes=",
            "minority_stays_down=",
            "membership_changes=",
            "spares=",
            "snapshot_chunk=",
            "count=",
            "keys=",
            "think",
            "timeout=",
            "attempts=",
            "reads=",
            "cas=",
            "deletes=",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }
}
