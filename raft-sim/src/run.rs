//! One run from start to verdict: build the world, run it, check the history and the
//! final states, and summarize it all in a [`RunReport`].

use std::cell::RefCell;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};

use crate::checkers::{Violation, ViolationKind};
use crate::coverage::Coverage;
use crate::efficiency::EfficiencyReport;
use crate::history::HistoryCounts;
use crate::linearizability::kv::check_kv;
use crate::linearizability::CheckOutcome;
use crate::params::{SimParams, TICK_US};
use crate::time::SimTime;
use crate::timeline::Timeline;
use crate::world::{RunOptions, World};

/// The most search steps the linearizability checker spends on one key.
pub const LINEARIZABILITY_STEPS_MAX: u64 = 5_000_000;

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every check passed.
    Pass,
    /// A safety property broke (including linearizability and core panics).
    Safety(Violation),
    /// The cluster did not recover after the heal.
    Liveness(String),
    /// Every promise held, but replication cost more than its budget (see
    /// [`crate::efficiency`]).
    OverBudget(String),
}

impl Verdict {
    /// The process exit code for this verdict (see the README).
    pub fn exit_code(&self) -> i32 {
        match self {
            Verdict::Pass => 0,
            Verdict::Safety(_) => EXIT_SAFETY,
            Verdict::Liveness(_) => EXIT_LIVENESS,
            Verdict::OverBudget(_) => EXIT_BUDGET,
        }
    }
}

/// Exit code: a safety violation.
pub const EXIT_SAFETY: i32 = 3;
/// Exit code: a liveness failure.
pub const EXIT_LIVENESS: i32 = 4;
/// Exit code: two runs of one seed differed.
pub const EXIT_DETERMINISM: i32 = 5;
/// Exit code: a sweep never exercised some fault class.
pub const EXIT_COVERAGE: i32 = 6;
/// Exit code: a run broke an efficiency budget (and nothing else).
pub const EXIT_BUDGET: i32 = 7;

/// Everything a run tells.
#[derive(Debug)]
pub struct RunReport {
    /// The world simulated.
    pub params: SimParams,
    /// The fault plan, one line per fault.
    pub plan: Vec<String>,
    /// What happened.
    pub coverage: Coverage,
    /// Operations by outcome.
    pub history: HistoryCounts,
    /// Keys and operations the linearizability checker examined, and how many keys
    /// it could not decide within its bound.
    pub linearizability: (usize, usize, usize),
    /// Events processed.
    pub events: u64,
    /// Virtual time at the end.
    pub end: SimTime,
    /// Ticks from the heal to the first leader, and to the last client operation.
    pub recovery_ticks: (Option<u64>, Option<u64>),
    /// What replication cost.
    pub efficiency: EfficiencyReport,
    /// The verdict.
    pub verdict: Verdict,
    /// The digest of the whole event trace.
    pub digest: u64,
    /// The trace lines kept by a ring trace (the lead-up to a failure).
    pub trace_tail: Vec<String>,
    /// The timeline, if one was recorded.
    pub timeline: Option<Timeline>,
}

thread_local! {
    static PANIC_MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs a panic hook that records a panic's message and location for the run
/// that caught it, instead of printing it: a panic in the core is a finding, reported
/// like any violation. Call once per process (the CLI does).
pub fn install_quiet_panic_hook() {
    panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into());
        let location = info.location().map_or("unknown location".into(), |l| {
            format!("{}:{}", l.file(), l.line())
        });
        // One line: the location first, then the message with newlines folded.
        let message = message.replace('\n', " ");
        PANIC_MESSAGE.with(|m| *m.borrow_mut() = Some(format!("{location}: {message}")));
    }));
}

/// Runs the world of `params` and checks everything.
pub fn run(params: &SimParams, options: RunOptions) -> RunReport {
    let mut world = World::new(params.clone(), options);
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| world.run()));
    if let Err(payload) = outcome {
        // The hook's message has the location; without the hook, use the payload.
        let message = PANIC_MESSAGE
            .with(|m| m.borrow_mut().take())
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into());
        let at = world.env.sched.now();
        world.env.violation.get_or_insert(Violation {
            kind: ViolationKind::Panic,
            at,
            node: None,
            detail: message,
        });
    }
    finish(world)
}

fn finish(mut world: World) -> RunReport {
    let mut verdict = match (&world.env.violation, &world.liveness_failure) {
        (Some(v), _) => Verdict::Safety(v.clone()),
        (None, Some(reason)) => Verdict::Liveness(reason.clone()),
        (None, None) if world.healed_at.is_none() => {
            Verdict::Liveness("the run ended before the fault phase did".into())
        }
        (None, None) => match starvation(&world.env.coverage) {
            Some(reason) => Verdict::Liveness(reason),
            None => Verdict::Pass,
        },
    };
    let ops = world.history.to_keyed_operations();
    let verdicts = check_kv(&ops, LINEARIZABILITY_STEPS_MAX);
    let inconclusive = verdicts
        .iter()
        .filter(|v| matches!(v.outcome, CheckOutcome::Inconclusive { .. }))
        .count();
    if !matches!(verdict, Verdict::Safety(_)) {
        if let Some(v) = linearizability_violation(&world, &verdicts) {
            verdict = Verdict::Safety(v);
        } else if let Some(v) = divergence(&world) {
            verdict = Verdict::Safety(v);
        }
    }
    let end = world.env.sched.now();
    let ticks_since = |t: Option<SimTime>| {
        t.zip(world.healed_at)
            .map(|(t, healed)| t.since_us(healed) / TICK_US)
    };
    let recovery_ticks = (ticks_since(world.leader_at), ticks_since(world.ops_done_at));
    let net = world.env.net.counters;
    let c = &mut world.env.coverage;
    c.msgs_sent = net.sent;
    c.msgs_dropped_partition = net.dropped_partition;
    c.msgs_dropped_loss = net.dropped_loss;
    c.msgs_duplicated = net.duplicated;
    c.msgs_delayed_tail = net.delayed_tail;
    c.msgs_held = net.held;
    c.msgs_held_released = net.held_released;
    c.msgs_delayed_late = net.delayed_late;
    let cost = &world.env.cost;
    let efficiency = EfficiencyReport {
        catch_ups: cost.catch_ups,
        probe_round_trips: cost.round_trips,
        probe_round_trips_max: cost.round_trips_max,
        msgs_sent: net.sent,
        replication_msgs_sent: cost.replication_msgs,
        entries_committed: world.env.commits.committed_len(),
    };
    if verdict == Verdict::Pass && world.env.checks.budgets {
        if let Some(reason) = efficiency.over_budget() {
            verdict = Verdict::OverBudget(reason);
        }
    }
    for op in world.history.ops() {
        world.env.digest.write_u64(op.call);
        world.env.digest.write_u64(op.ret.unwrap_or(0));
    }
    RunReport {
        plan: world.plan.faults.iter().map(|f| f.to_string()).collect(),
        params: world.env.params.clone(),
        coverage: world.env.coverage,
        efficiency,
        history: world.history.counts(),
        linearizability: (verdicts.len(), ops.len(), inconclusive),
        events: world.events,
        end,
        recovery_ticks,
        verdict,
        digest: world.env.digest.value(),
        trace_tail: world.env.trace.kept(),
        timeline: world.env.timeline.take(),
    }
}

/// The fewest operations in stable reigns for the starvation check to judge a run.
pub const STABLE_OPS_MIN: u64 = 20;

/// The largest share of the operations run inside stable reigns that may fail, in
/// percent. Measured across the sweep matrix of the README: the worst run starves
/// 4% (a client that last heard from a leader that crashed since, and whose one
/// attempt goes there); the routing it replaced starved most of a run's operations.
pub const STARVED_OPS_PERCENT_MAX: u64 = 25;

/// A liveness failure of the clients' routing: too many operations failed although
/// a leader was in contact with a quorum from before they started to their end.
fn starvation(c: &Coverage) -> Option<String> {
    let (starved, stable) = (c.client_ops_starved, c.client_ops_in_stable_reigns);
    if stable < STABLE_OPS_MIN || starved * 100 <= stable * STARVED_OPS_PERCENT_MAX {
        return None;
    }
    Some(format!(
        "clients starved: {starved} of the {stable} operations run while a leader was in contact with a quorum failed (more than {STARVED_OPS_PERCENT_MAX}%)"
    ))
}

fn linearizability_violation(
    world: &World,
    verdicts: &[crate::linearizability::kv::KeyVerdict],
) -> Option<Violation> {
    let bad = verdicts
        .iter()
        .find(|v| matches!(v.outcome, CheckOutcome::NotLinearizable { .. }))?;
    let CheckOutcome::NotLinearizable { blocked_op, depth } = bad.outcome else {
        unreachable!()
    };
    let op = &bad.ops[blocked_op];
    // Find the recorded operation for its virtual times.
    let recorded = world
        .history
        .ops()
        .iter()
        .find(|r| r.call == op.call)
        .expect("every checked operation was recorded");
    Some(Violation {
        kind: ViolationKind::Linearizability,
        at: recorded.returned_at.unwrap_or(recorded.called_at),
        node: None,
        detail: format!(
            "key {:?} ({} ops): no valid order places client {}'s {:?} -> {:?} (called {}, returned {}) after {depth} ops",
            bad.key,
            bad.ops.len(),
            op.client,
            op.input,
            op.ret.as_ref().map(|(_, o)| o),
            recorded.called_at,
            recorded.returned_at.map_or("never".into(), |t| t.to_string()),
        ),
    })
}

/// Running nodes that applied through the same index must hold the same state.
fn divergence(world: &World) -> Option<Violation> {
    let mut by_index: std::collections::BTreeMap<u64, (raft_core::NodeId, Vec<u8>)> =
        std::collections::BTreeMap::new();
    for host in world.hosts.iter().filter(|h| h.is_up()) {
        let index = host.kv.applied_index();
        let state = host.kv.snapshot();
        match by_index.get(&index) {
            Some((other, other_state)) if *other_state != state => {
                return Some(Violation {
                    kind: ViolationKind::Divergence,
                    at: world.env.sched.now(),
                    node: Some(host.id),
                    detail: format!(
                        "{} and {other} applied through i{index} but hold different states",
                        host.id
                    ),
                });
            }
            Some(_) => {}
            None => {
                by_index.insert(index, (host.id, state));
            }
        }
    }
    None
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (p, c, h) = (&self.params, &self.coverage, &self.history);
        writeln!(f, "raft-sim seed {}", p.seed)?;
        writeln!(f, "{p}")?;
        let count = |word: &str| self.plan.iter().filter(|l| l.contains(word)).count();
        let (partitions, crashes, changes) = (
            count(" partition "),
            count(" crash "),
            count(" membership "),
        );
        writeln!(
            f,
            "plan:     {} faults ({partitions} partitions, {crashes} crashes, {changes} membership changes)",
            self.plan.len()
        )?;
        writeln!(
            f,
            "run:      {} events, virtual {}, ops: {} writes ok, {} reads ok, {} failed, {} unknown",
            self.events, self.end, h.writes_ok, h.reads_ok, h.failed, h.unknown
        )?;
        writeln!(f, "coverage:\n{c}")?;
        let e = &self.efficiency;
        writeln!(
            f,
            "cost:     {} catch-ups, {} probe round trips (at most {} in one); per committed entry {} replication messages, {} in all ({} and {} / {})",
            e.catch_ups,
            e.probe_round_trips,
            e.probe_round_trips_max,
            e.replication_msgs_per_committed_entry(),
            e.msgs_per_committed_entry(),
            e.replication_msgs_sent,
            e.msgs_sent,
            e.entries_committed
        )?;
        let (keys, ops, inconclusive) = self.linearizability;
        writeln!(
            f,
            "checks:   linearizability over {keys} keys, {ops} ops ({inconclusive} inconclusive)"
        )?;
        let ticks = |t: Option<u64>| t.map_or("-".to_string(), |t| format!("{t} ticks"));
        writeln!(
            f,
            "recovery: leader after {}, all operations done after {}",
            ticks(self.recovery_ticks.0),
            ticks(self.recovery_ticks.1)
        )?;
        match &self.verdict {
            Verdict::Pass => writeln!(f, "result:   PASS")?,
            Verdict::Safety(v) => writeln!(f, "result:   SAFETY VIOLATION {v}")?,
            Verdict::Liveness(reason) => writeln!(f, "result:   LIVENESS FAILURE {reason}")?,
            Verdict::OverBudget(reason) => writeln!(f, "result:   OVER BUDGET {reason}")?,
        }
        write!(f, "digest:   {:016x}", self.digest)
    }
}
