//! A cluster of real `kv-example node` processes for tests: ports chosen free on
//! 127.0.0.1 (or addresses in network namespaces, see [`netns`]), data in a temporary
//! directory, every node killed when the cluster is dropped. Every wait is bounded
//! by [`WAIT_MAX`] and fails the test with what it was waiting for; nothing asserts
//! on how long anything took.
//!
//! With `KV_TEST_TLS=1` every cluster runs with TLS (certificates from a throwaway
//! CA in its directory); [`Cluster::start_tls`] does so always.
#![allow(dead_code)]

pub mod http;
pub mod netns;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kv_example::client::{Answer, TextClient};
use kv_example::layout::{Layout, NodeOptions, NodeSpec};
use kv_example::membership::MEMBERSHIP_CHANGE_TIMEOUT;
use kv_example::process::NodeProcess;
use kv_example::tls::LocalCa;

/// How long any wait may take before the test fails.
pub const WAIT_MAX: Duration = Duration::from_secs(30);
/// How long one request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a wait polls.
pub const POLL: Duration = Duration::from_millis(50);
/// How many times [`Cluster::start`] picks new ports when a node finds one taken.
const PORT_ATTEMPTS_MAX: usize = 5;

/// The binary under test.
pub fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_kv-example"))
}

/// Polls `what` until it returns `Some`, or fails the test after [`WAIT_MAX`].
pub fn wait_for<T>(description: &str, mut what: impl FnMut() -> Option<T>) -> T {
    wait_for_ok(description, || what().ok_or_else(String::new))
}

/// Polls `what` until it returns `Ok`, or fails the test after [`WAIT_MAX`] with
/// the last error.
pub fn wait_for_ok<T>(description: &str, mut what: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + WAIT_MAX;
    loop {
        let last = match what() {
            Ok(found) => return found,
            Err(last) => last,
        };
        assert!(
            Instant::now() < deadline,
            "gave up after {} s waiting for {description} (last: {last})",
            WAIT_MAX.as_secs()
        );
        std::thread::sleep(POLL);
    }
}

/// A running test cluster.
pub struct Cluster {
    pub layout: Layout,
    pub nodes: BTreeMap<u64, NodeProcess>,
    pub dir: tempfile::TempDir,
    /// The throwaway CA's directory, when the nodes speak TLS.
    pub tls_dir: Option<PathBuf>,
}

/// With `KV_TEST_TLS=1`, the directory of the CA every cluster of this test process
/// uses (one CA, so that [`http::request`] can trust it without knowing the cluster;
/// made once, before any cluster copies it).
pub fn env_tls_dir() -> Option<&'static Path> {
    static DIR: std::sync::OnceLock<Option<tempfile::TempDir>> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let on = std::env::var("KV_TEST_TLS").is_ok_and(|v| v == "1");
        on.then(|| {
            let dir = tempfile::tempdir().expect("a directory for the test CA");
            LocalCa::open_or_create(dir.path()).expect("the test CA");
            dir
        })
    })
    .as_ref()
    .map(|dir| dir.path())
}

/// A cluster's own TLS directory holding a copy of the process-wide CA of
/// `KV_TEST_TLS` (its node certificates then name its own hosts).
fn env_tls_dir_for(cluster_dir: &Path) -> Option<PathBuf> {
    let shared = env_tls_dir()?;
    let own = cluster_dir.join("tls");
    std::fs::create_dir_all(&own).expect("the cluster's TLS directory");
    for file in ["ca.pem", "ca.key"] {
        std::fs::copy(shared.join(file), own.join(file)).expect("copy the test CA");
    }
    Some(own)
}

/// Issues node `id`'s certificate (naming its HTTP host too) from the CA in `dir`.
fn issue_certificate(dir: &Path, spec: &NodeSpec) {
    let host = spec
        .http_addr
        .rsplit_once(':')
        .map_or("127.0.0.1", |(h, _)| h);
    LocalCa::open_or_create(dir)
        .and_then(|ca| ca.node_files(spec.id, &[host.to_string()]))
        .expect("a node certificate");
}

impl Cluster {
    /// Starts `n` nodes on free ports of 127.0.0.1.
    ///
    /// The ports are free when chosen, but are let go before the nodes bind them,
    /// and an outgoing connection of a test running in parallel may take one in
    /// between (it draws its local port from the same range). A node that finds its
    /// port taken exits at once; the cluster is then started again on new ports.
    pub fn start(n: u64) -> Cluster {
        Cluster::start_local(n, false)
    }

    /// [`start`](Self::start), with TLS between the nodes and HTTPS.
    pub fn start_tls(n: u64) -> Cluster {
        Cluster::start_local(n, true)
    }

    /// [`start`](Self::start), every node with `args` too.
    pub fn start_with_args(n: u64, args: &[&str]) -> Cluster {
        Cluster::start_local_with(n, false, args)
    }

    fn start_local(n: u64, tls: bool) -> Cluster {
        Cluster::start_local_with(n, tls, &[])
    }

    fn start_local_with(n: u64, tls: bool, args: &[&str]) -> Cluster {
        for _ in 0..PORT_ATTEMPTS_MAX {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let layout = Layout::free_local_ports(n, dir.path()).expect("free ports");
            let options = NodeOptions {
                tls_dir: tls.then(|| dir.path().join("tls")),
                extra_args: args.iter().map(|a| a.to_string()).collect(),
                ..NodeOptions::default()
            };
            match Cluster::try_start(layout, dir, options, |_| Vec::new()) {
                Ok(cluster) => return cluster,
                Err(log) if log.contains("Address already in use") => {
                    eprintln!("a port was taken before its node bound it; new ports:\n{log}");
                }
                Err(log) => panic!("a node exited while starting:\n{log}"),
            }
        }
        panic!("{PORT_ATTEMPTS_MAX} clusters in a row found one of their ports taken");
    }

    /// Starts the nodes of `layout`, each under `wrapper(id)` (a command prefix).
    pub fn start_with(
        layout: Layout,
        dir: tempfile::TempDir,
        options: NodeOptions,
        wrapper: impl Fn(u64) -> Vec<String>,
    ) -> Cluster {
        Cluster::try_start(layout, dir, options, wrapper)
            .unwrap_or_else(|log| panic!("a node exited while starting:\n{log}"))
    }

    /// Starts the nodes of `layout` and waits until each serves; the nodes' logs if
    /// one exits first (the others are killed).
    fn try_start(
        layout: Layout,
        dir: tempfile::TempDir,
        mut options: NodeOptions,
        wrapper: impl Fn(u64) -> Vec<String>,
    ) -> Result<Cluster, String> {
        if options.tls_dir.is_none() {
            options.tls_dir = env_tls_dir_for(dir.path());
        }
        let mut nodes = BTreeMap::new();
        for spec in &layout.nodes {
            if let Some(tls_dir) = &options.tls_dir {
                issue_certificate(tls_dir, spec);
            }
            let mut node = NodeProcess::new(spec.id, exe(), layout.node_args(spec.id, &options))
                .wrapped(wrapper(spec.id))
                .log_to(dir.path().join(format!("node{}.log", spec.id)));
            node.start().expect("the node process starts");
            nodes.insert(spec.id, node);
        }
        let tls_dir = options.tls_dir.clone();
        let mut cluster = Cluster {
            layout,
            nodes,
            dir,
            tls_dir,
        };
        for id in cluster.layout.ids() {
            let exited = wait_for(&format!("node {id} to serve"), || {
                if cluster.status(id).is_some() {
                    return Some(false);
                }
                cluster.node(id).try_exit().map(|_| true)
            });
            if exited {
                let logs = cluster.logs();
                // Dropped without a panic: the other nodes are killed quietly.
                drop(cluster);
                return Err(logs);
            }
        }
        Ok(cluster)
    }

    pub fn ids(&self) -> Vec<u64> {
        self.layout.ids()
    }

    pub fn client_addr(&self, id: u64) -> &str {
        &self
            .layout
            .node(id)
            .expect("a node of the cluster")
            .client_addr
    }

    pub fn http_addr(&self, id: u64) -> &str {
        &self
            .layout
            .node(id)
            .expect("a node of the cluster")
            .http_addr
    }

    /// Waits until node `id` answers on its text port.
    pub fn wait_until_serving(&self, id: u64) {
        wait_for(&format!("node {id} to serve"), || self.status(id));
    }

    /// One request to node `id` on a new connection.
    pub fn request(&self, id: u64, line: &str) -> std::io::Result<Answer> {
        TextClient::connect(self.client_addr(id), REQUEST_TIMEOUT)?.request(line)
    }

    /// Node `id`'s status line, if it answers.
    pub fn status(&self, id: u64) -> Option<String> {
        match self.request(id, "status") {
            Ok(Answer::Ok(line)) => Some(line),
            _ => None,
        }
    }

    /// The node among `among` that leads, once one does and every other answering
    /// node of `among` agrees.
    pub fn wait_for_leader_among(&self, among: &[u64]) -> u64 {
        wait_for(&format!("a leader among {among:?}"), || {
            let statuses: Vec<(u64, String)> = among
                .iter()
                .filter_map(|id| self.status(*id).map(|s| (*id, s)))
                .collect();
            let leader = statuses
                .iter()
                .find(|(_, s)| s.contains(" role=leader "))
                .map(|(id, _)| *id)?;
            let agreed = statuses
                .iter()
                .all(|(_, s)| s.contains(&format!(" leader={leader} ")));
            (agreed && statuses.len() * 2 > among.len()).then_some(leader)
        })
    }

    pub fn wait_for_leader(&self) -> u64 {
        self.wait_for_leader_among(&self.ids())
    }

    /// Writes through whichever node leads, following redirects and retrying
    /// passing errors under the same request id; the index it was appended at.
    pub fn put(&self, key: &str, value: &str) -> u64 {
        self.write(&format!("put {key} {value}"))
    }

    fn write(&self, command: &str) -> u64 {
        // A request id of our own makes the retries safe.
        let id = format!("{}:1", next_test_client_id());
        let words: Vec<&str> = command.splitn(2, ' ').collect();
        let line = format!("{} --req {id} {}", words[0], words[1]);
        let ids = self.ids();
        let mut target = ids[0];
        wait_for_ok(&format!("`{command}` to be acknowledged"), || {
            let answer = match self.request(target, &line) {
                Ok(answer) => answer,
                Err(e) => {
                    target = next_id(&ids, target);
                    return Err(e.to_string());
                }
            };
            if let Some(index) = answer.appended_index() {
                return Ok(index);
            }
            target = match answer.leader_redirect() {
                Some(addr) => self.id_of_client_addr(addr),
                None => next_id(&ids, target),
            };
            Err(format!("{answer:?}"))
        })
    }

    /// A linearizable read on node `id`, retried while it fails for passing reasons.
    pub fn get(&self, id: u64, key: &str) -> Option<String> {
        wait_for(
            &format!("a linearizable read of {key} on node {id}"),
            || match self.request(id, &format!("get {key}")) {
                Ok(Answer::Ok(value)) => Some(Some(value)),
                Ok(Answer::Error(e)) if e == "value does not exist" => Some(None),
                _ => None,
            },
        )
    }

    /// A stale (local) read on node `id`; `None` if the key is absent or the node
    /// does not answer.
    pub fn get_stale(&self, id: u64, key: &str) -> Option<String> {
        match self.request(id, &format!("get --stale {key}")) {
            Ok(Answer::Ok(value)) => Some(value),
            _ => None,
        }
    }

    pub fn id_of_client_addr(&self, addr: &str) -> u64 {
        self.layout
            .nodes
            .iter()
            .find(|n| n.client_addr == addr)
            .unwrap_or_else(|| panic!("no node has the client address {addr}"))
            .id
    }

    pub fn node(&mut self, id: u64) -> &mut NodeProcess {
        self.nodes.get_mut(&id).expect("a node of the cluster")
    }

    /// SIGKILL.
    pub fn kill(&mut self, id: u64) {
        self.node(id).kill().expect("kill the node");
    }

    /// A clean stop (closes its stdin).
    pub fn stop(&mut self, id: u64) {
        let stopped = self.node(id).stop(WAIT_MAX).expect("stop the node");
        assert!(
            matches!(stopped, kv_example::process::Stopped::Exited(s) if s.success()),
            "node {id} did not stop cleanly: {stopped:?}"
        );
    }

    /// Starts node `id` again (same ports, same data) and waits until it serves.
    pub fn restart(&mut self, id: u64) {
        self.node(id).start().expect("restart the node");
        self.wait_until_serving(id);
    }

    /// Places node `id` on free ports of 127.0.0.1 (data in the cluster's directory)
    /// and adds it to the layout, without starting it: the nodes' clients may name it
    /// before it exists.
    pub fn plan_node(&mut self, id: u64) -> NodeSpec {
        let free = Layout::free_local_ports(1, self.dir.path()).expect("free ports");
        let spec = NodeSpec {
            id,
            data_dir: self.dir.path().join(format!("node{id}")),
            ..free.nodes[0].clone()
        };
        self.layout.insert(spec.clone());
        spec
    }

    /// Starts planned node `id` with `--join` (its peers: every node of the layout)
    /// plus `extra_args`, and waits until it serves.
    pub fn start_joining(&mut self, id: u64, extra_args: &[&str]) {
        self.start_joining_with(id, extra_args, |_| {});
    }

    /// [`start_joining`](Self::start_joining), with the node's arguments adjusted by
    /// `adjust` first.
    pub fn start_joining_with(
        &mut self,
        id: u64,
        extra_args: &[&str],
        adjust: impl FnOnce(&mut Vec<String>),
    ) {
        let options = NodeOptions {
            join: true,
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            tls_dir: self.tls_dir.clone(),
            ..NodeOptions::default()
        };
        if let Some(tls_dir) = &self.tls_dir {
            issue_certificate(tls_dir, self.layout.node(id).expect("a planned node"));
        }
        let mut args = self.layout.node_args(id, &options);
        adjust(&mut args);
        let mut node =
            NodeProcess::new(id, exe(), args).log_to(self.dir.path().join(format!("node{id}.log")));
        node.start().expect("the node process starts");
        self.nodes.insert(id, node);
        self.wait_until_serving(id);
    }

    /// Sends `line` (a membership request) to the leader, following `Leader is`
    /// answers and retrying while there is no leader; the first other answer.
    pub fn ask_leader(&self, line: &str) -> Answer {
        let ids = self.ids();
        let mut target = ids[0];
        wait_for_ok(&format!("an answer to `{line}` from the leader"), || {
            let answer =
                TextClient::connect(self.client_addr(target), REQUEST_TIMEOUT).and_then(|mut c| {
                    // The request waits for a catch-up and a promotion.
                    c.set_timeout(MEMBERSHIP_CHANGE_TIMEOUT + REQUEST_TIMEOUT)?;
                    c.request(line)
                });
            let answer = match answer {
                Ok(answer) => answer,
                Err(e) => {
                    target = next_id(&ids, target);
                    return Err(e.to_string());
                }
            };
            if let Some(addr) = answer.leader_redirect() {
                target = self.id_of_client_addr(addr);
                return Err(format!("{answer:?}"));
            }
            match &answer {
                Answer::Error(e) if e.starts_with("no leader") => {
                    target = next_id(&ids, target);
                    Err(e.clone())
                }
                _ => Ok(answer),
            }
        })
    }

    /// Adds planned, running node `id` through the leader; the answer's text.
    pub fn add_node(&self, id: u64) -> String {
        let spec = self.layout.node(id).expect("a planned node").clone();
        let line = format!(
            "add-node {id} {} {} {}",
            spec.raft_addr, spec.client_addr, spec.http_addr
        );
        match self.ask_leader(&line) {
            Answer::Ok(text) => text,
            Answer::Error(e) => panic!("adding node {id} failed: {e}"),
        }
    }

    /// Removes node `id` through the leader, stops its process, and drops it from
    /// the layout; the answer's text.
    pub fn remove_node(&mut self, id: u64) -> String {
        let text = match self.ask_leader(&format!("remove-node {id}")) {
            Answer::Ok(text) => text,
            Answer::Error(e) => panic!("removing node {id} failed: {e}"),
        };
        if let Some(mut node) = self.nodes.remove(&id) {
            node.stop(WAIT_MAX).expect("stop the removed node");
        }
        self.layout.remove(id);
        text
    }

    /// The tail of every node's log, for failure reports.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for id in self.ids() {
            let path = self.dir.path().join(format!("node{id}.log"));
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            out.push_str(&format!(
                "--- node {id} ({}) ---\n{}\n",
                path.display(),
                tail.join("\n")
            ));
        }
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        // NodeProcess kills its process when dropped.
    }
}

fn next_id(ids: &[u64], id: u64) -> u64 {
    let at = ids.iter().position(|i| *i == id).unwrap_or(0);
    ids[(at + 1) % ids.len()]
}

/// Distinct client ids for the helpers' writes within one test process.
pub fn next_test_client_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    // High bits from the process id keep test binaries apart on a shared cluster.
    (u64::from(std::process::id()) << 24) | NEXT.fetch_add(1, Ordering::Relaxed)
}
