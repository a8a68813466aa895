//! The default sweep: 500 seeds spread over the swarm's own draws and the pinned
//! extremes (one, two and four voters, PreVote and CheckQuorum off, membership
//! changes on every seed, faults every ~100ms, heavy loss), which must all pass and
//! together exercise every fault class. The long sweeps are `#[ignore]`d (see the
//! README: `cargo test -p raft-sim --release --test sweep -- --ignored`), and the
//! whole matrix is `raft-sim/matrix.sh`.

use raft_sim::params::Pins;
use raft_sim::sweep::{sweep, SweepReport};
use raft_sim::world::Checks;

/// One world of the sweep: a name, its pins, and how many seeds it runs.
struct World {
    name: &'static str,
    pins: Pins,
    seeds: u64,
}

/// The worlds of the default run: 500 seeds, a little under half of them in the
/// pinned extremes (each of those small enough for a debug build on two cores; the
/// README gives the timing).
fn worlds() -> Vec<World> {
    let world = |name, seeds, pins| World { name, pins, seeds };
    vec![
        world("swarm", 230, Pins::default()),
        world(
            "lease reads and local readers, frequent partitions",
            30,
            Pins {
                read_lease: Some(true),
                local_readers: Some(true),
                partition_every_ms: Some(200),
                ..Pins::default()
            },
        ),
        world("one voter", 30, nodes(1)),
        world("two voters", 30, nodes(2)),
        world("four voters", 30, nodes(4)),
        world(
            "no PreVote, no CheckQuorum",
            30,
            Pins {
                pre_vote: Some(false),
                check_quorum: Some(false),
                ..Pins::default()
            },
        ),
        world(
            "PreVote without CheckQuorum",
            30,
            Pins {
                pre_vote: Some(true),
                check_quorum: Some(false),
                ..Pins::default()
            },
        ),
        world(
            "membership changes on every seed",
            30,
            Pins {
                membership_changes: Some(true),
                ..Pins::default()
            },
        ),
        world(
            "a partition and a crash every ~100ms",
            30,
            Pins {
                partition_every_ms: Some(100),
                crash_every_ms: Some(100),
                ..Pins::default()
            },
        ),
        world(
            "20% loss",
            30,
            Pins {
                loss_percent: Some(20.0),
                ..Pins::default()
            },
        ),
    ]
}

fn nodes(n: u32) -> Pins {
    Pins {
        nodes: Some(n),
        ..Pins::default()
    }
}

/// Seeds (world, seed) that fail because of open core bugs kept (ignored) in
/// `core_regressions.rs`: the sweep reports them but does not fail on them.
const KNOWN_CORE_BUG_SEEDS: &[(&str, u64)] = &[];

fn failures_of(name: &str, report: &SweepReport) -> Vec<String> {
    report
        .failures()
        .iter()
        .filter(|r| !KNOWN_CORE_BUG_SEEDS.contains(&(name, r.seed)))
        .map(|r| format!("{name}: seed {}: {:?}", r.seed, r.verdict))
        .collect()
}

#[test]
fn five_hundred_seeds_over_the_swarm_and_the_pinned_extremes_pass_and_cover_every_fault_class() {
    let mut failures = Vec::new();
    let mut coverage = raft_sim::coverage::Coverage::default();
    for world in worlds() {
        let report = sweep(
            1..1 + world.seeds,
            2,
            &world.pins,
            Checks::default(),
            &|_| {},
        );
        failures.extend(failures_of(world.name, &report));
        coverage.add(&report.coverage);
    }
    assert!(
        failures.is_empty(),
        "failing seeds:\n{}",
        failures.join("\n")
    );
    assert_eq!(
        coverage.fault_gaps(),
        Vec::<&str>::new(),
        "the sweep never exercised these fault classes"
    );
    assert!(
        coverage.reads_from_lease > 0,
        "no read was served from a lease: {coverage}"
    );
}

#[test]
#[ignore = "the long sweep: run with --release --test sweep -- --ignored"]
fn ten_thousand_seeds_pass() {
    let report = sweep(1..10_001, 2, &Pins::default(), Checks::default(), &|_| {});
    let failures = failures_of("swarm", &report);
    assert!(
        failures.is_empty(),
        "failing seeds:\n{}",
        failures.join("\n")
    );
    assert_eq!(report.coverage.fault_gaps(), Vec::<&str>::new());
}
