//! Throughput and latency of a three-node raft-mio cluster on loopback TCP, with real
//! fsyncs into a temporary directory (or without, to separate the disk's share).
//!
//! ```text
//! cargo run --release -p raft-mio --example bench               # fsync on
//! cargo run --release -p raft-mio --example bench -- --no-fsync
//! cargo run --release -p raft-mio --example bench -- --inflight 1,256 --seconds 5
//! cargo run --release -p raft-mio --example bench -- --tls      # mutual TLS between the nodes
//! ```
//! The last column is the CPU time (user + system, all threads of the process: three
//! nodes, their fsync threads, the applications, the client) per commit, which does
//! not depend on what else the machine is running.
//!
//! One client thread keeps N proposals of 64-byte commands in flight on the leader
//! (`Client::submit`): it waits for the oldest, collects every proposal already
//! committed behind it, and refills the window. Latency is from submission to the
//! moment the client sees the commit. Each in-flight level runs on a fresh cluster.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use raft_core::{NodeId, RoleKind, SharedBytes};
use raft_mio::transport::tls::{node_dns_name, TlsSettings};
use raft_mio::{Client, Proposal, RaftConfig};
use serde::{Deserialize, Serialize};

// The throwaway CA of the TLS tests (it expects `node_dns_name` and `TlsSettings`
// in scope).
#[path = "../tests/support/pki.rs"]
mod pki;

/// The command: opaque bytes (serialized as one byte string, not a sequence of
/// numbers, so the application's decoding stays cheap).
#[derive(Clone, Serialize, Deserialize)]
struct Command(SharedBytes);

struct Options {
    fsync: bool,
    inflight: Vec<usize>,
    seconds: f64,
    payload_bytes: usize,
    fsync_threads: usize,
    tls: bool,
}

fn parse_options() -> Options {
    let mut options = Options {
        fsync: true,
        inflight: vec![1, 16, 256, 1024],
        seconds: 3.0,
        payload_bytes: 64,
        fsync_threads: 3,
        tls: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--no-fsync" => options.fsync = false,
            "--tls" => options.tls = true,
            "--inflight" => {
                let list = args.next().expect("--inflight needs a list like 1,16,256");
                options.inflight = list
                    .split(',')
                    .map(|n| n.trim().parse().expect("a number"))
                    .collect();
            }
            "--seconds" => {
                options.seconds = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .expect("--seconds needs a number")
            }
            "--payload" => {
                options.payload_bytes = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .expect("--payload needs bytes")
            }
            "--fsync-threads" => {
                options.fsync_threads = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .expect("--fsync-threads needs a number")
            }
            "-h" | "--help" => {
                println!(
                    "bench [--no-fsync] [--tls] [--inflight 1,16,256,1024] [--seconds 3] [--payload 64] [--fsync-threads 3]"
                );
                std::process::exit(0);
            }
            other => panic!("unknown argument {other} (try --help)"),
        }
    }
    options
}

struct Cluster {
    _dir: tempfile::TempDir,
    clients: BTreeMap<NodeId, Client<Command>>,
    drains: Vec<std::thread::JoinHandle<()>>,
}

fn start_cluster(options: &Options) -> Cluster {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = options.tls.then(|| pki::TestPki::new("bench CA"));
    let listeners: Vec<_> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let addrs: BTreeMap<NodeId, String> = listeners
        .iter()
        .enumerate()
        .map(|(i, l)| (NodeId(i as u64 + 1), l.local_addr().unwrap().to_string()))
        .collect();
    let mut clients = BTreeMap::new();
    let mut drains = Vec::new();
    for (listener, id) in listeners.into_iter().zip(addrs.keys().copied()) {
        let mut config = RaftConfig::new(id, addrs.clone())
            .data_dir(dir.path().join(format!("node{}", id.0)))
            .listener(listener)
            .fsync(options.fsync);
        config.fsyncs_in_flight_max = options.fsync_threads;
        if let Some(pki) = &pki {
            config = config.tls(pki.settings_for(id));
        }
        let (client, mut committed) = raft_mio::run::<Command>(config).expect("node starts");
        // The application: consume (and decode) every committed command.
        drains.push(std::thread::spawn(
            move || while committed.recv().is_ok() {},
        ));
        clients.insert(id, client);
    }
    Cluster {
        _dir: dir,
        clients,
        drains,
    }
}

fn wait_for_leader(cluster: &Cluster) -> NodeId {
    let start = Instant::now();
    loop {
        for (id, client) in &cluster.clients {
            if client.status().expect("running").role == RoleKind::Leader {
                return *id;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no leader elected"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

struct Run {
    commits: u64,
    elapsed: Duration,
    latencies_ns: Vec<u64>,
}

/// Keeps `inflight` proposals going for `duration`, recording each one's latency.
fn drive(
    client: &Client<Command>,
    inflight: usize,
    payload_bytes: usize,
    duration: Duration,
    record: bool,
) -> Run {
    let command = Command(vec![7u8; payload_bytes].into());
    let mut window: VecDeque<(Instant, Proposal)> = VecDeque::with_capacity(inflight);
    let mut latencies_ns = Vec::new();
    let mut commits = 0;
    let start = Instant::now();
    let mut submitting = true;
    loop {
        while submitting && window.len() < inflight {
            window.push_back((Instant::now(), client.submit(&command).expect("submit")));
        }
        // Wait for the oldest, then take every proposal already done behind it before
        // refilling the window, so that refills reach the leader together.
        let Some((submitted, proposal)) = window.pop_front() else {
            break;
        };
        proposal
            .wait()
            .expect("a proposal on a stable leader commits");
        let mut done = vec![submitted];
        while window.front().is_some_and(|(_, p)| p.is_done()) {
            let (submitted, proposal) = window.pop_front().expect("front exists");
            proposal
                .wait()
                .expect("a proposal on a stable leader commits");
            done.push(submitted);
        }
        commits += done.len() as u64;
        if record {
            latencies_ns.extend(done.iter().map(|s| s.elapsed().as_nanos() as u64));
        }
        if submitting && start.elapsed() >= duration {
            submitting = false;
        }
    }
    Run {
        commits,
        elapsed: start.elapsed(),
        latencies_ns,
    }
}

/// The CPU time this process has used (user + system), from /proc (Linux; `None`
/// elsewhere). Clock ticks are taken as 100 per second, the Linux default.
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn percentile_us(sorted_ns: &[u64], fraction: f64) -> f64 {
    let at = ((sorted_ns.len() as f64 * fraction) as usize).min(sorted_ns.len() - 1);
    sorted_ns[at] as f64 / 1000.0
}

fn main() {
    let options = parse_options();
    // BENCH_LOG=info (or debug, ...) shows the nodes' logs on stderr.
    if let Some(level) = std::env::var("BENCH_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
    {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_max_level(level)
            .init();
    }
    println!(
        "raft-mio bench: 3 nodes on 127.0.0.1, {}-byte commands, fsync {}, TLS {}, {} s per level",
        options.payload_bytes,
        if options.fsync { "on" } else { "off" },
        if options.tls { "on" } else { "off" },
        options.seconds
    );
    println!(
        "{:>9} {:>12} {:>10} {:>10} {:>10} {:>14}",
        "inflight", "commits/s", "p50 us", "p99 us", "p999 us", "cpu us/commit"
    );
    for &inflight in &options.inflight {
        let cluster = start_cluster(&options);
        let leader = wait_for_leader(&cluster);
        let client = &cluster.clients[&leader];
        // Warm up: connections, allocator, page cache of the segments.
        drive(
            client,
            inflight,
            options.payload_bytes,
            Duration::from_millis(500),
            false,
        );
        let cpu_before = process_cpu();
        let mut run = drive(
            client,
            inflight,
            options.payload_bytes,
            Duration::from_secs_f64(options.seconds),
            true,
        );
        // All three nodes, their fsync threads, the applications and the client.
        let cpu_per_commit_us = match (cpu_before, process_cpu()) {
            (Some(before), Some(after)) => format!(
                "{:.1}",
                (after - before).as_secs_f64() * 1e6 / run.commits as f64
            ),
            _ => "-".to_string(),
        };
        run.latencies_ns.sort_unstable();
        println!(
            "{:>9} {:>12.0} {:>10.0} {:>10.0} {:>10.0} {:>14}",
            inflight,
            run.commits as f64 / run.elapsed.as_secs_f64(),
            percentile_us(&run.latencies_ns, 0.50),
            percentile_us(&run.latencies_ns, 0.99),
            percentile_us(&run.latencies_ns, 0.999),
            cpu_per_commit_us,
        );
        let Cluster {
            clients,
            drains,
            _dir,
        } = cluster;
        for client in clients.values() {
            client.shutdown();
        }
        drop(clients);
        for drain in drains {
            drain.join().unwrap();
        }
    }
}
