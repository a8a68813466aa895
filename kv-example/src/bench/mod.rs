//! `kv-example bench`: closed-loop clients, each with one request in flight, against
//! a running cluster or one the bench starts itself. Reads go to every node in turn
//! (linearizable by default: a follower's read costs a round trip to the leader);
//! writes go to the leader, found by following `Error: Leader is ADDR`.

pub mod report;

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use crate::cli::BenchArgs;
use crate::client::{Answer, TextClient};
use crate::layout::{Layout, NodeOptions};
use crate::process::NodeProcess;
use report::{OpStats, Report};

/// How long a client waits for one answer before counting an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client waits before reconnecting after a connection failed.
const RECONNECT_DELAY: Duration = Duration::from_millis(50);
/// How long the bench waits for its own cluster to elect a leader.
const LEADER_WAIT_MAX: Duration = Duration::from_secs(30);

/// What each client does.
#[derive(Clone, Debug)]
pub struct Workload {
    /// The nodes' text addresses.
    pub addrs: Vec<String>,
    /// The share of reads, in percent.
    pub read_percent: u8,
    /// Reads with `get --stale`.
    pub stale_reads: bool,
    /// How many distinct keys.
    pub keys: u64,
    /// The size of each value, in bytes.
    pub value_bytes: usize,
    /// The seed of the random choices (client i uses seed + i).
    pub seed: u64,
}

/// Runs the bench as the command line says and prints the report.
pub fn run(args: BenchArgs) -> Result<(), Box<dyn std::error::Error>> {
    let own = if args.start_cluster {
        Some(OwnCluster::start(args.no_fsync, args.read_lease)?)
    } else {
        None
    };
    let addrs = match &own {
        Some(cluster) => cluster.client_addrs(),
        None => args.addrs.clone(),
    };
    let workload = Workload {
        addrs,
        read_percent: args.read_percent,
        stale_reads: args.stale_reads,
        keys: args.keys,
        value_bytes: usize::try_from(args.value_bytes)?,
        seed: args.seed,
    };
    wait_for_leader(&workload.addrs)?;
    println!(
        "bench: {} clients for {} s, {}% {} reads, {} keys, {}-byte values, nodes {}",
        args.clients,
        args.duration_secs,
        args.read_percent,
        if args.stale_reads {
            "stale"
        } else {
            "linearizable"
        },
        args.keys,
        args.value_bytes,
        workload.addrs.join(",")
    );
    let report = run_workload(
        &workload,
        args.clients,
        Duration::from_secs(args.duration_secs),
    );
    println!("{report}");
    drop(own);
    Ok(())
}

/// Waits until some node answers a write, following redirects.
fn wait_for_leader(addrs: &[String]) -> Result<(), String> {
    let deadline = Instant::now() + LEADER_WAIT_MAX;
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        for addr in addrs {
            match TextClient::connect(addr, Duration::from_secs(1))
                .and_then(|mut c| c.request("status"))
            {
                Ok(Answer::Ok(line)) if line.contains("role=leader") => return Ok(()),
                Ok(answer) => last = format!("{addr}: {answer:?}"),
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "no leader within {} s (last: {last})",
        LEADER_WAIT_MAX.as_secs()
    ))
}

/// Runs `clients` closed-loop clients for `duration` and gathers their statistics.
pub fn run_workload(workload: &Workload, clients: u64, duration: Duration) -> Report {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let stop_at = start + duration;
    let handles: Vec<_> = (0..clients)
        .map(|i| {
            let workload = workload.clone();
            let done = Arc::clone(&done);
            std::thread::spawn(move || client_loop(i, &workload, stop_at, &done))
        })
        .collect();
    let progress = progress_bar(duration);
    while Instant::now() < stop_at {
        std::thread::sleep(Duration::from_millis(200));
        let elapsed = start.elapsed().min(duration);
        progress.set_position(elapsed.as_millis() as u64);
        let ops = done.load(Ordering::Relaxed);
        progress.set_message(format!(
            "{ops} ops, {:.0} ops/s",
            ops as f64 / elapsed.as_secs_f64().max(1e-3)
        ));
    }
    let mut report = Report {
        reads: OpStats::new(),
        writes: OpStats::new(),
        redirects: 0,
        elapsed: Duration::ZERO,
    };
    for handle in handles {
        let client = handle.join().expect("a bench client panicked");
        report.reads.merge(&client.reads);
        report.writes.merge(&client.writes);
        report.redirects += client.redirects;
    }
    report.elapsed = start.elapsed();
    progress.finish_and_clear();
    report
}

/// The progress line, drawn only on a terminal so that piped reports stay clean.
fn progress_bar(duration: Duration) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(duration.as_millis() as u64),
        if std::io::stdout().is_terminal() {
            ProgressDrawTarget::stdout()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {elapsed}/{duration} {msg}") {
        bar.set_style(style);
    }
    bar
}

struct ClientStats {
    reads: OpStats,
    writes: OpStats,
    redirects: u64,
}

/// One connection that reconnects after a failure.
struct Conn {
    addr: String,
    client: Option<TextClient>,
}

impl Conn {
    fn new(addr: String) -> Conn {
        Conn { addr, client: None }
    }

    fn request(&mut self, line: &str) -> std::io::Result<Answer> {
        if self.client.is_none() {
            self.client = Some(TextClient::connect(&self.addr, REQUEST_TIMEOUT)?);
        }
        let client = self.client.as_mut().expect("connected above");
        let answer = client.request(line);
        if answer.is_err() {
            self.client = None;
        }
        answer
    }

    fn redirect(&mut self, addr: &str) {
        if self.addr != addr {
            self.addr = addr.to_string();
            self.client = None;
        }
    }
}

fn client_loop(i: u64, workload: &Workload, stop_at: Instant, done: &AtomicU64) -> ClientStats {
    let mut rng = ChaCha8Rng::seed_from_u64(workload.seed.wrapping_add(i));
    let n = workload.addrs.len() as u64;
    let mut reads_from = i % n;
    let mut reader = Conn::new(workload.addrs[reads_from as usize].clone());
    let mut writer = Conn::new(workload.addrs[0].clone());
    let mut stats = ClientStats {
        reads: OpStats::new(),
        writes: OpStats::new(),
        redirects: 0,
    };
    let get = if workload.stale_reads {
        "get --stale"
    } else {
        "get"
    };
    let mut written = 0u64;
    while Instant::now() < stop_at {
        let key = rng.next_u64() % workload.keys;
        let is_read = rng.next_u64() % 100 < u64::from(workload.read_percent);
        let started = Instant::now();
        if is_read {
            match reader.request(&format!("{get} k{key}")) {
                // A missing key is a successful read too.
                Ok(Answer::Ok(_)) => stats.reads.record(started.elapsed()),
                Ok(Answer::Error(e)) if e == "value does not exist" => {
                    stats.reads.record(started.elapsed())
                }
                Ok(Answer::Error(_)) => stats.reads.record_error(),
                Err(_) => {
                    stats.reads.record_error();
                    // The node may be down: read from the next one.
                    reads_from = (reads_from + 1) % n;
                    reader.redirect(&workload.addrs[reads_from as usize]);
                    std::thread::sleep(RECONNECT_DELAY);
                }
            }
        } else {
            written += 1;
            let value = value(i, written, workload.value_bytes);
            match writer.request(&format!("put k{key} {value}")) {
                Ok(Answer::Ok(_)) => stats.writes.record(started.elapsed()),
                Ok(answer) => match answer.leader_redirect() {
                    Some(leader) => {
                        writer.redirect(leader);
                        stats.redirects += 1;
                    }
                    None => stats.writes.record_error(),
                },
                Err(_) => {
                    stats.writes.record_error();
                    // The node may be gone: start over from another one.
                    writer.redirect(&workload.addrs[(written % n) as usize]);
                    std::thread::sleep(RECONNECT_DELAY);
                }
            }
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
    stats
}

/// A value of exactly `bytes` bytes that names its client and write.
fn value(client: u64, n: u64, bytes: usize) -> String {
    let mut value = format!("c{client}w{n}");
    if value.len() < bytes {
        value.extend(std::iter::repeat_n('x', bytes - value.len()));
    }
    value.truncate(bytes);
    value
}

/// A three-node cluster the bench starts for itself, in a temporary directory on
/// free ports, stopped and removed when dropped.
struct OwnCluster {
    layout: Layout,
    nodes: Vec<NodeProcess>,
    _dir: tempfile::TempDir,
}

impl OwnCluster {
    fn start(no_fsync: bool, read_lease: bool) -> Result<OwnCluster, Box<dyn std::error::Error>> {
        let dir = tempfile::Builder::new().prefix("kv-bench-").tempdir()?;
        let layout = Layout::free_local_ports(3, dir.path())?;
        let exe = std::env::current_exe()?;
        let options = NodeOptions {
            no_fsync,
            extra_args: read_lease
                .then(|| "--read-lease".to_string())
                .into_iter()
                .collect(),
            ..NodeOptions::default()
        };
        let mut nodes = Vec::new();
        for spec in &layout.nodes {
            let mut node = NodeProcess::new(spec.id, &exe, layout.node_args(spec.id, &options))
                .log_to(dir.path().join(format!("node{}.log", spec.id)));
            node.start()?;
            nodes.push(node);
        }
        println!(
            "bench: started a 3-node cluster in {}{}{}",
            dir.path().display(),
            if no_fsync { " (fsync off)" } else { "" },
            if read_lease { " (read leases)" } else { "" }
        );
        Ok(OwnCluster {
            layout,
            nodes,
            _dir: dir,
        })
    }

    fn client_addrs(&self) -> Vec<String> {
        self.layout
            .nodes
            .iter()
            .map(|n| n.client_addr.clone())
            .collect()
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.request_stop();
        }
        for node in &mut self.nodes {
            let _ = node.stop(Duration::from_secs(10));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_have_the_requested_size_and_differ() {
        assert_eq!(value(3, 7, 16), "c3w7xxxxxxxxxxxx");
        assert_eq!(value(3, 7, 2), "c3");
        assert_ne!(value(1, 1, 8), value(1, 2, 8));
    }
}
