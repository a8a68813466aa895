//! Linearizability of what clients saw, checked by raft-sim's checker: concurrent
//! clients put and get a few keys on a real cluster while a nemesis kills leaders
//! (and, where network namespaces are available, cuts them off), or replaces a node
//! (adds a fourth, removes a founder), then the recorded history is searched for a
//! linearization, key by key.
//!
//! Half the clients speak HTTP (the event-loop front end, whose reads share
//! barriers), half the text protocol. Writes carry request ids and are retried (to the leader a node names, or the next
//! node) under the same id until acknowledged, so each is applied at most once; one
//! never acknowledged is recorded with an unknown outcome. A read that fails has no
//! effect and is left out.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kv_example::client::{Answer, TextClient};
use kv_example::layout::{Layout, NodeOptions, NodeSpec};
use raft_sim::linearizability::kv::{check_kv, KeyedOperation, KvInput, KvOutput};
use raft_sim::linearizability::{CheckOutcome, Operation};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use support::netns::NetLab;
use support::{http, Cluster};

const KEYS: [&str; 3] = ["a", "b", "c"];
const CLIENTS: u64 = 4;
/// How long the clients run while the nemesis works (the soaks: `KV_SOAK_SECS`).
const RUN: Duration = Duration::from_secs(8);
/// How long a write that started before the end may keep retrying.
const WRITE_GRACE: Duration = Duration::from_secs(10);
/// A bound on one write's attempts.
const WRITE_ATTEMPTS_MAX: u32 = 200;
/// The most search steps per key before the checker gives up.
const CHECK_STEPS_MAX: u64 = 20_000_000;
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Keys change every this often, so that no key's history outgrows the checker's
/// search in a long soak (linearizability is per key).
const KEY_GENERATION: Duration = Duration::from_secs(30);

/// Every node's text-protocol and HTTP addresses, in id order.
type Addrs = (Vec<String>, Vec<String>);

/// The shared logical clock and the history.
struct Recorder {
    clock: AtomicU64,
    ops: Mutex<Vec<KeyedOperation>>,
}

impl Recorder {
    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::SeqCst)
    }
}

/// What a node answered.
enum Reply {
    /// The write is applied.
    Appended,
    /// Ask this node (an index into the nodes) instead.
    Redirect(usize),
    /// The value read (`None`: the key holds none).
    Value(Option<String>),
    /// No answer, or one that says nothing about the operation.
    Failed,
}

/// How a client reaches the nodes: the text protocol (one connection per node,
/// reopened after a failure), or HTTP (the event-loop front end; a connection per
/// request, as curl makes).
struct Conns {
    addrs: Vec<String>,
    http_addrs: Vec<String>,
    open: Vec<Option<TextClient>>,
    http: bool,
}

impl Conns {
    fn request(&mut self, node: usize, line: &str) -> Option<Answer> {
        if self.open[node].is_none() {
            self.open[node] = TextClient::connect(&self.addrs[node], CLIENT_TIMEOUT).ok();
        }
        let answer = self.open[node].as_mut()?.request(line).ok();
        if answer.is_none() {
            self.open[node] = None;
        }
        answer
    }

    fn put(&mut self, node: usize, client: u64, seq: u64, key: &str, value: &str) -> Reply {
        if self.http {
            let headers = [
                ("X-Client-Id", client.to_string()),
                ("X-Request-Seq", seq.to_string()),
            ];
            let target = format!("/kv/{key}");
            let addr = &self.http_addrs[node];
            let Ok(response) =
                http::request_with_headers(addr, "PUT", &target, &headers, Some(value))
            else {
                return Reply::Failed;
            };
            return match response.status {
                200 => Reply::Appended,
                307 => response
                    .header("location")
                    .and_then(|l| l.split('/').nth(2))
                    .and_then(|host| self.http_addrs.iter().position(|a| a == host))
                    .map_or(Reply::Failed, Reply::Redirect),
                _ => Reply::Failed,
            };
        }
        match self.request(node, &format!("put --req {client}:{seq} {key} {value}")) {
            Some(answer) if answer.appended_index().is_some() => Reply::Appended,
            Some(answer) => answer
                .leader_redirect()
                .and_then(|addr| self.addrs.iter().position(|a| a == addr))
                .map_or(Reply::Failed, Reply::Redirect),
            None => Reply::Failed,
        }
    }

    fn get(&mut self, node: usize, key: &str) -> Reply {
        if self.http {
            let target = format!("/kv/{key}");
            return match http::request(&self.http_addrs[node], "GET", &target, None) {
                Ok(r) if r.status == 200 => Reply::Value(Some(r.body.trim_end().to_string())),
                Ok(r) if r.status == 404 => Reply::Value(None),
                _ => Reply::Failed,
            };
        }
        match self.request(node, &format!("get {key}")) {
            Some(Answer::Ok(value)) => Reply::Value(Some(value)),
            Some(Answer::Error(e)) if e == "value does not exist" => Reply::Value(None),
            _ => Reply::Failed,
        }
    }
}

/// One client: odd ones speak HTTP, even ones the text protocol.
fn client(id: u64, addrs: Addrs, recorder: &Recorder, stop_at: Instant) {
    let started = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(id);
    let (addrs, http_addrs) = addrs;
    let n = addrs.len();
    let mut conns = Conns {
        open: (0..n).map(|_| None).collect(),
        addrs,
        http_addrs,
        http: id % 2 == 1,
    };
    let mut leader = 0usize;
    let mut seq = 0u64;
    while Instant::now() < stop_at {
        let generation = started.elapsed().as_secs() / KEY_GENERATION.as_secs();
        let key = KEYS[(rng.next_u64() % KEYS.len() as u64) as usize];
        let key = format!("{key}{generation}");
        if rng.next_u64() % 2 == 0 {
            seq += 1;
            let value = format!("{id}-{seq}");
            let call = recorder.tick();
            let mut ret = None;
            let give_up = stop_at + WRITE_GRACE;
            for _ in 0..WRITE_ATTEMPTS_MAX {
                if Instant::now() > give_up {
                    break;
                }
                match conns.put(leader, 1000 + id, seq, &key, &value) {
                    Reply::Appended => {
                        ret = Some((recorder.tick(), KvOutput::Put));
                        break;
                    }
                    Reply::Redirect(node) => leader = node,
                    Reply::Value(_) | Reply::Failed => {
                        leader = (leader + 1) % n;
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }
            let op = Operation {
                client: id,
                input: KvInput::Put { value },
                call,
                ret,
            };
            recorder.ops.lock().unwrap().push(KeyedOperation {
                key: key.clone(),
                op,
            });
        } else {
            let node = (rng.next_u64() % n as u64) as usize;
            let call = recorder.tick();
            let output = match conns.get(node, &key) {
                Reply::Value(value) => KvOutput::Get(value),
                // Failed: a read has no effect, so it is left out of the history.
                _ => continue,
            };
            let op = Operation {
                client: id,
                input: KvInput::Get,
                call,
                ret: Some((recorder.tick(), output)),
            };
            recorder.ops.lock().unwrap().push(KeyedOperation {
                key: key.clone(),
                op,
            });
        }
    }
}

/// The leader, if one node says it leads (a quick look, no waiting).
fn current_leader(cluster: &Cluster) -> Option<u64> {
    cluster.ids().into_iter().find(|id| {
        cluster
            .status(*id)
            .is_some_and(|s| s.contains(" role=leader "))
    })
}

/// Runs the clients against `cluster` while `nemesis(cluster, round)` breaks
/// things, then checks the history. `enter` runs first on every client thread.
fn run_and_check(
    mut cluster: Cluster,
    run: Duration,
    enter: &(dyn Fn() + Sync),
    mut nemesis: impl FnMut(&mut Cluster, u32),
) {
    cluster.wait_for_leader();
    let recorder = Recorder {
        clock: AtomicU64::new(1),
        ops: Mutex::new(Vec::new()),
    };
    let ids = cluster.ids();
    let addrs: Addrs = (
        ids.iter()
            .map(|id| cluster.client_addr(*id).to_string())
            .collect(),
        ids.iter()
            .map(|id| cluster.http_addr(*id).to_string())
            .collect(),
    );
    let stop_at = Instant::now() + run;
    std::thread::scope(|scope| {
        for id in 0..CLIENTS {
            let addrs = addrs.clone();
            let recorder = &recorder;
            scope.spawn(move || {
                enter();
                client(id, addrs, recorder, stop_at);
            });
        }
        let mut round = 0;
        while Instant::now() + Duration::from_secs(2) < stop_at {
            std::thread::sleep(Duration::from_millis(1500));
            nemesis(&mut cluster, round);
            round += 1;
        }
    });

    let ops = recorder.ops.into_inner().unwrap();
    let completed = |put: bool| {
        ops.iter()
            .filter(|k| matches!(k.op.input, KvInput::Put { .. }) == put && k.op.ret.is_some())
            .count()
    };
    let (writes, reads) = (completed(true), completed(false));
    println!(
        "history: {} operations, {writes} acknowledged writes, {reads} reads, {} unknown",
        ops.len(),
        ops.iter().filter(|k| k.op.ret.is_none()).count()
    );
    assert!(
        writes > 0 && reads > 0,
        "the cluster served nothing while under faults"
    );
    for verdict in check_kv(&ops, CHECK_STEPS_MAX) {
        assert_eq!(
            verdict.outcome,
            CheckOutcome::Linearizable,
            "key {}: not linearizable; its operations:\n{:#?}\n{}",
            verdict.key,
            verdict.ops,
            cluster.logs()
        );
    }
}

/// Kills the leader, and starts it again one round later.
fn kill_leaders(down: &mut Option<u64>) -> impl FnMut(&mut Cluster, u32) + '_ {
    move |cluster, _round| {
        if let Some(id) = down.take() {
            cluster.node(id).start().expect("restart a killed node");
        } else if let Some(leader) = current_leader(cluster) {
            cluster.kill(leader);
            *down = Some(leader);
        }
    }
}

#[test]
fn a_concurrent_history_while_a_node_is_replaced_is_linearizable() {
    let mut cluster = Cluster::start(3);
    // The clients know node 4's address from the start; it answers once it runs.
    cluster.plan_node(4);
    run_and_check(cluster, RUN, &|| {}, |cluster, round| match round {
        0 => {
            cluster.start_joining(4, &[]);
            let added = cluster.add_node(4);
            assert!(added.ends_with("voters=1,2,3,4 learners=-"), "{added}");
        }
        1 => {
            let removed = cluster.remove_node(3);
            assert!(removed.ends_with("voters=1,2,4 learners=-"), "{removed}");
        }
        _ => {}
    });
}

/// The soaks' run time: `KV_SOAK_SECS` seconds (default 300).
fn soak_duration() -> Duration {
    let secs = std::env::var("KV_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    Duration::from_secs(secs)
}

fn with_leader_kills(run: Duration) {
    let cluster = Cluster::start(3);
    let mut down = None;
    run_and_check(cluster, run, &|| {}, kill_leaders(&mut down));
}

#[test]
fn a_concurrent_history_with_leader_kills_is_linearizable() {
    with_leader_kills(RUN);
}

/// With lease reads the leader answers reads without a heartbeat round; a killed
/// leader's lease has run out before any other node can win an election.
#[test]
fn a_concurrent_history_with_leader_kills_and_read_leases_is_linearizable() {
    let cluster = Cluster::start_with_args(3, &["--read-lease"]);
    let mut down = None;
    run_and_check(cluster, RUN, &|| {}, kill_leaders(&mut down));
}

#[test]
#[ignore = "a soak: KV_SOAK_SECS=300 cargo test -p kv-example --release -- --ignored"]
fn soak_a_long_history_with_leader_kills_is_linearizable() {
    with_leader_kills(soak_duration());
}

fn with_partitions_and_leader_kills(run: Duration) {
    if let Some(reason) = NetLab::unavailable() {
        println!("SKIPPED the partition half of the linearizability check: {reason}");
        return;
    }
    let lab = NetLab::create(3).expect("build the network namespaces");
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout {
        nodes: (1..=3)
            .map(|id| NodeSpec {
                id,
                raft_addr: format!("{}:7001", lab.node_ip(id)),
                client_addr: format!("{}:8001", lab.node_ip(id)),
                http_addr: format!("{}:9001", lab.node_ip(id)),
                data_dir: dir.path().join(format!("node{id}")),
            })
            .collect(),
    };
    let options = NodeOptions {
        no_fsync: false,
        extra_args: vec!["--request-timeout-ms".into(), "1000".into()],
        ..NodeOptions::default()
    };
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                lab.enter_hub();
                let cluster = Cluster::start_with(layout, dir, options, |id| lab.wrapper(id));
                let mut down = None;
                let mut kill = kill_leaders(&mut down);
                // Rounds cycle: cut the leader off, heal, kill the leader, restart it.
                let nemesis = |cluster: &mut Cluster, round: u32| match round % 4 {
                    0 => {
                        if let Some(id) = current_leader(cluster) {
                            lab.isolate(id);
                        }
                    }
                    1 => lab.heal(),
                    _ => kill(cluster, round),
                };
                run_and_check(cluster, run, &|| lab.enter_hub(), nemesis);
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    });
}

#[test]
fn a_concurrent_history_with_partitions_and_leader_kills_is_linearizable() {
    with_partitions_and_leader_kills(RUN);
}

#[test]
#[ignore = "a soak: KV_SOAK_SECS=300 cargo test -p kv-example --release -- --ignored"]
fn soak_a_long_history_with_partitions_and_leader_kills_is_linearizable() {
    with_partitions_and_leader_kills(soak_duration());
}
