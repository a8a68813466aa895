//! The fault plan: what goes wrong, and when, during a run's fault phase.
//!
//! A plan is plain data (a list of timed faults), drawn from the seed's fault stream
//! or written by a test, and proptest can generate and shrink it. Which nodes a fault
//! hits is resolved when it fires (the leader at that moment, a random half), from
//! the fault stream, so a plan reads like a story: "at 300ms isolate the leader for
//! 800ms; at 900ms crash a follower for 400ms".

use std::fmt;

use crate::rng::{Ppm, SimRng};

/// The most faults in one plan.
pub const FAULTS_MAX: usize = 256;

/// How the network splits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PartitionKind {
    /// Two random groups (either may hold the majority).
    RandomHalves,
    /// The current leader (or a random node without one) alone on one side.
    IsolateLeader,
    /// Every node sees a majority, but not the same one (Jepsen's majorities ring).
    MajoritiesRing,
    /// Some links cut in one direction only: messages flow one way.
    OneWay,
    /// Armed at its time; fires within 20ms of the next election won, often cutting
    /// the new leader off before it has replicated its first entries.
    IsolateNextLeader,
    /// One node reaches exactly one other node, both ways, and no one else; the rest
    /// stay fully connected (the partial partition that took down a Raft cluster at
    /// Cloudflare in 2020: without CheckQuorum's leader stickiness the cut-off node's
    /// campaigns, relayed by its one neighbour's vote, depose a healthy leader).
    ReachesOnlyOne,
    /// The links from the leader (a random node without one) to one or more other
    /// nodes (never a majority of them) are cut one way: those nodes hear everyone
    /// but the leader, and the leader still hears them.
    CannotHearLeader,
}

impl PartitionKind {
    /// The partial-connectivity kinds, drawn from the targeted stream.
    pub const PARTIAL: [PartitionKind; 2] = [
        PartitionKind::ReachesOnlyOne,
        PartitionKind::CannotHearLeader,
    ];
}

/// Which node a crash hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CrashTarget {
    /// The current leader (a random node without one).
    Leader,
    /// A random node that is not the leader.
    Follower,
    /// Armed at its time; crashes the next node to win an election within 20ms of its
    /// win, often before its first entries are replicated: the moment the commit
    /// rule of §5.4.2 (Figure 8) exists for.
    NextLeader,
    /// Armed at its time; crashes the next node that receives an InstallSnapshot
    /// chunk, right after the chunk or a little later: between chunks, between the
    /// core's request to persist the snapshot and its `Persisted` report, or after.
    SnapshotReceiver,
    /// Armed at its time; crashes the leader right after a step that left it with
    /// appended entries its disk has not synced, before the fsync completes: what a
    /// leader counts toward its own commit quorum must be durable (thesis §10.2.1),
    /// which one- and two-voter worlds test most sharply.
    LeaderWithUnsyncedAppends,
}

/// Which membership change the leader is asked to make (resolved when it fires,
/// from the leader's membership at that moment).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MembershipKind {
    /// Add a spare node as a learner.
    AddSpare,
    /// Promote a learner to voter (through a joint configuration).
    Promote,
    /// Remove a voter that is not the leader.
    RemoveFollower,
    /// Remove the leader itself (it steps down once the change commits).
    RemoveLeader,
    /// Make two learners voters at once (3 voters to 5 in one joint configuration),
    /// or spares, straight away and empty, if there are not two learners.
    PromoteTwo,
    /// Remove two voters at once (5 to 3), the leader among them half the time.
    RemoveTwo,
    /// Replace two voters at once: remove two, and make two learners (or spares,
    /// empty, straight away) voters in the same joint configuration.
    ReplaceTwo,
}

impl MembershipKind {
    /// The kinds that change one server, in the order a fallback tries them.
    pub const SINGLE: [MembershipKind; 4] = [
        MembershipKind::AddSpare,
        MembershipKind::Promote,
        MembershipKind::RemoveFollower,
        MembershipKind::RemoveLeader,
    ];

    /// The kinds that change two voters at once, in the order a fallback tries them.
    pub const TWO_VOTERS: [MembershipKind; 3] = [
        MembershipKind::PromoteTwo,
        MembershipKind::RemoveTwo,
        MembershipKind::ReplaceTwo,
    ];

    /// The kinds to try, in order, when `self` is asked for: `self`, then the others
    /// of its group; a two-voter kind falls back on the single kinds last.
    pub fn fallbacks(self) -> Vec<MembershipKind> {
        let rotated = |group: &[MembershipKind]| -> Vec<MembershipKind> {
            let start = group.iter().position(|k| *k == self).unwrap_or(0);
            (0..group.len())
                .map(|i| group[(start + i) % group.len()])
                .collect()
        };
        if Self::SINGLE.contains(&self) {
            return rotated(&Self::SINGLE);
        }
        let mut kinds = rotated(&Self::TWO_VOTERS);
        kinds.extend(Self::SINGLE);
        kinds
    }
}

/// One fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// Partition the network, then heal it after `duration_ms` (unless another
    /// partition replaced it first).
    Partition {
        /// The shape of the split.
        kind: PartitionKind,
        /// How long it lasts.
        duration_ms: u32,
    },
    /// Crash a node (it loses what was not durable) and restart it after `down_ms`.
    Crash {
        /// Which node.
        target: CrashTarget,
        /// How long it stays down.
        down_ms: u32,
    },
    /// Ask the leader to change the membership.
    Membership {
        /// The change wanted (another applicable one if it is not).
        kind: MembershipKind,
        /// Armed: fire within 3ms of the next election won, usually before the new
        /// leader has committed an entry of its term (the window the rule of
        /// Ongaro's 2015 single-server-change fix closes).
        at_next_leader: bool,
    },
}

/// A fault at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimedFault {
    /// When it fires, from the start of the run.
    pub at_ms: u32,
    /// What fires.
    pub fault: Fault,
}

impl fmt::Display for TimedFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.fault {
            Fault::Partition { kind, duration_ms } => {
                write!(f, "{}ms partition {kind:?} for {duration_ms}ms", self.at_ms)
            }
            Fault::Crash { target, down_ms } => {
                write!(f, "{}ms crash {target:?} for {down_ms}ms", self.at_ms)
            }
            Fault::Membership {
                kind,
                at_next_leader,
            } => {
                let aim = if at_next_leader {
                    " at next leader"
                } else {
                    ""
                };
                write!(f, "{}ms membership {kind:?}{aim}", self.at_ms)
            }
        }
    }
}

/// How often faults of each class fire (None: never).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultRates {
    /// The mean time between partitions.
    pub partition_interval_ms_mean: Option<u32>,
    /// The mean time between crashes.
    pub crash_interval_ms_mean: Option<u32>,
    /// The longest a partition lasts.
    pub partition_ms_max: u32,
    /// The longest a crashed node stays down.
    pub down_ms_max: u32,
    /// The mean time between membership changes.
    pub membership_interval_ms_mean: Option<u32>,
    /// The mean time between partial-connectivity partitions (None: never).
    pub partial_interval_ms_mean: Option<u32>,
    /// The mean time between crashes aimed at a leader with unsynced appends.
    pub unsynced_crash_interval_ms_mean: Option<u32>,
    /// The share of membership changes that change two voters at once.
    pub two_voter_changes: Ppm,
}

/// The faults of one run, in time order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// The faults, sorted by `at_ms`.
    pub faults: Vec<TimedFault>,
}

impl FaultPlan {
    /// A plan from explicit faults (sorted here; at most `FAULTS_MAX` kept).
    pub fn new(mut faults: Vec<TimedFault>) -> FaultPlan {
        faults.sort_by_key(|f| f.at_ms);
        faults.truncate(FAULTS_MAX);
        FaultPlan { faults }
    }

    /// Draws a plan for a fault phase of `phase_ms` from `rates`.
    pub fn draw(rng: &mut SimRng, rates: &FaultRates, phase_ms: u32) -> FaultPlan {
        let mut faults = Vec::new();
        if let Some(mean) = rates.partition_interval_ms_mean {
            let kinds = [
                PartitionKind::RandomHalves,
                PartitionKind::IsolateLeader,
                PartitionKind::MajoritiesRing,
                PartitionKind::OneWay,
                PartitionKind::IsolateNextLeader,
            ];
            for at_ms in Self::arrivals(rng, mean, phase_ms) {
                let kind = *rng.pick(&kinds);
                let duration_ms = rng.between(50, u64::from(rates.partition_ms_max.max(50))) as u32;
                faults.push(TimedFault {
                    at_ms,
                    fault: Fault::Partition { kind, duration_ms },
                });
            }
        }
        if let Some(mean) = rates.crash_interval_ms_mean {
            for at_ms in Self::arrivals(rng, mean, phase_ms) {
                let target = *rng.pick(&[
                    CrashTarget::Leader,
                    CrashTarget::Follower,
                    CrashTarget::NextLeader,
                ]);
                let down_ms = rng.between(10, u64::from(rates.down_ms_max.max(10))) as u32;
                faults.push(TimedFault {
                    at_ms,
                    fault: Fault::Crash { target, down_ms },
                });
            }
        }
        FaultPlan::new(faults)
    }

    /// Draws the faults of the reconfiguration stream and adds them to the plan:
    /// membership changes (if `rates` has them) and, when crashes happen at all, up
    /// to three crashes aimed at a node receiving a snapshot. A stream of their own,
    /// so worlds without them keep the plan they always had.
    pub fn with_reconfig(mut self, rng: &mut SimRng, rates: &FaultRates, phase_ms: u32) -> Self {
        if let Some(mean) = rates.membership_interval_ms_mean {
            for at_ms in Self::arrivals(rng, mean, phase_ms) {
                let kind = *rng.pick(&MembershipKind::SINGLE);
                let at_next_leader = rng.chance(crate::rng::Ppm::from_percent(30.0));
                self.faults.push(TimedFault {
                    at_ms,
                    fault: Fault::Membership {
                        kind,
                        at_next_leader,
                    },
                });
            }
        }
        if rates.crash_interval_ms_mean.is_some() {
            for _ in 0..rng.between(0, 3) {
                let at_ms = rng.between(0, u64::from(phase_ms.max(1)) - 1) as u32;
                let down_ms = rng.between(10, u64::from(rates.down_ms_max.max(10))) as u32;
                self.faults.push(TimedFault {
                    at_ms,
                    fault: Fault::Crash {
                        target: CrashTarget::SnapshotReceiver,
                        down_ms,
                    },
                });
            }
        }
        FaultPlan::new(self.faults)
    }

    /// Draws the faults of the targeted stream and adds them to the plan:
    /// partial-connectivity partitions, crashes aimed at a leader with unsynced
    /// appends, and (with the chance `rates.two_voter_changes`) turns membership
    /// changes into changes of two voters at once. A stream of its own, so a world
    /// with none of them keeps the plan it had before they existed.
    pub fn with_targeted(mut self, rng: &mut SimRng, rates: &FaultRates, phase_ms: u32) -> Self {
        if let Some(mean) = rates.partial_interval_ms_mean {
            for at_ms in Self::arrivals(rng, mean, phase_ms) {
                let kind = *rng.pick(&PartitionKind::PARTIAL);
                let duration_ms = rng.between(50, u64::from(rates.partition_ms_max.max(50))) as u32;
                self.faults.push(TimedFault {
                    at_ms,
                    fault: Fault::Partition { kind, duration_ms },
                });
            }
        }
        if let Some(mean) = rates.unsynced_crash_interval_ms_mean {
            for at_ms in Self::arrivals(rng, mean, phase_ms) {
                let down_ms = rng.between(10, u64::from(rates.down_ms_max.max(10))) as u32;
                self.faults.push(TimedFault {
                    at_ms,
                    fault: Fault::Crash {
                        target: CrashTarget::LeaderWithUnsyncedAppends,
                        down_ms,
                    },
                });
            }
        }
        if rates.two_voter_changes > Ppm::ZERO {
            for timed in &mut self.faults {
                if let Fault::Membership { kind, .. } = &mut timed.fault {
                    if rng.chance(rates.two_voter_changes) {
                        *kind = *rng.pick(&MembershipKind::TWO_VOTERS);
                    }
                }
            }
        }
        FaultPlan::new(self.faults)
    }

    /// Arrival times with gaps drawn uniformly from `0..2 * mean` (mean `mean`).
    fn arrivals(rng: &mut SimRng, mean_ms: u32, phase_ms: u32) -> Vec<u32> {
        let mut times = Vec::new();
        let mut at = 0u64;
        while times.len() < FAULTS_MAX / 2 {
            at += rng.between(1, 2 * u64::from(mean_ms.max(1)));
            if at >= u64::from(phase_ms) {
                break;
            }
            times.push(at as u32);
        }
        times
    }

    /// The number of faults of each class: (partitions, crashes, membership changes).
    pub fn counts(&self) -> (usize, usize, usize) {
        let count =
            |want: fn(&Fault) -> bool| self.faults.iter().filter(|f| want(&f.fault)).count();
        (
            count(|f| matches!(f, Fault::Partition { .. })),
            count(|f| matches!(f, Fault::Crash { .. })),
            count(|f| matches!(f, Fault::Membership { .. })),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::StreamKind;

    fn rates() -> FaultRates {
        FaultRates {
            partition_interval_ms_mean: Some(500),
            crash_interval_ms_mean: Some(1_000),
            partition_ms_max: 1_000,
            down_ms_max: 500,
            membership_interval_ms_mean: Some(400),
            partial_interval_ms_mean: Some(500),
            unsynced_crash_interval_ms_mean: Some(1_000),
            two_voter_changes: Ppm::from_percent(50.0),
        }
    }

    #[test]
    fn a_drawn_plan_is_sorted_inside_the_phase_and_has_both_classes() {
        let mut rng = SimRng::new(5, StreamKind::Fault);
        let plan = FaultPlan::draw(&mut rng, &rates(), 10_000);
        assert!(plan.faults.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        assert!(plan.faults.iter().all(|f| f.at_ms < 10_000));
        let (partitions, crashes, changes) = plan.counts();
        assert!((10..=30).contains(&partitions), "{partitions} partitions");
        assert!((4..=18).contains(&crashes), "{crashes} crashes");
        assert_eq!(changes, 0, "membership changes come from their own stream");
    }

    #[test]
    fn the_reconfig_stream_adds_membership_changes_and_leaves_the_rest() {
        let mut rng = SimRng::new(5, StreamKind::Fault);
        let plan = FaultPlan::draw(&mut rng, &rates(), 10_000);
        let mut reconfig = SimRng::new(5, StreamKind::Reconfig);
        let more = plan.clone().with_reconfig(&mut reconfig, &rates(), 10_000);
        let (partitions, crashes, changes) = more.counts();
        assert_eq!(partitions, plan.counts().0);
        assert!(crashes >= plan.counts().1 && crashes <= plan.counts().1 + 3);
        assert!((10..=40).contains(&changes), "{changes} membership changes");
        assert!(more.faults.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    }

    #[test]
    fn no_rates_no_faults() {
        let mut rng = SimRng::new(5, StreamKind::Fault);
        let calm = FaultRates {
            partition_interval_ms_mean: None,
            crash_interval_ms_mean: None,
            membership_interval_ms_mean: None,
            partial_interval_ms_mean: None,
            unsynced_crash_interval_ms_mean: None,
            ..rates()
        };
        assert!(FaultPlan::draw(&mut rng, &calm, 10_000).faults.is_empty());
    }

    #[test]
    fn faults_print_like_a_story() {
        let f = TimedFault {
            at_ms: 300,
            fault: Fault::Crash {
                target: CrashTarget::Leader,
                down_ms: 40,
            },
        };
        assert_eq!(f.to_string(), "300ms crash Leader for 40ms");
    }

    #[test]
    fn the_targeted_stream_adds_partial_partitions_aimed_crashes_and_two_voter_changes() {
        let mut rng = SimRng::new(5, StreamKind::Fault);
        let base = FaultPlan::draw(&mut rng, &rates(), 10_000).with_reconfig(
            &mut SimRng::new(5, StreamKind::Reconfig),
            &rates(),
            10_000,
        );
        let more =
            base.clone()
                .with_targeted(&mut SimRng::new(5, StreamKind::Targeted), &rates(), 10_000);
        let count = |plan: &FaultPlan, want: fn(&Fault) -> bool| {
            plan.faults.iter().filter(|f| want(&f.fault)).count()
        };
        let partial = |f: &Fault| matches!(f, Fault::Partition { kind, .. } if PartitionKind::PARTIAL.contains(kind));
        let unsynced = |f: &Fault| {
            matches!(
                f,
                Fault::Crash {
                    target: CrashTarget::LeaderWithUnsyncedAppends,
                    ..
                }
            )
        };
        let two = |f: &Fault| matches!(f, Fault::Membership { kind, .. } if MembershipKind::TWO_VOTERS.contains(kind));
        assert_eq!(
            (
                count(&base, partial),
                count(&base, unsynced),
                count(&base, two)
            ),
            (0, 0, 0)
        );
        assert!((10..=30).contains(&count(&more, partial)));
        assert!((4..=18).contains(&count(&more, unsynced)));
        assert!(count(&more, two) > 0);
        assert_eq!(
            more.counts().2,
            base.counts().2,
            "membership changes are converted"
        );
        let off = FaultRates {
            partial_interval_ms_mean: None,
            unsynced_crash_interval_ms_mean: None,
            two_voter_changes: Ppm::ZERO,
            ..rates()
        };
        let same =
            base.clone()
                .with_targeted(&mut SimRng::new(5, StreamKind::Targeted), &off, 10_000);
        assert_eq!(same, base);
    }
}
