//! What every node of the bench runs (its configuration and its application) and the
//! load the client puts on the leader.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use raft_core::{LogIndex, NodeId, SharedBytes};
use raft_mio::transport::tls::TlsSettings;
use raft_mio::{Client, Committed, CommittedStream, Proposal, RaftConfig};
use serde::{Deserialize, Serialize};

use crate::Options;

/// The command: opaque bytes (serialized as one byte string, not a sequence of
/// numbers, so the application's decoding stays cheap).
#[derive(Clone, Serialize, Deserialize)]
pub struct Command(pub SharedBytes);

/// The configuration of node `id` of the bench's cluster.
pub fn node_config(
    options: &Options,
    id: NodeId,
    addrs: &BTreeMap<NodeId, String>,
    data_dir: &Path,
    tls: Option<TlsSettings>,
) -> RaftConfig {
    let mut config = RaftConfig::new(id, addrs.clone())
        .data_dir(data_dir)
        .fsync(!options.no_fsync);
    config.fsyncs_in_flight_max = options.fsync_threads;
    if id == NodeId(1) {
        // The client runs beside node 1 (in its process, with --processes).
        config = config.campaign_at_bootstrap();
    }
    if let Some(tls) = tls {
        config = config.tls(tls);
    }
    config
}

/// The application of one node: it consumes (and decodes) every committed command
/// and, every `snapshot_every` entries (0: never), compacts the log like an
/// application that bounds its memory. Its state is the number of entries applied,
/// so the state as of any index is that index; it compacts up to `snapshot_every`
/// entries behind what it applied, so followers a little behind never need the
/// snapshot.
pub fn spawn_app(
    id: NodeId,
    mut committed: CommittedStream<Command>,
    client: Client<Command>,
    snapshot_every: u64,
) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(format!("bench-app-{}", id.0))
        .spawn(move || {
            let mut next_snapshot = 2 * snapshot_every;
            while let Ok(item) = committed.recv() {
                let index = item.index().0;
                if let Committed::Command { command, .. } = &item {
                    std::hint::black_box(&command.0);
                }
                if snapshot_every > 0 && index >= next_snapshot {
                    let up_to = index - snapshot_every;
                    if client
                        .compact(LogIndex(up_to), up_to.to_le_bytes().to_vec())
                        .is_err()
                    {
                        return;
                    }
                    next_snapshot = index + snapshot_every;
                }
            }
        })
        .expect("spawn the application")
}

/// How long (or how many commits) to keep the load on.
#[derive(Clone, Copy, Debug)]
pub enum Amount {
    For(Duration),
    Commits(u64),
}

/// What a load run measured.
pub struct Run {
    pub commits: u64,
    pub elapsed: Duration,
    /// Submission to commit, sorted.
    pub latencies_ns: Vec<u64>,
}

impl Run {
    pub fn percentile_us(&self, fraction: f64) -> f64 {
        let sorted = &self.latencies_ns;
        if sorted.is_empty() {
            return 0.0;
        }
        let at = ((sorted.len() as f64 * fraction) as usize).min(sorted.len() - 1);
        sorted[at] as f64 / 1000.0
    }
}

/// Keeps `inflight` proposals of `payload_bytes` going on `client` (the leader) for
/// `amount`. One thread submits with [`Client::submit`]: it waits for the oldest
/// proposal, collects every proposal already committed behind it, and refills the
/// window, so refills reach the leader together. Latency is from submission to the
/// moment the client sees the commit.
pub fn drive(
    client: &Client<Command>,
    inflight: usize,
    payload_bytes: usize,
    amount: Amount,
) -> Run {
    let command = Command(vec![7u8; payload_bytes].into());
    let mut window: VecDeque<(Instant, Proposal)> = VecDeque::with_capacity(inflight);
    let mut latencies_ns = Vec::new();
    let mut commits = 0;
    let mut submitted = 0;
    let start = Instant::now();
    let more = |submitted: u64| match amount {
        Amount::For(duration) => start.elapsed() < duration,
        Amount::Commits(n) => submitted < n,
    };
    let mut submitting = true;
    loop {
        while submitting && window.len() < inflight {
            window.push_back((Instant::now(), client.submit(&command).expect("submit")));
            submitted += 1;
            if let Amount::Commits(n) = amount {
                submitting = submitted < n;
            }
        }
        let Some((at, proposal)) = window.pop_front() else {
            break;
        };
        proposal
            .wait()
            .expect("a proposal on a stable leader commits");
        latencies_ns.push(at.elapsed().as_nanos() as u64);
        commits += 1;
        while window.front().is_some_and(|(_, p)| p.is_done()) {
            let (at, proposal) = window.pop_front().expect("front exists");
            proposal
                .wait()
                .expect("a proposal on a stable leader commits");
            latencies_ns.push(at.elapsed().as_nanos() as u64);
            commits += 1;
        }
        submitting = submitting && more(submitted);
    }
    let elapsed = start.elapsed();
    latencies_ns.sort_unstable();
    Run {
        commits,
        elapsed,
        latencies_ns,
    }
}

/// One measured run on a thread named `bench-client` (so that its CPU is told apart):
/// a warm-up of `warmup` (connections, allocator, page cache of the segments), then
/// `before()`, the measured load, and `after()` with what `before` returned and the
/// run, while
/// every thread of the node (this one too) still runs.
pub fn measure<B, A, S, R>(
    client: Client<Command>,
    inflight: usize,
    payload_bytes: usize,
    warmup: Amount,
    amount: Amount,
    before: B,
    after: A,
) -> (Run, R)
where
    B: FnOnce() -> S + Send + 'static,
    A: FnOnce(S, &Run) -> R + Send + 'static,
    S: 'static,
    R: Send + 'static,
{
    std::thread::Builder::new()
        .name("bench-client".into())
        .spawn(move || {
            drive(&client, inflight, payload_bytes, warmup);
            let snapshot = before();
            let run = drive(&client, inflight, payload_bytes, amount);
            let result = after(snapshot, &run);
            (run, result)
        })
        .expect("spawn the client")
        .join()
        .expect("the client thread")
}
