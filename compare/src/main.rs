//! raft-core and raft-rs (tikv/raft 0.7) side by side, in one process, on the same
//! workload: a cluster of in-memory nodes in one thread, messages delivered by
//! function calls in rounds, writes "persisted" at once. Only the consensus code
//! differs, so the ratio between the two is what this measures; absolute numbers
//! move with the machine.
//!
//! `cargo run --release --manifest-path compare/Cargo.toml [-- --rounds N]`

mod core_side;
mod rrs_side;

use std::time::{Duration, Instant};

/// What one election measured: from the campaign to the candidate leading, and to
/// its first entry of the term (the no-op) committed on the leader.
#[derive(Clone, Copy, Default)]
pub struct Election {
    pub to_leader: Duration,
    pub to_committed: Duration,
}

/// A cluster one side can build and elect in.
pub trait Side {
    const NAME: &'static str;
    /// A fresh cluster of `nodes` voters, PreVote on or off.
    fn new(nodes: u64, pre_vote: bool) -> Self;
    /// Node 1 campaigns; delivers until it leads and its no-op is committed.
    fn elect(&mut self) -> Election;
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// Elects `rounds` times in fresh clusters; the medians of both spans.
fn measure<S: Side>(nodes: u64, pre_vote: bool, rounds: usize) -> (Duration, Duration) {
    let mut to_leader = Vec::with_capacity(rounds);
    let mut to_committed = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let mut cluster = S::new(nodes, pre_vote);
        let election = cluster.elect();
        to_leader.push(election.to_leader);
        to_committed.push(election.to_committed);
    }
    (median(to_leader), median(to_committed))
}

fn us(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1000.0
}

fn main() {
    let mut rounds = 20_000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rounds" => {
                rounds = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--rounds takes a number");
            }
            other => {
                eprintln!("unknown argument {other:?}; usage: raft-compare [--rounds N]");
                std::process::exit(2);
            }
        }
    }
    println!("election, median of {rounds} fresh clusters per row (us)");
    println!(
        "{:<8} {:<9} {:>12} {:>12} {:>14} {:>14}",
        "nodes", "pre-vote", "core leader", "rrs leader", "core commit", "rrs commit"
    );
    let started = Instant::now();
    for nodes in [3, 5] {
        for pre_vote in [false, true] {
            // Interleave the two sides so that machine noise hits both alike.
            let mut core = Vec::new();
            let mut rrs = Vec::new();
            for _ in 0..4 {
                core.push(measure::<core_side::CoreCluster>(
                    nodes,
                    pre_vote,
                    rounds / 4,
                ));
                rrs.push(measure::<rrs_side::RrsCluster>(nodes, pre_vote, rounds / 4));
            }
            let pick = |v: &[(Duration, Duration)], f: fn(&(Duration, Duration)) -> Duration| {
                median(v.iter().map(f).collect())
            };
            println!(
                "{:<8} {:<9} {:>12.2} {:>12.2} {:>14.2} {:>14.2}",
                nodes,
                if pre_vote { "on" } else { "off" },
                us(pick(&core, |e| e.0)),
                us(pick(&rrs, |e| e.0)),
                us(pick(&core, |e| e.1)),
                us(pick(&rrs, |e| e.1)),
            );
        }
    }
    eprintln!("({:.1} s)", started.elapsed().as_secs_f64());
}
