//! Named scenarios: one fault story each, with the outcome the protocol promises.
//! Failing seeds found by sweeps are added here as regression tests, by name.

use raft_sim::faults::{CrashTarget, Fault, FaultPlan, MembershipKind, PartitionKind, TimedFault};
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
        late_messages: Some(false),
        ..Pins::default()
    }
}

fn run_plan(seed: u64, pins: &Pins, faults: Vec<TimedFault>) -> RunReport {
    run_params_with_plan(&SimParams::draw(seed, pins), faults)
}

/// Runs `params` (drawn, then adjusted by the test) with a scripted fault plan.
fn run_params_with_plan(params: &SimParams, faults: Vec<TimedFault>) -> RunReport {
    run(
        params,
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

fn membership(at_ms: u32, kind: MembershipKind) -> TimedFault {
    TimedFault {
        at_ms,
        fault: Fault::Membership {
            kind,
            at_next_leader: false,
        },
    }
}

#[test]
fn spares_join_learners_are_promoted_and_the_leader_removes_itself() {
    let pins = Pins {
        membership_changes: Some(true),
        minority_stays_down: Some(false),
        ..calm(3)
    };
    let faults = vec![
        membership(300, MembershipKind::AddSpare),
        membership(500, MembershipKind::Promote),
        membership(800, MembershipKind::RemoveLeader),
        membership(1_100, MembershipKind::AddSpare),
        membership(1_300, MembershipKind::Promote),
        membership(1_600, MembershipKind::RemoveFollower),
    ];
    let mut params = SimParams::draw(21, &pins);
    params.membership.spares_count = 2;
    let report = run_params_with_plan(&params, faults);
    assert_eq!(report.verdict, Verdict::Pass, "{report}");
    let c = &report.coverage;
    assert_eq!(c.learners_added, 2, "{c}");
    assert_eq!(c.learners_promoted, 2, "{c}");
    assert_eq!(c.leaders_removed, 1, "{c}");
    assert_eq!(c.voters_removed, 2, "{c}");
    assert!(report.history.writes_ok > 0);
}

#[test]
fn a_crash_in_the_middle_of_a_snapshot_install_restores_a_matching_state() {
    let pins = Pins {
        compact_every: Some(5),
        crashes: Some(true),
        minority_stays_down: Some(false),
        ..calm(3)
    };
    // The follower falls behind the leader's snapshots while it is down, then
    // crashes again while the snapshot streams in, 64 bytes a chunk.
    let crash = |at_ms, target, down_ms| TimedFault {
        at_ms,
        fault: Fault::Crash { target, down_ms },
    };
    let faults = vec![
        crash(200, CrashTarget::Follower, 600),
        crash(250, CrashTarget::SnapshotReceiver, 50),
        crash(900, CrashTarget::Follower, 600),
        crash(950, CrashTarget::SnapshotReceiver, 50),
    ];
    let mut params = SimParams::draw(9, &pins);
    params.snapshot_chunk_bytes = 64;
    let report = run_params_with_plan(&params, faults);
    assert_eq!(report.verdict, Verdict::Pass, "{report}");
    assert!(
        report.coverage.snapshot_install_crashes >= 1,
        "{}",
        report.coverage
    );
    assert!(
        report.coverage.snapshots_installed >= 1,
        "{}",
        report.coverage
    );
}

fn partition(at_ms: u32, kind: PartitionKind, duration_ms: u32) -> TimedFault {
    TimedFault {
        at_ms,
        fault: Fault::Partition { kind, duration_ms },
    }
}

/// Four rounds of one node reaching only one other, for 400ms each.
fn reach_only_one_rounds() -> Vec<TimedFault> {
    (0..4)
        .map(|i| partition(300 + i * 400, PartitionKind::ReachesOnlyOne, 400))
        .collect()
}

#[test]
fn without_pre_vote_and_check_quorum_a_node_that_reaches_only_one_deposes_a_leader() {
    let pins = Pins {
        pre_vote: Some(false),
        check_quorum: Some(false),
        ..calm(3)
    };
    let report = run_plan(2, &pins, reach_only_one_rounds());
    assert_eq!(report.verdict, Verdict::Pass, "{report}");
    let c = &report.coverage;
    assert!(c.partitions_reach_only_one >= 1, "{c}");
    assert!(
        c.leaders_deposed_in_contact >= 1,
        "its campaigns raise its neighbour's term, which deposes the leader: {c}"
    );
}

#[test]
fn with_pre_vote_and_check_quorum_a_node_that_reaches_only_one_deposes_no_leader() {
    let pins = Pins {
        pre_vote: Some(true),
        check_quorum: Some(true),
        ..calm(3)
    };
    let report = run_plan(2, &pins, reach_only_one_rounds());
    assert_eq!(report.verdict, Verdict::Pass, "{report}");
    let c = &report.coverage;
    assert!(c.partitions_reach_only_one >= 1, "{c}");
    assert_eq!(c.leaders_deposed_in_contact, 0, "{c}");
}

#[test]
fn messages_held_through_a_partition_arrive_after_the_heal_in_a_newer_term() {
    let pins = Pins {
        late_messages: Some(true),
        ..calm(5)
    };
    let mut params = SimParams::draw(4, &pins);
    params.network.hold = raft_sim::rng::Ppm::ONE;
    let faults = vec![partition(400, PartitionKind::IsolateLeader, 800)];
    let report = run_params_with_plan(&params, faults);
    assert_eq!(report.verdict, Verdict::Pass, "{report}");
    let c = &report.coverage;
    assert!(c.msgs_held_released > 0, "{c}");
    assert!(
        c.stale_appends_delivered > 0,
        "the old leader's appends: {c}"
    );
    assert!(c.msgs_delivered_late > 0, "{c}");
}

fn unsynced_leader_crashes() -> Vec<TimedFault> {
    (0..5)
        .map(|i| TimedFault {
            at_ms: 200 + i * 300,
            fault: Fault::Crash {
                target: CrashTarget::LeaderWithUnsyncedAppends,
                down_ms: 50,
            },
        })
        .collect()
}

#[test]
fn a_leader_crashed_before_its_fsync_loses_nothing_acknowledged_with_one_or_two_voters() {
    for nodes in [1, 2] {
        let pins = Pins {
            crashes: Some(true),
            minority_stays_down: Some(false),
            ..calm(nodes)
        };
        let report = run_plan(6, &pins, unsynced_leader_crashes());
        assert_eq!(report.verdict, Verdict::Pass, "{report}");
        let c = &report.coverage;
        assert!(c.unsynced_leader_crashes >= 3, "{nodes} voters: {c}");
        assert!(c.unsynced_leader_writes_lost >= 1, "{nodes} voters: {c}");
        assert!(report.history.writes_ok > 0);
    }
}

#[test]
fn three_voters_become_five_and_five_become_three_in_one_change_each() {
    let pins = Pins {
        membership_changes: Some(true),
        minority_stays_down: Some(false),
        ..calm(3)
    };
    let faults = vec![
        membership(400, MembershipKind::PromoteTwo),
        membership(1_000, MembershipKind::RemoveTwo),
    ];
    let mut params = SimParams::draw(21, &pins);
    params.membership.spares_count = 2;
    let report = run_params_with_plan(&params, faults);
    assert_eq!(report.verdict, Verdict::Pass, "{report}");
    let c = &report.coverage;
    assert_eq!(c.voters_three_to_five, 1, "{c}");
    assert_eq!(c.voters_five_to_three, 1, "{c}");
    assert_eq!(c.two_voter_changes_committed, 2, "{c}");
}
