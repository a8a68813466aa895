//! raft-core benchmarks, run the same way as other Raft libraries' cores so that the
//! numbers compare: `cargo bench -p raft-core` (or `-- cluster|follower|election`).
//!
//! 1. cluster: 3 nodes in one thread, messages delivered by function calls (no
//!    encoding), every persistence reported at once, 64-byte commands, N proposals
//!    kept in flight; commits/s, latency p50/p99 and messages per committed entry.
//! 2. follower: one AppendEntries with one 64-byte entry stepped on a follower,
//!    including its actions (the persistence report and the answer).
//! 3. election: from a campaign to a leader whose no-op is committed.
// The wall clock is what a benchmark measures; the core itself never reads it.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use raft_core::{
    Action, Config, Entry, EntryPayload, Event, LogIndex, Message, MessageBody, NodeId, PersistSeq,
    Proposal, ProposalId, RaftNode, Restored, RoleKind, SharedBytes, Term,
};

const COMMAND_BYTES: usize = 64;

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    // An argument selects benchmarks by name, segment by segment: `cluster` selects
    // every cluster configuration, `cluster/3/1` just one.
    let wants = |name: &str| {
        filter.is_empty()
            || filter
                .iter()
                .any(|f| f.split('/').zip(name.split('/')).all(|(a, b)| a == b))
    };
    let quick = std::env::var_os("RAFT_BENCH_QUICK").is_some();
    let run_for = if quick {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(2)
    };
    if wants("cluster") {
        println!(
            "cluster: {COMMAND_BYTES}-byte commands, persistence reported at once, no encoding"
        );
        println!(
            "{:>6} {:>9} {:>14} {:>10} {:>10} {:>12}",
            "nodes", "inflight", "commits/s", "p50 us", "p99 us", "msgs/entry"
        );
        for (nodes, inflight) in [(3, 1), (3, 64), (3, 256), (3, 1024), (5, 1)] {
            // Each configuration is also selectable alone: `cluster/3/1024`.
            if !wants(&format!("cluster/{nodes}/{inflight}")) {
                continue;
            }
            let r = bench_cluster(nodes, inflight, run_for);
            println!(
                "{:>6} {:>9} {:>14.0} {:>10.2} {:>10.2} {:>12.2}",
                nodes,
                inflight,
                r.commits_per_sec,
                r.latency_us_p50,
                r.latency_us_p99,
                r.msgs_per_entry
            );
        }
    }
    if wants("follower") {
        let appends = if quick { 200_000 } else { 2_000_000 };
        let ns = bench_follower_append(appends);
        println!("follower: {ns:.1} ns per AppendEntries of one {COMMAND_BYTES}-byte entry (step + persist report + answer), {appends} appends");
    }
    if wants("election") {
        let rounds = if quick { 2_000 } else { 20_000 };
        for nodes in [3, 5] {
            let us = bench_election(nodes, rounds);
            println!("election: {nodes} nodes, {us:.2} us from campaign to committed no-op ({rounds} elections)");
        }
    }
}

/// A cluster whose messages are delivered by function calls.
struct Cluster {
    nodes: Vec<RaftNode>,
    queue: VecDeque<Message>,
    actions: Vec<Action>,
    messages: u64,
}

fn node_config(id: u64, nodes: u64) -> Config {
    let mut config = Config::new(NodeId(id), (1..=nodes).map(NodeId));
    config.seed = 7;
    config
}

impl Cluster {
    fn new(nodes: u64) -> Cluster {
        let nodes = (1..=nodes)
            .map(|id| RaftNode::new(node_config(id, nodes), Restored::default()).unwrap())
            .collect();
        Cluster {
            nodes,
            queue: VecDeque::new(),
            actions: Vec::new(),
            messages: 0,
        }
    }

    /// Steps node `index` and carries out its actions: persistence is reported at
    /// once, sends are queued, everything else goes to `on_action`.
    fn step(&mut self, index: usize, event: Event, on_action: &mut impl FnMut(&Action)) {
        let mut actions = std::mem::take(&mut self.actions);
        self.nodes[index].step_into(event, &mut actions);
        loop {
            let mut through = None;
            for action in actions.drain(..) {
                match action {
                    Action::Send(message) => {
                        self.messages += 1;
                        self.queue.push_back(message);
                    }
                    Action::PersistHardState { seq, .. }
                    | Action::AppendToLog { seq, .. }
                    | Action::PersistSnapshot { seq, .. } => through = Some(seq),
                    other => on_action(&other),
                }
            }
            let Some(through) = through else { break };
            self.nodes[index].step_into(Event::Persisted { through }, &mut actions);
        }
        self.actions = actions;
    }

    /// Delivers the messages queued now (new ones wait for the next round).
    fn deliver_round(&mut self, on_action: &mut impl FnMut(&Action)) {
        for _ in 0..self.queue.len() {
            let message = self.queue.pop_front().unwrap();
            let to = (message.to.0 - 1) as usize;
            self.step(to, Event::Message(message), on_action);
        }
    }

    fn elect_first(&mut self) {
        let mut ignore = |_: &Action| {};
        for _ in 0..100 {
            if self.nodes[0].role() == RoleKind::Leader {
                break;
            }
            self.step(0, Event::Tick, &mut ignore);
            self.deliver_round(&mut ignore);
            self.deliver_round(&mut ignore);
        }
        while !self.queue.is_empty() {
            self.deliver_round(&mut ignore);
        }
        assert_eq!(self.nodes[0].role(), RoleKind::Leader);
    }
}

struct ClusterResult {
    commits_per_sec: f64,
    latency_us_p50: f64,
    latency_us_p99: f64,
    msgs_per_entry: f64,
}

fn bench_cluster(nodes: u64, inflight: usize, run_for: Duration) -> ClusterResult {
    let mut cluster = Cluster::new(nodes);
    cluster.elect_first();
    let command = SharedBytes::from(vec![7u8; COMMAND_BYTES]);
    // Proposal ids are handed out in order, so the start times are a ring buffer.
    let mut started: VecDeque<Instant> = VecDeque::with_capacity(inflight);
    let mut next_id = 0u64;
    let mut latencies_ns: Vec<u64> = Vec::with_capacity(1 << 20);
    let mut commits = 0u64;
    let messages_before = cluster.messages;
    let start = Instant::now();
    let mut batch = Vec::with_capacity(inflight);
    while start.elapsed() < run_for {
        // One event-loop iteration: top up the proposals in flight, then deliver.
        // Proposals submitted together share their start time.
        let now = Instant::now();
        while started.len() < inflight {
            next_id += 1;
            batch.push(Proposal {
                id: ProposalId(next_id),
                command: command.clone(),
            });
            started.push_back(now);
        }
        if !batch.is_empty() {
            let event = Event::Propose(std::mem::take(&mut batch));
            cluster.step(0, event, &mut |a| {
                record_commit(a, &mut started, &mut latencies_ns, &mut commits)
            });
        }
        cluster.deliver_round(&mut |a| {
            record_commit(a, &mut started, &mut latencies_ns, &mut commits)
        });
    }
    let elapsed = start.elapsed();
    latencies_ns.sort_unstable();
    let percentile =
        |p: f64| latencies_ns[((latencies_ns.len() - 1) as f64 * p) as usize] as f64 / 1000.0;
    ClusterResult {
        commits_per_sec: commits as f64 / elapsed.as_secs_f64(),
        latency_us_p50: percentile(0.50),
        latency_us_p99: percentile(0.99),
        msgs_per_entry: (cluster.messages - messages_before) as f64 / commits as f64,
    }
}

fn record_commit(
    action: &Action,
    started: &mut VecDeque<Instant>,
    latencies_ns: &mut Vec<u64>,
    commits: &mut u64,
) {
    if let Action::ProposalCommitted { .. } = action {
        let t0 = started.pop_front().expect("commits come in proposal order");
        latencies_ns.push(t0.elapsed().as_nanos() as u64);
        *commits += 1;
    }
}

fn bench_follower_append(appends: u64) -> f64 {
    let mut follower = RaftNode::new(node_config(2, 3), Restored::default()).unwrap();
    let payload = SharedBytes::from(vec![7u8; COMMAND_BYTES]);
    let mut actions = Vec::new();
    let mut answers = 0u64;
    let start = Instant::now();
    for i in 1..=appends {
        let message = Message {
            from: NodeId(1),
            to: NodeId(2),
            term: Term(1),
            body: MessageBody::AppendEntries {
                prev_log_index: LogIndex(i - 1),
                prev_log_term: Term(if i == 1 { 0 } else { 1 }),
                entries: vec![Entry {
                    term: Term(1),
                    index: LogIndex(i),
                    payload: EntryPayload::Command(payload.clone()),
                }],
                leader_commit: LogIndex(i - 1),
            },
        };
        follower.step_into(Event::Message(message), &mut actions);
        let mut through = PersistSeq(0);
        for action in actions.drain(..) {
            match action {
                Action::AppendToLog { seq, .. } | Action::PersistHardState { seq, .. } => {
                    through = seq
                }
                Action::Send(_) => answers += 1,
                _ => {}
            }
        }
        follower.step_into(Event::Persisted { through }, &mut actions);
        for action in actions.drain(..) {
            if let Action::Send(_) = action {
                answers += 1;
            }
        }
    }
    let elapsed = start.elapsed();
    assert_eq!(answers, appends, "every append is answered");
    elapsed.as_nanos() as f64 / appends as f64
}

fn bench_election(nodes: u64, rounds: u32) -> f64 {
    let mut total = Duration::ZERO;
    let mut ignore = |_: &Action| {};
    for _ in 0..rounds {
        let mut cluster = Cluster::new(nodes);
        // Bring node 1 to the brink of its timeout outside the measurement.
        let timeout_max = cluster.nodes[0].config().election_timeout_ticks_max;
        let mut ticks = 0;
        let t0 = loop {
            let t0 = Instant::now();
            cluster.step(0, Event::Tick, &mut ignore);
            ticks += 1;
            if cluster.nodes[0].role() != RoleKind::Follower {
                break t0;
            }
            assert!(ticks <= timeout_max);
        };
        while cluster.nodes[0].commit_index() < LogIndex(1) {
            cluster.deliver_round(&mut ignore);
        }
        total += t0.elapsed();
        assert_eq!(cluster.nodes[0].role(), RoleKind::Leader);
    }
    total.as_secs_f64() * 1e6 / f64::from(rounds)
}
