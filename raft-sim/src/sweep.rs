//! Many seeds at once: each seed is an independent run, so `jobs` threads take seeds
//! from a shared counter; results are sorted by seed so the summary does not depend
//! on scheduling.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::coverage::Coverage;
use crate::efficiency::{EfficiencyReport, COMMITTED_ENTRIES_MIN};
use crate::params::{Pins, SimParams, NODES_SUPPORTED};
use crate::run::{run, Verdict, EXIT_COVERAGE};
use crate::world::{Checks, RunOptions};

/// The outcome of one seed of a sweep.
#[derive(Clone, Debug)]
pub struct SeedResult {
    /// The seed.
    pub seed: u64,
    /// Cluster size drawn.
    pub nodes_count: u32,
    /// The verdict.
    pub verdict: Verdict,
    /// What happened.
    pub coverage: Coverage,
    /// Events processed.
    pub events: u64,
    /// Client operations recorded.
    pub ops: u64,
    /// Client operations that failed or whose outcome is unknown.
    pub ops_not_ok: u64,
    /// What replication cost.
    pub efficiency: EfficiencyReport,
    /// The trace digest.
    pub digest: u64,
}

/// The outcome of a sweep.
#[derive(Clone, Debug, Default)]
pub struct SweepReport {
    /// One result per seed, by seed.
    pub results: Vec<SeedResult>,
    /// Coverage summed over every seed.
    pub coverage: Coverage,
}

/// Runs every seed in `seeds` on `jobs` threads with the `checks` chosen;
/// `on_done` is called after each (from the worker thread), for progress.
pub fn sweep(
    seeds: Range<u64>,
    jobs: usize,
    pins: &Pins,
    checks: Checks,
    on_done: &(dyn Fn(&SeedResult) + Sync),
) -> SweepReport {
    let next = AtomicU64::new(seeds.start);
    let results = Mutex::new(Vec::with_capacity((seeds.end - seeds.start) as usize));
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= seeds.end {
                    break;
                }
                let result = run_one(seed, pins, checks);
                on_done(&result);
                results
                    .lock()
                    .expect("no worker panics holding it")
                    .push(result);
            });
        }
    });
    let mut results = results.into_inner().expect("workers are done");
    results.sort_by_key(|r| r.seed);
    let mut coverage = Coverage::default();
    for r in &results {
        coverage.add(&r.coverage);
    }
    SweepReport { results, coverage }
}

/// Runs one seed of a sweep.
pub fn run_one(seed: u64, pins: &Pins, checks: Checks) -> SeedResult {
    let params = SimParams::draw(seed, pins);
    let options = RunOptions {
        checks,
        ..RunOptions::default()
    };
    let report = run(&params, options);
    let h = report.history;
    SeedResult {
        seed,
        nodes_count: params.nodes_count,
        verdict: report.verdict,
        coverage: report.coverage,
        events: report.events,
        ops: h.reads_ok + h.writes_ok + h.failed + h.unknown,
        ops_not_ok: h.failed + h.unknown,
        efficiency: report.efficiency,
        digest: report.digest,
    }
}

impl SweepReport {
    /// The failing seeds.
    pub fn failures(&self) -> Vec<&SeedResult> {
        self.results
            .iter()
            .filter(|r| r.verdict != Verdict::Pass)
            .collect()
    }

    /// Events processed over all seeds.
    pub fn events(&self) -> u64 {
        self.results.iter().map(|r| r.events).sum()
    }

    /// The process exit code: the most serious failure's (safety, then liveness),
    /// then a coverage gap, else 0.
    pub fn exit_code(&self) -> i32 {
        let worst = self
            .results
            .iter()
            .map(|r| r.verdict.exit_code())
            .filter(|c| *c != 0)
            .min();
        match worst {
            Some(code) => code,
            None if !self.coverage.fault_gaps().is_empty() => EXIT_COVERAGE,
            None => 0,
        }
    }
}

impl SweepReport {
    /// The distributions behind the efficiency budgets and the clients' failures:
    /// the worst catch-up, messages per committed entry (median, 99th percentile and
    /// worst, over the runs the budget judges), and the share of client operations
    /// that did not succeed (overall and in the worst run).
    pub fn cost_summary(&self) -> String {
        let trips_max = self
            .results
            .iter()
            .map(|r| r.efficiency.probe_round_trips_max)
            .max()
            .unwrap_or(0);
        let (catch_ups, trips) = self.results.iter().fold((0, 0), |(c, t), r| {
            (
                c + r.efficiency.catch_ups,
                t + r.efficiency.probe_round_trips,
            )
        });
        let mut per_entry: Vec<u64> = self
            .results
            .iter()
            .filter(|r| r.efficiency.entries_committed >= COMMITTED_ENTRIES_MIN)
            .map(|r| r.efficiency.replication_msgs_per_committed_entry())
            .collect();
        per_entry.sort_unstable();
        let at = |q: f64| {
            per_entry
                .get(((per_entry.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or(0)
        };
        let ops: u64 = self.results.iter().map(|r| r.ops).sum();
        let not_ok: u64 = self.results.iter().map(|r| r.ops_not_ok).sum();
        let worst = self
            .results
            .iter()
            .filter(|r| r.ops > 0)
            .map(|r| (r.ops_not_ok * 1_000 / r.ops, r.seed))
            .max();
        let starved_worst = self
            .results
            .iter()
            .map(|r| (r.coverage.client_ops_starved, r.seed))
            .max()
            .filter(|(count, _)| *count > 0);
        let c = &self.coverage;
        format!(
            "cost: {catch_ups} catch-ups, {trips} probe round trips, at most {trips_max} in one | replication messages per committed entry p50 {} p99 {} max {} | client ops not ok {:.1}% (worst run: {}); starved in stable reigns {} of {} (worst run: {})",
            at(0.5),
            at(0.99),
            at(1.0),
            not_ok as f64 * 100.0 / ops.max(1) as f64,
            worst.map_or("-".into(), |(per_mille, seed)| format!(
                "{:.1}% in seed {seed}",
                per_mille as f64 / 10.0
            )),
            c.client_ops_starved,
            c.client_ops_in_stable_reigns,
            starved_worst.map_or("-".into(), |(count, seed)| format!("{count} in seed {seed}")),
        )
    }
}

impl fmt::Display for SweepReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.results.len();
        let failures = self.failures();
        let safety = failures
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Safety(_)))
            .count();
        let budget = failures
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::OverBudget(_)))
            .count();
        let liveness = failures.len() - safety - budget;
        let by_size = |n: u32| self.results.iter().filter(|r| r.nodes_count == n).count();
        let sizes: Vec<String> = NODES_SUPPORTED
            .iter()
            .map(|n| format!("{n}:{}", by_size(*n)))
            .collect();
        let ops: u64 = self.results.iter().map(|r| r.ops).sum();
        writeln!(
            f,
            "seeds {total} (by cluster size {}), {} events, {ops} client ops",
            sizes.join(" "),
            self.events()
        )?;
        writeln!(
            f,
            "passed {} | safety failures {safety} | liveness failures {liveness} | over budget {budget}",
            total - failures.len()
        )?;
        writeln!(f, "{}", self.cost_summary())?;
        writeln!(f, "coverage (all seeds):\n{}", self.coverage)?;
        let gaps = self.coverage.fault_gaps();
        if !gaps.is_empty() {
            writeln!(f, "FAULT CLASSES NEVER EXERCISED: {}", gaps.join(", "))?;
        }
        let paths = self.coverage.path_gaps();
        if !paths.is_empty() {
            writeln!(f, "never seen (informational): {}", paths.join(", "))?;
        }
        if !failures.is_empty() {
            writeln!(f, "failing seeds (replay with --seed N --trace):")?;
            for r in failures {
                let what = match &r.verdict {
                    Verdict::Safety(v) => format!("safety: {v}"),
                    Verdict::Liveness(reason) => format!("liveness: {reason}"),
                    Verdict::OverBudget(reason) => format!("over budget: {reason}"),
                    Verdict::Pass => unreachable!(),
                };
                writeln!(f, "  {:>8}  {what}", r.seed)?;
            }
        }
        Ok(())
    }
}
