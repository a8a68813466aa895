//! Named scenarios: one fault story each, with the outcome the protocol promises.
//! Failing seeds found by sweeps are added here as regression tests, by name.

use raft_sim::faults::{CrashTarget, Fault, FaultPlan, PartitionKind, TimedFault};
use raft_sim::params::{Pins, SimParams};
use raft_sim::run::{run, RunReport, Verdict};
use raft_sim::world::RunOptions;

fn calm(nodes: u32) -> Pins {
    Pins {
        nodes: Some(nodes),
        loss_percent: Some(0.0),
        duplicate_percent: Some(0.0),
        fault_phase_ms: Some(2_000),
        // Compaction only where a test asks for it.
        compact_every: Some(0),
        ..Pins::default()
    }
}

fn run_plan(seed: u64, pins: &Pins, faults: Vec<TimedFault>) -> RunReport {
    let params = SimParams::draw(seed, pins);
    run(
        &params,
        RunOptions {
            plan: Some(FaultPlan::new(faults)),
            ..RunOptions::default()
        },
    )
}

#[test]
fn isolating_the_leader_elects_another_and_serves_on() {
    let report = run_plan(
        3,
        &calm(5),
        vec![TimedFault {
            at_ms: 500,
            fault: Fault::Partition {
                kind: PartitionKind::IsolateLeader,
                duration_ms: 1_000,
            },
        }],
    );
    assert_eq!(report.verdict, Verdict::Pass);
    assert!(
        report.coverage.elections_won >= 2,
        "a new leader took over: {}",
        report.coverage
    );
    assert!(report.history.writes_ok > 0);
}

#[test]
fn crashing_the_leader_repeatedly_loses_no_acknowledged_write() {
    let faults = (0..6)
        .map(|i| TimedFault {
            at_ms: 200 + i * 300,
            fault: Fault::Crash {
                target: CrashTarget::Leader,
                down_ms: 150,
            },
        })
        .collect();
    let report = run_plan(5, &calm(3), faults);
    assert_eq!(report.verdict, Verdict::Pass);
    assert!(report.coverage.crashes >= 6);
    assert!(report.history.writes_ok > 0);
}

#[test]
fn a_calm_world_elects_one_leader_and_completes_everything() {
    let pins = Pins {
        minority_stays_down: Some(false),
        ..calm(5)
    };
    let report = run_plan(11, &pins, Vec::new());
    assert_eq!(report.verdict, Verdict::Pass);
    assert_eq!(report.coverage.crashes, 0);
    assert_eq!(report.coverage.partitions, 0);
    assert_eq!(report.history.unknown, 0, "{report}");
    assert!(report.history.writes_ok > 0 && report.history.reads_ok > 0);
}

#[test]
fn compaction_and_snapshot_install_keep_the_state_machines_equal() {
    let pins = Pins {
        compact_every: Some(5),
        crashes: Some(true),
        ..calm(3)
    };
    let faults = vec![TimedFault {
        at_ms: 300,
        fault: Fault::Crash {
            target: CrashTarget::Follower,
            down_ms: 800,
        },
    }];
    let report = run_plan(9, &pins, faults);
    assert_eq!(report.verdict, Verdict::Pass);
    assert!(report.coverage.snapshots_taken > 0, "{}", report.coverage);
}
