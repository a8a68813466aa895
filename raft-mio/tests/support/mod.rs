//! A test cluster of raft-mio nodes in one process, on 127.0.0.1 with ephemeral
//! ports and data in a temporary directory. Every wait is bounded in wall time and
//! fails the test with what it was waiting for; nothing asserts on durations.
//!
//! With `RAFT_MIO_TEST_TLS=1` every cluster runs with mutual TLS between its nodes
//! (certificates from a throwaway CA); [`Cluster::start_tls`] does so always.
#![allow(dead_code)]

pub mod pki;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use raft_core::{LogIndex, NodeId, RoleKind};
use raft_mio::transport::tls::{node_dns_name, TlsSettings};
use raft_mio::{AppendError, Client, Committed, CommittedStream, NodeStatus, RaftConfig};
use serde::{Deserialize, Serialize};

/// How long any wait may take before the test fails.
pub const WAIT_MAX: Duration = Duration::from_secs(30);

/// The test's command type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cmd(pub u64);

/// What a node's application has seen on its committed stream.
pub type Applied = Arc<Mutex<Vec<(LogIndex, Cmd)>>>;

/// A node of the test cluster.
pub struct TestNode {
    pub id: NodeId,
    pub client: Client<Cmd>,
    pub applied: Applied,
    collector: Option<JoinHandle<()>>,
}

impl TestNode {
    pub fn status(&self) -> NodeStatus {
        self.client.status().expect("node running")
    }

    /// The commands applied so far, in order.
    pub fn commands(&self) -> Vec<Cmd> {
        self.applied
            .lock()
            .unwrap()
            .iter()
            .map(|(_, c)| c.clone())
            .collect()
    }

    /// Stops the node cleanly and waits for its committed stream to end.
    pub fn stop(mut self) {
        self.client.shutdown();
        if let Some(collector) = self.collector.take() {
            collector.join().unwrap();
        }
    }
}

/// Applies the committed stream into `applied` until the node stops. A snapshot's
/// data is the postcard encoding of the applied list itself.
pub fn collect(mut committed: CommittedStream<Cmd>, applied: Applied) -> JoinHandle<()> {
    std::thread::spawn(move || {
        while let Ok(item) = committed.recv() {
            match item {
                Committed::Command { index, command, .. } => {
                    applied.lock().unwrap().push((index, command))
                }
                Committed::Restore { data, .. } => {
                    *applied.lock().unwrap() =
                        postcard::from_bytes(&data).expect("a snapshot of ours");
                }
                _ => {}
            }
        }
    })
}

pub struct Cluster {
    /// Applied to every node's configuration.
    pub tweak: fn(RaftConfig) -> RaftConfig,
    pub dir: tempfile::TempDir,
    pub addrs: BTreeMap<NodeId, String>,
    pub nodes: BTreeMap<NodeId, TestNode>,
    /// The CA of the nodes' certificates, when they speak TLS.
    pub pki: Option<Arc<pki::TestPki>>,
}

impl Cluster {
    /// Starts `n` nodes (ids 1..=n).
    pub fn start(n: u64) -> Cluster {
        Cluster::start_with(n, |c| c)
    }

    /// Starts `n` nodes with mutual TLS between them.
    pub fn start_tls(n: u64) -> Cluster {
        Cluster::start_inner(n, |c| c, true)
    }

    /// Starts `n` nodes whose configuration `tweak` adjusts.
    pub fn start_with(n: u64, tweak: fn(RaftConfig) -> RaftConfig) -> Cluster {
        let tls = std::env::var("RAFT_MIO_TEST_TLS").is_ok_and(|v| v == "1");
        Cluster::start_inner(n, tweak, tls)
    }

    fn start_inner(n: u64, tweak: fn(RaftConfig) -> RaftConfig, tls: bool) -> Cluster {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_max_level(tracing::Level::INFO)
            .try_init();
        let listeners: Vec<_> = (1..=n)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let addrs: BTreeMap<NodeId, String> = (1..=n)
            .map(|i| {
                (
                    NodeId(i),
                    listeners[i as usize - 1].local_addr().unwrap().to_string(),
                )
            })
            .collect();
        let mut cluster = Cluster {
            tweak,
            dir: tempfile::tempdir().unwrap(),
            addrs,
            nodes: BTreeMap::new(),
            pki: tls.then(|| Arc::new(pki::TestPki::new("test CA"))),
        };
        for (i, listener) in (1..=n).zip(listeners) {
            cluster.launch(NodeId(i), Some(listener));
        }
        cluster
    }

    pub fn data_dir(&self, id: NodeId) -> PathBuf {
        self.dir.path().join(format!("node{}", id.0))
    }

    pub fn config(&self, id: NodeId) -> RaftConfig {
        let mut config = RaftConfig::new(id, self.addrs.clone())
            .data_dir(self.data_dir(id))
            .tick_interval(Duration::from_millis(10))
            .core(|c| c.seed = 7);
        if let Some(pki) = &self.pki {
            config = config.tls(pki.settings_for(id));
        }
        (self.tweak)(config)
    }

    /// Starts (or restarts) node `id` on its address and data directory.
    pub fn launch(&mut self, id: NodeId, listener: Option<std::net::TcpListener>) {
        self.launch_with(id, listener, |c| c);
    }

    /// Starts (or restarts) node `id` with its configuration adjusted by `adjust`.
    pub fn launch_with(
        &mut self,
        id: NodeId,
        listener: Option<std::net::TcpListener>,
        adjust: impl FnOnce(RaftConfig) -> RaftConfig,
    ) {
        let mut config = adjust(self.config(id));
        if let Some(listener) = listener {
            config = config.listener(listener);
        }
        let (client, committed) = raft_mio::run::<Cmd>(config).expect("node starts");
        let applied = Applied::default();
        let collector = Some(collect(committed, Arc::clone(&applied)));
        self.nodes.insert(
            id,
            TestNode {
                id,
                client,
                applied,
                collector,
            },
        );
    }

    /// Starts node `id` on a loop driven by a thread of the test, which a flag kills:
    /// the loop is dropped between two turns without a clean shutdown (no final
    /// Shutdown request, pending clients abandoned), as a crashed process would leave
    /// it after its last fsync.
    pub fn launch_killable(
        &mut self,
        id: NodeId,
        listener: Option<std::net::TcpListener>,
    ) -> Arc<AtomicBool> {
        let mut config = self.config(id);
        if let Some(listener) = listener {
            config = config.listener(listener);
        }
        let (mut node, client, committed) =
            raft_mio::NodeLoop::new::<Cmd>(config).expect("node starts");
        let kill = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&kill);
        std::thread::spawn(move || {
            for _ in 0..10_000_000u64 {
                if flag.load(Ordering::Acquire) {
                    break;
                }
                if node.turn().expect("turn") == raft_mio::Flow::Stop {
                    break;
                }
            }
            drop(node);
        });
        let applied = Applied::default();
        let collector = Some(collect(committed, Arc::clone(&applied)));
        self.nodes.insert(
            id,
            TestNode {
                id,
                client,
                applied,
                collector,
            },
        );
        kill
    }

    /// Kills a node started with [`launch_killable`](Self::launch_killable).
    pub fn kill(&mut self, id: NodeId, flag: &AtomicBool) {
        flag.store(true, Ordering::Release);
        let mut node = self.nodes.remove(&id).expect("running");
        if let Some(collector) = node.collector.take() {
            collector.join().unwrap();
        }
    }

    pub fn node(&self, id: NodeId) -> &TestNode {
        &self.nodes[&id]
    }

    /// Waits until the running nodes agree on one leader; returns it.
    pub fn wait_for_leader(&self) -> NodeId {
        let mut found = None;
        wait_until("a leader all running nodes agree on", || {
            let statuses: Vec<NodeStatus> = self.nodes.values().map(TestNode::status).collect();
            let leaders: Vec<&NodeStatus> = statuses
                .iter()
                .filter(|s| s.role == RoleKind::Leader)
                .collect();
            let [leader] = leaders.as_slice() else {
                return false;
            };
            let agreed = statuses
                .iter()
                .all(|s| s.leader.as_ref().map(|h| h.id) == Some(leader.id));
            found = Some(leader.id);
            agreed
        });
        found.expect("found a leader")
    }

    /// Proposes `cmd` until some node commits it, following NotLeader hints.
    pub fn append(&self, cmd: Cmd) -> LogIndex {
        let mut target = self.wait_for_leader();
        let start = Instant::now();
        loop {
            assert!(
                start.elapsed() < WAIT_MAX,
                "command {cmd:?} never committed"
            );
            match self.nodes[&target].client.append_cmd(cmd.clone()) {
                Ok(index) => return index,
                Err(AppendError::NotLeader(Some(hint))) if self.nodes.contains_key(&hint.id) => {
                    target = hint.id
                }
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(20));
                    target = self.wait_for_leader();
                }
            }
        }
    }

    /// Waits until every running node applied exactly `expected`, in order.
    pub fn wait_for_applied(&self, expected: &[Cmd]) {
        for node in self.nodes.values() {
            wait_until(
                &format!("node {} applies {} commands", node.id, expected.len()),
                || node.commands().len() >= expected.len(),
            );
            assert_eq!(
                node.commands(),
                expected,
                "node {} applied a different sequence",
                node.id
            );
        }
    }

    pub fn stop(&mut self, id: NodeId) {
        self.nodes.remove(&id).expect("running").stop();
    }

    pub fn shutdown(mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            self.stop(id);
        }
    }
}

/// The application snapshots its state (the applied list) as of its last index, and
/// waits until the node has made the snapshot durable.
pub fn compact(node: &TestNode) {
    let applied = node.applied.lock().unwrap().clone();
    let (up_to, _) = *applied.last().expect("something applied");
    node.client
        .compact(up_to, postcard::to_allocvec(&applied).unwrap())
        .unwrap();
    wait_until("the snapshot is durable", || {
        node.status().snapshot_index >= up_to
    });
}

/// Polls `condition` every 10 ms until it holds; fails the test after [`WAIT_MAX`].
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < WAIT_MAX, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
