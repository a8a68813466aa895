//! Fault schedules as proptest values: generated, run, and shrunk to a minimal
//! schedule when one fails. The world around the schedule (network, disks, clients)
//! comes from a fixed seed so that only the schedule varies and shrinks.

use proptest::prelude::*;
use raft_sim::faults::{CrashTarget, Fault, FaultPlan, PartitionKind, TimedFault};
use raft_sim::params::{Pins, SimParams};
use raft_sim::run::{run, Verdict};
use raft_sim::world::RunOptions;

const PHASE_MS: u32 = 1_500;

fn fault() -> impl Strategy<Value = Fault> {
    let partition = (
        prop::sample::select(vec![
            PartitionKind::RandomHalves,
            PartitionKind::IsolateLeader,
            PartitionKind::MajoritiesRing,
            PartitionKind::OneWay,
            PartitionKind::IsolateNextLeader,
        ]),
        50u32..800,
    )
        .prop_map(|(kind, duration_ms)| Fault::Partition { kind, duration_ms });
    let crash = (
        prop::sample::select(vec![
            CrashTarget::Leader,
            CrashTarget::Follower,
            CrashTarget::NextLeader,
        ]),
        10u32..600,
    )
        .prop_map(|(target, down_ms)| Fault::Crash { target, down_ms });
    prop_oneof![partition, crash]
}

fn plan() -> impl Strategy<Value = FaultPlan> {
    prop::collection::vec(
        (0..PHASE_MS, fault()).prop_map(|(at_ms, fault)| TimedFault { at_ms, fault }),
        0..12,
    )
    .prop_map(FaultPlan::new)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn any_fault_schedule_keeps_the_cluster_safe_and_live(
        plan in plan(),
        world_seed in 0u64..4,
        nodes in prop::sample::select(vec![3u32, 5]),
    ) {
        let pins = Pins {
            nodes: Some(nodes),
            fault_phase_ms: Some(PHASE_MS),
            ..Pins::default()
        };
        let params = SimParams::draw(world_seed, &pins);
        let report = run(&params, RunOptions { plan: Some(plan.clone()), ..RunOptions::default() });
        prop_assert_eq!(&report.verdict, &Verdict::Pass, "plan: {:?}", plan.faults);
    }
}
