//! Throughput, latency and CPU cost of a three-node raft-mio cluster on loopback TCP,
//! with real fsyncs into a temporary directory (or without, to separate the disk's
//! share).
//!
//! ```text
//! cargo run --release -p raft-mio --example bench                 # fsync on, threads of one process
//! cargo run --release -p raft-mio --example bench -- --processes  # the same, three processes
//! cargo run --release -p raft-mio --example bench -- --no-fsync
//! cargo run --release -p raft-mio --example bench -- --inflight 1,256 --seconds 5 --cpu-detail
//! cargo run --release -p raft-mio --example bench -- --tls        # mutual TLS between the nodes
//! cargo run --release -p raft-mio --example bench -- --commits 200000 --inflight 1024  # fixed work, for callgrind
//! ```
//! The CPU column is the CPU time (user + system) of every thread of the cluster per
//! commit: three node loops, their fsync threads, the three applications and the
//! client; with `--processes`, of all three processes. It depends much less than
//! commits/s on what else the machine runs. `--cpu-detail` splits it by thread role.
//!
//! One client thread keeps N proposals of 64-byte commands in flight on the leader
//! (`Client::submit`, see `load::drive`). Each in-flight level runs on a fresh cluster.

mod cpu;
mod load;
mod processes;
mod threads;

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::cpu::CpuByRole;
use crate::load::{Amount, Run};

// The throwaway CA of the TLS tests (it expects `node_dns_name` and `TlsSettings`
// in scope).
#[path = "../../tests/support/pki.rs"]
mod pki;
use raft_mio::transport::tls::{node_dns_name, TlsSettings};

/// The bench's options.
#[derive(Parser, Clone, Debug)]
#[command(about = "Throughput, latency and CPU per commit of a three-node raft-mio cluster")]
pub struct Options {
    /// Turn fsync off (gives up durability across machine crashes; for comparison).
    #[arg(long)]
    pub no_fsync: bool,
    /// Mutual TLS between the nodes.
    #[arg(long)]
    pub tls: bool,
    /// Proposals kept in flight; one run, on a fresh cluster, per value.
    #[arg(long, value_delimiter = ',', default_value = "1,16,256,1024")]
    pub inflight: Vec<usize>,
    /// Seconds of measured load per level (after half a second of warm-up).
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Measure this many commits instead of a time (after a fifth as many of
    /// warm-up): the same work every run, for callgrind.
    #[arg(long)]
    pub commits: Option<u64>,
    /// Bytes per command.
    #[arg(long, default_value_t = 64)]
    pub payload: usize,
    /// fdatasyncs in flight per node (`fsyncs_in_flight_max`).
    #[arg(long, default_value_t = 3)]
    pub fsync_threads: usize,
    /// Run the three nodes as three processes (the client in node 1's).
    #[arg(long)]
    pub processes: bool,
    /// Each node's application compacts the log every this many entries, as an
    /// application that bounds its memory does (0: never).
    #[arg(long, default_value_t = 0)]
    pub snapshot_every: u64,
    /// Print the CPU per commit of each kind of thread too.
    #[arg(long)]
    pub cpu_detail: bool,
    /// (internal) Run as node N of a `--processes` cluster.
    #[arg(long, hide = true)]
    pub node_id: Option<u64>,
    /// (internal) The cluster's addresses, `1=host:port,2=...`.
    #[arg(long, hide = true)]
    pub addrs: Option<String>,
    /// (internal) This node's data directory.
    #[arg(long, hide = true)]
    pub data_dir: Option<PathBuf>,
    /// (internal) Where the PEM files of `--tls` are.
    #[arg(long, hide = true)]
    pub tls_dir: Option<PathBuf>,
}

impl Options {
    fn warmup(&self) -> Amount {
        match self.commits {
            Some(commits) => Amount::Commits((commits / 5).max(1)),
            None => Amount::For(Duration::from_millis(500)),
        }
    }

    fn amount(&self) -> Amount {
        match self.commits {
            Some(commits) => Amount::Commits(commits),
            None => Amount::For(Duration::from_secs_f64(self.seconds)),
        }
    }
}

/// What one level measured.
pub struct Measured {
    pub run: Run,
    /// CPU used during the measured run, by kind of thread.
    pub cpu: CpuByRole,
    /// fdatasyncs of all three nodes during the run.
    pub fsyncs: u64,
}

fn main() {
    let options = Options::parse();
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
    if options.node_id.is_some() {
        processes::node_main(&options);
        return;
    }
    let per_level = match options.commits {
        Some(commits) => format!("{commits} commits"),
        None => format!("{} s", options.seconds),
    };
    println!(
        "raft-mio bench: 3 nodes on 127.0.0.1 as {}, {}-byte commands, fsync {}, TLS {}, {}, {per_level} per level",
        if options.processes { "3 processes" } else { "threads of one process" },
        options.payload,
        if options.no_fsync { "off" } else { "on" },
        if options.tls { "on" } else { "off" },
        match options.snapshot_every {
            0 => "no snapshots".to_string(),
            n => format!("a snapshot every {n} entries"),
        },
    );
    println!(
        "{:>9} {:>11} {:>8} {:>8} {:>8} {:>14} {:>14} {:>6}",
        "inflight",
        "commits/s",
        "p50 us",
        "p99 us",
        "p999 us",
        "cpu us/commit",
        "commits/fsync",
        "load"
    );
    for &inflight in &options.inflight {
        let load = cpu::load_average();
        let measured = if options.processes {
            processes::run_level(&options, inflight)
        } else {
            threads::run_level(&options, inflight)
        };
        print_row(inflight, &measured, &load, options.cpu_detail);
    }
}

fn print_row(inflight: usize, measured: &Measured, load: &str, cpu_detail: bool) {
    let run = &measured.run;
    let commits = run.commits.max(1) as f64;
    let per_commit_us = |time: Duration| time.as_secs_f64() * 1e6 / commits;
    let per_fsync = if measured.fsyncs == 0 {
        "-".to_string()
    } else {
        format!("{:.1}", commits / measured.fsyncs as f64)
    };
    println!(
        "{:>9} {:>11.0} {:>8.0} {:>8.0} {:>8.0} {:>14.2} {:>14} {:>6}",
        inflight,
        run.commits as f64 / run.elapsed.as_secs_f64(),
        run.percentile_us(0.50),
        run.percentile_us(0.99),
        run.percentile_us(0.999),
        per_commit_us(measured.cpu.total()),
        per_fsync,
        load,
    );
    if cpu_detail {
        let parts: Vec<String> = measured
            .cpu
            .0
            .iter()
            .map(|(role, time)| format!("{} {:.2}", role.name(), per_commit_us(*time)))
            .collect();
        println!("{:>9} cpu us/commit: {}", "", parts.join(", "));
    }
}
