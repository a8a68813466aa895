//! Many seeds at once: each seed is an independent run, so `jobs` threads take seeds
//! from a shared counter; results are sorted by seed so the summary does not depend
//! on scheduling.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::coverage::Coverage;
use crate::params::{Pins, SimParams};
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

impl fmt::Display for SweepReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.results.len();
        let failures = self.failures();
        let safety = failures
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Safety(_)))
            .count();
        let liveness = failures.len() - safety;
        writeln!(f, "seeds     nodes=3  nodes=5  nodes=7  events       ops")?;
        let by_size = |n: u32| self.results.iter().filter(|r| r.nodes_count == n).count();
        let ops: u64 = self.results.iter().map(|r| r.ops).sum();
        writeln!(
            f,
            "{total:<9} {:<8} {:<8} {:<8} {:<12} {ops}",
            by_size(3),
            by_size(5),
            by_size(7),
            self.events()
        )?;
        writeln!(
            f,
            "passed {} | safety failures {safety} | liveness failures {liveness}",
            total - failures.len()
        )?;
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
                    Verdict::Pass => unreachable!(),
                };
                writeln!(f, "  {:>8}  {what}", r.seed)?;
            }
        }
        Ok(())
    }
}
