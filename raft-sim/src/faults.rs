//! The fault plan: what goes wrong, and when, during a run's fault phase.
//!
//! A plan is plain data (a list of timed faults), drawn from the seed's fault stream
//! or written by a test, and proptest can generate and shrink it. Which nodes a fault
//! hits is resolved when it fires (the leader at that moment, a random half), from
//! the fault stream, so a plan reads like a story: "at 300ms isolate the leader for
//! 800ms; at 900ms crash a follower for 400ms".

use std::fmt;

use crate::rng::SimRng;

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

    /// The number of faults of each class: (partitions, crashes).
    pub fn counts(&self) -> (usize, usize) {
        let partitions = self
            .faults
            .iter()
            .filter(|f| matches!(f.fault, Fault::Partition { .. }))
            .count();
        (partitions, self.faults.len() - partitions)
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
        }
    }

    #[test]
    fn a_drawn_plan_is_sorted_inside_the_phase_and_has_both_classes() {
        let mut rng = SimRng::new(5, StreamKind::Fault);
        let plan = FaultPlan::draw(&mut rng, &rates(), 10_000);
        assert!(plan.faults.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        assert!(plan.faults.iter().all(|f| f.at_ms < 10_000));
        let (partitions, crashes) = plan.counts();
        assert!((10..=30).contains(&partitions), "{partitions} partitions");
        assert!((4..=18).contains(&crashes), "{crashes} crashes");
    }

    #[test]
    fn no_rates_no_faults() {
        let mut rng = SimRng::new(5, StreamKind::Fault);
        let calm = FaultRates {
            partition_interval_ms_mean: None,
            crash_interval_ms_mean: None,
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
}
