//! The same seed replays the same run: same report, byte for byte, same digest.

use raft_sim::params::{Pins, SimParams};

/// Every parameter as the swarm draws it.
fn pins() -> Pins {
    Pins::default()
}
use raft_sim::run::run;
use raft_sim::world::RunOptions;

#[test]
fn the_same_seed_gives_a_byte_identical_report() {
    for seed in [1, 42, 1234] {
        let params = SimParams::draw(seed, &pins());
        let first = run(&params, RunOptions::default()).to_string();
        let second = run(&params, RunOptions::default()).to_string();
        assert_eq!(first, second, "seed {seed} is not deterministic");
        assert!(first.lines().last().unwrap().starts_with("digest:"));
    }
}

#[test]
fn different_seeds_give_different_digests() {
    let digest = |seed| {
        let params = SimParams::draw(seed, &pins());
        run(&params, RunOptions::default()).digest
    };
    assert_ne!(digest(1), digest(2));
}

#[test]
fn recording_a_timeline_does_not_change_the_run() {
    let params = SimParams::draw(7, &pins());
    let plain = run(&params, RunOptions::default());
    let drawn = run(
        &params,
        RunOptions {
            timeline: true,
            ..RunOptions::default()
        },
    );
    assert_eq!(plain.digest, drawn.digest);
    let svg = drawn
        .timeline
        .expect("recorded")
        .to_svg(params.nodes_count, drawn.end, 0.5, "t");
    assert!(svg.contains("<svg") && svg.contains("n1"));
}
