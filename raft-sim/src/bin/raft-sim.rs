//! The `raft-sim` command line: run one seed, sweep many, replay with a trace, draw a
//! timeline. Exit codes: 0 pass, 2 usage, 3 safety, 4 liveness, 5 determinism,
//! 6 a sweep that never exercised some fault class.

use std::io::IsTerminal;
use std::ops::Range;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use raft_sim::params::{Pins, SimParams, NODES_SUPPORTED};
use raft_sim::run::{install_quiet_panic_hook, run, Verdict, EXIT_DETERMINISM};
use raft_sim::sweep::{run_one, sweep};
use raft_sim::trace::Trace;
use raft_sim::world::{Checks, RunOptions};

/// Deterministic fault simulator for raft-core: one seed, one world, every Raft
/// promise checked.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Run one seed and print its report (byte-identical for the same seed).
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Sweep a half-open range of seeds, e.g. `1..1000` (or `1..=1000`).
    #[arg(long, value_parser = parse_range)]
    seeds: Option<Range<u64>>,
    /// Threads for a sweep (each seed is independent).
    #[arg(long, default_value_t = default_jobs())]
    jobs: usize,
    /// Print every event and action as it happens (with --seed).
    #[arg(long, requires = "seed")]
    trace: bool,
    /// Write a space-time diagram of the run as SVG, or as a page if the file name
    /// ends in .html (with --seed).
    #[arg(long, value_name = "FILE.svg", requires = "seed")]
    timeline: Option<std::path::PathBuf>,
    /// Horizontal scale of the timeline.
    #[arg(long, default_value_t = 0.5)]
    timeline_px_per_ms: f64,
    /// Skip the persistence-contract checker, to see what the end-to-end checkers
    /// catch on their own.
    #[arg(long)]
    skip_durability_check: bool,
    /// Skip the disruption checker (a leader in contact with a quorum deposed although
    /// PreVote and CheckQuorum are on); depositions are still counted.
    #[arg(long)]
    skip_disruption_check: bool,
    /// Skip the efficiency budgets (probe round trips per catch-up, replication
    /// messages per committed entry); the costs are still reported.
    #[arg(long)]
    skip_budgets: bool,
    /// Run each seed twice and compare the trace digests.
    #[arg(long)]
    check_determinism: bool,
    /// Trace lines shown before a failure.
    #[arg(long, default_value_t = 60)]
    failure_context: usize,
    /// Pin the cluster size at the start: 1, 2, 3, 4, 5 or 7 voters (the swarm draws
    /// 3, 5 and 7 for most seeds, 1, 2 and 4 for some).
    #[arg(long, value_parser = parse_nodes)]
    nodes: Option<u32>,
    /// Pin message loss, percent.
    #[arg(long)]
    loss: Option<f64>,
    /// Pin message duplication, percent.
    #[arg(long)]
    duplicate: Option<f64>,
    /// Pin partitions on or off.
    #[arg(long)]
    partitions: Option<bool>,
    /// Pin crashes on or off.
    #[arg(long)]
    crashes: Option<bool>,
    /// Pin the number of clients.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    clients: Option<u32>,
    /// Pin the number of keys.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    keys: Option<u32>,
    /// Pin the fault phase length in milliseconds of virtual time.
    #[arg(long)]
    fault_phase_ms: Option<u32>,
    /// Pin compaction: snapshot every N applied entries (0: never).
    #[arg(long)]
    compact_every: Option<u64>,
    /// Pin PreVote on or off.
    #[arg(long)]
    pre_vote: Option<bool>,
    /// Pin CheckQuorum on or off.
    #[arg(long)]
    check_quorum: Option<bool>,
    /// Pin the clock drift bound, percent.
    #[arg(long)]
    drift: Option<f64>,
    /// Pin whether a minority stays down after the heal.
    #[arg(long)]
    minority_down: Option<bool>,
    /// Pin the mean time between crashes, ms (0: none).
    #[arg(long)]
    crash_every_ms: Option<u32>,
    /// Pin the mean time between partitions, ms (0: none).
    #[arg(long)]
    partition_every_ms: Option<u32>,
    /// Pin the most entries per AppendEntries.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    msg_entries_max: Option<u64>,
    /// Pin the most AppendEntries in flight per follower.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    inflight_msgs_max: Option<u64>,
    /// Pin membership changes on or off (on: spares join as learners, learners are
    /// promoted, voters and leaders removed during the fault phase).
    #[arg(long)]
    membership_changes: Option<bool>,
    /// Pin the mean time between membership changes, ms (0: none).
    #[arg(long)]
    membership_every_ms: Option<u32>,
    /// Pin held messages (sent over a cut link, delivered after it heals) and the
    /// very late tail (longer than an election timeout) on or off.
    #[arg(long)]
    late_messages: Option<bool>,
    /// Pin partial-connectivity partitions (a node that reaches only one other; nodes
    /// that cannot hear the leader) on or off.
    #[arg(long)]
    partial_connectivity: Option<bool>,
    /// Pin crashes aimed at a leader with appends its disk has not synced on or off.
    #[arg(long)]
    unsynced_leader_crashes: Option<bool>,
    /// Pin membership changes of two voters at once (3 to 5, 5 to 3, replacing two)
    /// on or off.
    #[arg(long)]
    two_voter_changes: Option<bool>,
    /// Pin small and even clusters (1, 2 or 4 voters) on or off; `--nodes` wins.
    #[arg(long)]
    small_clusters: Option<bool>,
    /// Pin local readers on or off (half the clients read through one node of their
    /// own, as an application reading from the replica on its machine).
    #[arg(long)]
    local_readers: Option<bool>,
    /// Pin lease reads on or off (on turns CheckQuorum on too, unless it is pinned
    /// off; the nodes' lease allows for the world's clock drift).
    #[arg(long)]
    read_lease: Option<bool>,
}

fn parse_nodes(text: &str) -> Result<u32, String> {
    let supported = NODES_SUPPORTED.map(|n| n.to_string()).join(", ");
    match text.trim().parse::<u32>() {
        Ok(n) if NODES_SUPPORTED.contains(&n) => Ok(n),
        Ok(n) => Err(format!(
            "{n} voters is not a supported cluster size (supported: {supported})"
        )),
        Err(e) => Err(format!("{e} (supported cluster sizes: {supported})")),
    }
}

fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn parse_range(text: &str) -> Result<Range<u64>, String> {
    let (start, end, inclusive) = if let Some((a, b)) = text.split_once("..=") {
        (a, b, true)
    } else if let Some((a, b)) = text.split_once("..") {
        (a, b, false)
    } else {
        return Err("expected A..B or A..=B".into());
    };
    let start: u64 = start.trim().parse().map_err(|e| format!("start: {e}"))?;
    let end: u64 = end.trim().parse().map_err(|e| format!("end: {e}"))?;
    let end = if inclusive { end + 1 } else { end };
    if end <= start {
        return Err(format!("empty range {text}"));
    }
    Ok(start..end)
}

impl Cli {
    fn checks(&self) -> Checks {
        Checks {
            durability: !self.skip_durability_check,
            disruption: !self.skip_disruption_check,
            budgets: !self.skip_budgets,
        }
    }

    fn pins(&self) -> Pins {
        Pins {
            nodes: self.nodes,
            loss_percent: self.loss,
            duplicate_percent: self.duplicate,
            partitions: self.partitions,
            crashes: self.crashes,
            clients: self.clients,
            keys: self.keys,
            fault_phase_ms: self.fault_phase_ms,
            compact_every: self.compact_every,
            pre_vote: self.pre_vote,
            check_quorum: self.check_quorum,
            drift_percent: self.drift,
            minority_stays_down: self.minority_down,
            crash_every_ms: self.crash_every_ms,
            partition_every_ms: self.partition_every_ms,
            msg_entries_max: self.msg_entries_max.map(|n| n as usize),
            inflight_msgs_max: self.inflight_msgs_max.map(|n| n as usize),
            membership_changes: self.membership_changes,
            membership_every_ms: self.membership_every_ms,
            late_messages: self.late_messages,
            partial_connectivity: self.partial_connectivity,
            unsynced_leader_crashes: self.unsynced_leader_crashes,
            two_voter_changes: self.two_voter_changes,
            small_clusters: self.small_clusters,
            read_lease: self.read_lease,
            local_readers: self.local_readers,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    install_quiet_panic_hook();
    let code = match (&cli.seed, &cli.seeds) {
        (Some(seed), _) => run_seed(&cli, *seed),
        (None, Some(range)) => run_sweep(&cli, range.clone()),
        (None, None) => {
            eprintln!("raft-sim: give --seed N or --seeds A..B (see --help)");
            2
        }
    };
    ExitCode::from(code as u8)
}

fn run_seed(cli: &Cli, seed: u64) -> i32 {
    let params = SimParams::draw(seed, &cli.pins());
    let options = RunOptions {
        checks: cli.checks(),
        trace: if cli.trace { Trace::Stdout } else { Trace::Off },
        timeline: cli.timeline.is_some(),
        plan: None,
    };
    let report = run(&params, options);
    println!("{report}");
    if let (Some(path), Some(timeline)) = (&cli.timeline, &report.timeline) {
        let title = format!("raft-sim seed {seed}: {:?}", report.verdict);
        let svg = timeline.to_svg(
            params.nodes_total(),
            report.end,
            cli.timeline_px_per_ms,
            &title,
        );
        // An .html file wraps the same SVG in a page (browsers scroll it comfortably).
        let is_html = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("html"));
        let contents = if is_html {
            format!(
                "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>raft-sim seed {seed}</title></head><body>\n{svg}</body></html>\n"
            )
        } else {
            svg
        };
        if let Err(e) = std::fs::write(path, contents) {
            eprintln!("raft-sim: cannot write {}: {e}", path.display());
        }
    }
    if report.verdict != Verdict::Pass && !cli.trace {
        // Replay the seed with a ring trace to show what led up to the failure.
        let replay = run(
            &params,
            RunOptions {
                checks: cli.checks(),
                trace: Trace::ring(cli.failure_context),
                ..RunOptions::default()
            },
        );
        println!(
            "last {} trace lines before the failure:",
            replay.trace_tail.len()
        );
        for line in &replay.trace_tail {
            println!("  {line}");
        }
        println!("replay: raft-sim --seed {seed} --trace");
    }
    if cli.check_determinism {
        let again = run(
            &params,
            RunOptions {
                checks: cli.checks(),
                ..RunOptions::default()
            },
        );
        if again.digest != report.digest || again.to_string() != report.to_string() {
            println!(
                "DETERMINISM FAILURE: seed {seed} gave digests {:016x} and {:016x}",
                report.digest, again.digest
            );
            return EXIT_DETERMINISM;
        }
        println!("determinism: two runs agree");
    }
    report.verdict.exit_code()
}

fn run_sweep(cli: &Cli, seeds: Range<u64>) -> i32 {
    let pins = cli.pins();
    let bar = ProgressBar::new(seeds.end - seeds.start);
    if std::io::stdout().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} seeds, {msg} [{elapsed} eta {eta}]")
                .expect("a valid template"),
        );
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let failed = std::sync::atomic::AtomicU64::new(0);
    let started = Instant::now();
    let report = sweep(seeds.clone(), cli.jobs, &pins, cli.checks(), &|result| {
        if result.verdict != Verdict::Pass {
            failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        bar.set_message(format!(
            "{} failing",
            failed.load(std::sync::atomic::Ordering::Relaxed)
        ));
        bar.inc(1);
    });
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    print!("{report}");
    let seeds_count = (seeds.end - seeds.start) as f64;
    eprintln!(
        "speed: {:.2}s wall on {} jobs, {:.0} events/s, {:.2}s per 1000 seeds",
        elapsed,
        cli.jobs,
        report.events() as f64 / elapsed.max(1e-9),
        elapsed / seeds_count * 1000.0
    );
    let mut code = report.exit_code();
    if cli.check_determinism {
        for result in &report.results {
            let again = run_one(result.seed, &pins, cli.checks());
            if again.digest != result.digest {
                println!("DETERMINISM FAILURE: seed {}", result.seed);
                code = EXIT_DETERMINISM;
            }
        }
    }
    code
}
