//! `kv-example` with no subcommand: a local cluster of node processes (this binary
//! re-executed as `kv-example node ...`), a banner that says where to connect, and a
//! console on stdin to stop, start, restart and kill nodes, and to add and remove
//! them, and to move leadership. Once a leader is elected, the launcher asks it to
//! hand leadership to the first node, the one the banner points at (`cluster/leader.rs`).
//! Ctrl-C (or `quit`) stops every node cleanly; starting again recovers every key
//! from the data directory, with the membership the console last changed (saved in
//! `DATA/cluster.json`).

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::cli::ClusterArgs;
use crate::client::{Answer, TextClient};
use crate::console::{self, ConsoleCommand, Target};
use crate::layout::{Layout, NodeOptions, NodeSpec};
use crate::membership::MEMBERSHIP_CHANGE_TIMEOUT;
use crate::process::{NodeProcess, Stopped};
use crate::tls::LocalCa;

mod leader;
mod saved;

use leader::{ask_leader, find_leader, query_status, settle_leader, STATUS_TIMEOUT};
use saved::{saved_membership_path, SavedMembership, SavedNode};

/// How long a node may take to stop cleanly before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long a node started by `add-node` may take to serve before it is given up.
const START_WAIT_MAX: Duration = Duration::from_secs(10);
/// How long a membership request may take (the node's own bound, plus slack).
const MEMBERSHIP_REQUEST_TIMEOUT: Duration =
    Duration::from_secs(MEMBERSHIP_CHANGE_TIMEOUT.as_secs() + 5);

/// Where `--tls` keeps the throwaway CA and the node certificates.
fn tls_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("tls")
}

/// What the supervisor loop reacts to.
enum Input {
    Line(String),
    ConsoleClosed,
    Interrupt,
}

/// Runs the local cluster until Ctrl-C, SIGTERM or `quit`.
pub fn run(args: ClusterArgs) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(&args.data_dir)?;
    let mut supervisor = Supervisor::new(args)?;
    let (tx, rx) = mpsc::channel();
    let on_signal = tx.clone();
    ctrlc::set_handler(move || {
        let _ = on_signal.send(Input::Interrupt);
    })?;
    for node in supervisor.nodes.values_mut() {
        node.start()
            .map_err(|e| format!("cannot start node {}: {e}", node.id()))?;
    }
    print_banner(&supervisor.layout, &supervisor.args, &supervisor.nodes);
    // The console is not read yet, so only Ctrl-C arrives on `rx` meanwhile.
    let interrupted = |wait| matches!(rx.recv_timeout(wait), Ok(Input::Interrupt));
    settle_leader(&supervisor.layout, &interrupted);
    spawn_console_reader(tx)?;

    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(Input::Line(line)) => match console::parse(&line, &supervisor.layout.ids()) {
                Ok(Some(ConsoleCommand::Quit)) => break,
                Ok(Some(command)) => supervisor.execute(command),
                Ok(None) => {}
                Err(reason) => println!("{reason}"),
            },
            Ok(Input::ConsoleClosed) => {
                println!("(stdin closed: the cluster runs until Ctrl-C or SIGTERM)");
            }
            Ok(Input::Interrupt) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        report_exits(&mut supervisor.nodes);
    }
    stop_all(&mut supervisor.nodes);
    Ok(())
}

/// The local cluster: where its nodes are, the processes of those that run here, and
/// the options new ones get.
struct Supervisor {
    layout: Layout,
    /// The nodes started here, by id (nodes added with explicit addresses run
    /// elsewhere and have none).
    nodes: BTreeMap<u64, NodeProcess>,
    exe: PathBuf,
    args: ClusterArgs,
}

impl Supervisor {
    /// The cluster of `args`, or the membership saved in the data directory by an
    /// earlier run that added or removed nodes.
    fn new(args: ClusterArgs) -> Result<Supervisor, Box<dyn std::error::Error>> {
        let exe = std::env::current_exe()?;
        let mut supervisor = Supervisor {
            layout: Layout { nodes: Vec::new() },
            nodes: BTreeMap::new(),
            exe,
            args,
        };
        let saved_path = saved_membership_path(&supervisor.args.data_dir);
        if let Some(saved) = SavedMembership::load(&saved_path)? {
            if saved.nodes.is_empty() {
                return Err(format!("{} names no node", saved_path.display()).into());
            }
            println!(
                "kv-example: resuming the membership saved in {} (nodes {:?})",
                saved_path.display(),
                saved.nodes.iter().map(|n| n.id).collect::<Vec<_>>()
            );
            for node in saved.nodes {
                let spec = NodeSpec {
                    id: node.id,
                    raft_addr: node.raft_addr,
                    client_addr: node.client_addr,
                    http_addr: node.http_addr,
                    data_dir: node.data_dir,
                };
                if let Some(node_args) = node.args {
                    supervisor.adopt(node.id, node_args);
                }
                supervisor.layout.insert(spec);
            }
            supervisor.issue_certificates(&supervisor.layout.ids())?;
            return Ok(supervisor);
        }
        supervisor.layout = Layout::consecutive(
            supervisor.args.nodes,
            &supervisor.args.host,
            supervisor.first_ports(),
            &supervisor.args.data_dir,
        )?;
        supervisor.issue_certificates(&supervisor.layout.ids())?;
        let options = supervisor.node_options(false);
        for id in supervisor.layout.ids() {
            let node_args = supervisor.layout.node_args(id, &options);
            supervisor.adopt(id, node_args);
        }
        Ok(supervisor)
    }

    fn first_ports(&self) -> (u16, u16, u16) {
        (
            self.args.raft_port,
            self.args.client_port,
            self.args.http_port,
        )
    }

    fn node_options(&self, join: bool) -> NodeOptions {
        NodeOptions {
            no_fsync: self.args.no_fsync,
            join,
            extra_args: self
                .args
                .read_lease
                .then(|| "--read-lease".to_string())
                .into_iter()
                .collect(),
            tls_dir: self.args.tls.then(|| tls_dir(&self.args.data_dir)),
        }
    }

    /// With `--tls`, makes sure nodes `ids` have certificates from the cluster's
    /// throwaway CA (made first if there is none).
    fn issue_certificates(&self, ids: &[u64]) -> Result<(), String> {
        if !self.args.tls {
            return Ok(());
        }
        let ca = LocalCa::open_or_create(&tls_dir(&self.args.data_dir))?;
        for id in ids {
            ca.node_files(*id, std::slice::from_ref(&self.args.host))?;
        }
        Ok(())
    }

    /// Registers (without starting) the process of node `id`.
    fn adopt(&mut self, id: u64, node_args: Vec<String>) -> &mut NodeProcess {
        let mut process = NodeProcess::new(id, &self.exe, node_args);
        if !self.args.verbose {
            process = process.log_to(self.args.data_dir.join(format!("node{id}.log")));
        }
        self.nodes.insert(id, process);
        self.nodes.get_mut(&id).expect("just inserted")
    }

    /// The process of node `id`, or why there is none.
    fn local(&mut self, id: u64) -> Option<&mut NodeProcess> {
        let node = self.nodes.get_mut(&id);
        if node.is_none() {
            println!("node {id} does not run here (it was added with its own addresses)");
        }
        node
    }

    fn execute(&mut self, command: ConsoleCommand) {
        match command {
            ConsoleCommand::Status => print_status(&self.layout, &mut self.nodes),
            ConsoleCommand::Help => println!("{}", console::HELP),
            ConsoleCommand::Quit => {}
            ConsoleCommand::Stop(target) => {
                if let Some(node) = resolve(target, &self.layout).and_then(|id| self.local(id)) {
                    stop(node);
                }
            }
            ConsoleCommand::Start(id) => {
                if let Some(node) = self.local(id) {
                    start(node);
                }
            }
            ConsoleCommand::Snapshot(target) => {
                let ids: Vec<u64> = match target {
                    // Every running node: local ones that run, and those elsewhere.
                    None => self
                        .layout
                        .ids()
                        .into_iter()
                        .filter(|id| self.nodes.get_mut(id).is_none_or(|n| n.is_running()))
                        .collect(),
                    Some(target) => resolve(target, &self.layout).into_iter().collect(),
                };
                for id in ids {
                    snapshot(id, &self.layout);
                }
            }
            ConsoleCommand::Restart(target) => {
                if let Some(node) = resolve(target, &self.layout).and_then(|id| self.local(id)) {
                    stop(node);
                    start(node);
                }
            }
            ConsoleCommand::Kill(target) => {
                if let Some(node) = resolve(target, &self.layout).and_then(|id| self.local(id)) {
                    kill(node);
                }
            }
            ConsoleCommand::AddNode { id, addrs: None } => self.add_local_node(id),
            ConsoleCommand::AddNode {
                id,
                addrs: Some(addrs),
            } => {
                let spec = NodeSpec {
                    id,
                    raft_addr: addrs.raft,
                    client_addr: addrs.client,
                    http_addr: addrs.http,
                    data_dir: PathBuf::new(),
                };
                if self.add_to_cluster(&spec).is_ok() {
                    self.layout.insert(spec);
                    self.save();
                }
            }
            ConsoleCommand::RemoveNode(id) => self.remove_node(id),
            ConsoleCommand::Transfer(id) => leader::transfer(&self.layout, id),
        }
    }

    /// Starts node `id` here, waiting to join, on the port scheme's addresses, and
    /// asks the leader to add it. If that fails, the process is stopped again.
    fn add_local_node(&mut self, id: u64) {
        if self.nodes.get_mut(&id).is_some_and(NodeProcess::is_running) {
            println!("node {id} is already running");
            return;
        }
        let spec = match Layout::consecutive_node(
            id,
            &self.args.host,
            self.first_ports(),
            &self.args.data_dir,
        ) {
            Ok(spec) => spec,
            Err(e) => return println!("cannot place node {id}: {e}"),
        };
        if let Err(e) = self.issue_certificates(&[id]) {
            return println!("cannot issue node {id}'s certificate: {e}");
        }
        let mut joined = self.layout.clone();
        joined.insert(spec.clone());
        let node_args = joined.node_args(id, &self.node_options(true));
        let node = self.adopt(id, node_args);
        if let Err(e) = node.start() {
            self.nodes.remove(&id);
            return println!("cannot start node {id}: {e}");
        }
        println!(
            "node {id} started (pid {}), waiting to join",
            node.pid().unwrap_or_default()
        );
        let serving = wait_until(START_WAIT_MAX, || query_status(&spec.client_addr).is_ok());
        if serving && self.add_to_cluster(&spec).is_ok() {
            self.layout = joined;
            self.save();
            return;
        }
        if !serving {
            println!("node {id} did not start serving; stopping it");
        }
        if let Some(mut node) = self.nodes.remove(&id) {
            stop(&mut node);
        }
    }

    /// Asks the leader to add the node of `spec` (learner, catch-up, voter).
    fn add_to_cluster(&self, spec: &NodeSpec) -> Result<(), ()> {
        let line = format!(
            "add-node {} {} {} {}",
            spec.id, spec.raft_addr, spec.client_addr, spec.http_addr
        );
        println!(
            "adding node {}: as a learner, then a voter once it has caught up...",
            spec.id
        );
        match ask_leader(&self.layout, &line, MEMBERSHIP_REQUEST_TIMEOUT) {
            Ok(text) => {
                println!("node {} added: {text}", spec.id);
                Ok(())
            }
            Err(reason) => {
                println!(
                    "node {} was not added: {reason} (if it became a learner, \
                     `remove-node {}` undoes that)",
                    spec.id, spec.id
                );
                Err(())
            }
        }
    }

    /// Asks the leader to remove node `id`; once the removal has committed, stops
    /// its process if it runs here.
    fn remove_node(&mut self, id: u64) {
        let line = format!("remove-node {id}");
        match ask_leader(&self.layout, &line, MEMBERSHIP_REQUEST_TIMEOUT) {
            Ok(text) => println!("node {id} removed: {text}"),
            Err(reason) => return println!("node {id} was not removed: {reason}"),
        }
        if let Some(mut node) = self.nodes.remove(&id) {
            stop(&mut node);
        }
        self.layout.remove(id);
        self.save();
    }

    /// Saves the membership, so that the next run starts the nodes that are members
    /// (with the arguments they were first started with) and no others.
    fn save(&self) {
        let nodes = self
            .layout
            .nodes
            .iter()
            .map(|spec| SavedNode {
                id: spec.id,
                raft_addr: spec.raft_addr.clone(),
                client_addr: spec.client_addr.clone(),
                http_addr: spec.http_addr.clone(),
                data_dir: spec.data_dir.clone(),
                args: self.nodes.get(&spec.id).map(|n| n.args().to_vec()),
            })
            .collect();
        let path = saved_membership_path(&self.args.data_dir);
        if let Err(e) = (SavedMembership { nodes }).store(&path) {
            println!("cannot save the membership to {}: {e}", path.display());
        }
    }
}

/// Polls `condition` every 100 ms for at most `max`; whether it came true.
fn wait_until(max: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + max;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn print_banner(layout: &Layout, args: &ClusterArgs, nodes: &BTreeMap<u64, NodeProcess>) {
    let data_dir = &args.data_dir;
    let http = if args.tls { "https" } else { "http" };
    // curl must trust the throwaway CA.
    let curl = if args.tls {
        format!(
            "curl --cacert {}",
            tls_dir(data_dir).join("ca.pem").display()
        )
    } else {
        "curl".to_string()
    };
    println!(
        "kv-example: a {}-node Raft cluster on this machine, one process per node, data in {}",
        layout.nodes.len(),
        data_dir.display()
    );
    for spec in &layout.nodes {
        let pid = match nodes.get(&spec.id) {
            Some(node) => node.pid().map_or(String::new(), |p| format!("pid {p}")),
            None => "(runs elsewhere)".to_string(),
        };
        println!(
            "  node {}: text {:<16} {http} {http}://{:<16} raft {:<16} {pid}",
            spec.id, spec.client_addr, spec.http_addr, spec.raft_addr
        );
    }
    let first = &layout.nodes[0];
    let (host, port) = first
        .client_addr
        .rsplit_once(':')
        .unwrap_or(("127.0.0.1", "8001"));
    println!();
    println!("Talk to it:  nc {host} {port}      then   put 1 bar | get 1 | del 1 | get --stale 1 | status");
    println!(
        "             {curl} -X PUT -d bar {http}://{}/kv/1 ; {curl} {http}://{}/kv/1 ; {curl} {http}://{}/status",
        first.http_addr,
        layout.nodes.last().map_or(&first.http_addr, |n| &n.http_addr),
        first.http_addr
    );
    if args.tls {
        println!(
            "TLS:         between the nodes (mutual, certificates in {}); HTTPS on the http ports; the text protocol is plain",
            tls_dir(data_dir).display()
        );
    }
    if !args.verbose {
        println!(
            "Node logs:   {}/nodeN.log (or start with --verbose)",
            data_dir.display()
        );
    }
    println!("{}", console::HELP);
    println!();
}

fn spawn_console_reader(tx: mpsc::Sender<Input>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("console".into())
        .spawn(move || {
            let stdin = std::io::stdin();
            for line in stdin.lock().lines() {
                let Ok(line) = line else { break };
                if tx.send(Input::Line(line)).is_err() {
                    return;
                }
            }
            let _ = tx.send(Input::ConsoleClosed);
        })
        .map(drop)
}

fn resolve(target: Target, layout: &Layout) -> Option<u64> {
    match target {
        Target::Node(id) => Some(id),
        Target::Leader => {
            let found = find_leader(layout).map(|(id, _)| id);
            if found.is_none() {
                println!("no node says it leads right now");
            }
            found
        }
    }
}

fn stop(node: &mut NodeProcess) {
    let id = node.id();
    match node.stop(STOP_GRACE) {
        Ok(Stopped::NotRunning) => println!("node {id} is not running"),
        Ok(Stopped::Exited(status)) => println!("node {id} stopped ({status})"),
        Ok(Stopped::Killed) => println!(
            "node {id} did not stop within {} s and was killed",
            STOP_GRACE.as_secs()
        ),
        Err(e) => println!("cannot stop node {id}: {e}"),
    }
}

fn start(node: &mut NodeProcess) {
    let id = node.id();
    match node.start() {
        Ok(()) => println!("node {id} started (pid {})", node.pid().unwrap_or_default()),
        Err(e) => println!("cannot start node {id}: {e}"),
    }
}

fn kill(node: &mut NodeProcess) {
    let id = node.id();
    if !node.is_running() {
        println!("node {id} is not running");
        return;
    }
    match node.kill() {
        Ok(()) => println!("node {id} killed (SIGKILL)"),
        Err(e) => println!("cannot kill node {id}: {e}"),
    }
}

fn snapshot(id: u64, layout: &Layout) {
    let Some(spec) = layout.node(id) else {
        return println!("node {id} is not in the cluster");
    };
    let answer = TextClient::connect(&spec.client_addr, STATUS_TIMEOUT)
        .and_then(|mut c| c.request("snapshot"));
    match answer {
        Ok(Answer::Ok(text)) => println!("node {id}: {text}"),
        Ok(Answer::Error(reason)) => println!("node {id}: no snapshot: {reason}"),
        Err(e) => println!("node {id}: no answer: {e}"),
    }
}

fn print_status(layout: &Layout, nodes: &mut BTreeMap<u64, NodeProcess>) {
    for spec in &layout.nodes {
        let pid = match nodes.get_mut(&spec.id) {
            Some(node) => {
                if !node.is_running() {
                    println!("node {}: not running", spec.id);
                    continue;
                }
                format!("pid {}", node.pid().unwrap_or_default())
            }
            None => "elsewhere".to_string(),
        };
        match query_status(&spec.client_addr) {
            Ok(line) => println!("node {} ({pid}): {line}", spec.id),
            Err(e) => println!("node {} ({pid}): running, no answer: {e}", spec.id),
        }
    }
}

/// Tells about nodes that exited by themselves (crashed, or failed to start).
fn report_exits(nodes: &mut BTreeMap<u64, NodeProcess>) {
    for node in nodes.values_mut() {
        if let Some(status) = node.try_exit() {
            let log = node
                .log_path()
                .map_or(String::new(), |p| format!("; see {}", p.display()));
            println!("node {} exited ({status}){log}", node.id());
        }
    }
}

fn stop_all(nodes: &mut BTreeMap<u64, NodeProcess>) {
    println!("stopping every node...");
    // Ask them all first, so that they stop in parallel.
    for node in nodes.values_mut() {
        node.request_stop();
    }
    for node in nodes.values_mut() {
        match node.stop(STOP_GRACE) {
            Ok(Stopped::NotRunning) => {}
            Ok(Stopped::Exited(status)) => println!("node {} stopped ({status})", node.id()),
            Ok(Stopped::Killed) => println!("node {} did not stop in time; killed", node.id()),
            Err(e) => println!("cannot stop node {}: {e}", node.id()),
        }
    }
}
