//! `kv-example` with no subcommand: a local cluster of node processes (this binary
//! re-executed as `kv-example node ...`), a banner that says where to connect, and a
//! console on stdin to stop, start, restart and kill nodes. Ctrl-C (or `quit`) stops
//! every node cleanly; starting again recovers every key from the data directory.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::cli::ClusterArgs;
use crate::client::{Answer, TextClient};
use crate::console::{self, ConsoleCommand, Target};
use crate::layout::{Layout, NodeOptions};
use crate::process::{NodeProcess, Stopped};

/// How long a node may take to stop cleanly before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long a status query may take per node.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the start-up waits for a leader before showing the console anyway.
const LEADER_WAIT_MAX: Duration = Duration::from_secs(10);

/// What the supervisor loop reacts to.
enum Input {
    Line(String),
    ConsoleClosed,
    Interrupt,
}

/// Runs the local cluster until Ctrl-C, SIGTERM or `quit`.
pub fn run(args: ClusterArgs) -> Result<(), Box<dyn std::error::Error>> {
    let layout = Layout::consecutive(
        args.nodes,
        &args.host,
        (args.raft_port, args.client_port, args.http_port),
        &args.data_dir,
    )?;
    std::fs::create_dir_all(&args.data_dir)?;
    let exe = std::env::current_exe()?;
    let options = NodeOptions {
        no_fsync: args.no_fsync,
        extra_args: Vec::new(),
    };
    let mut nodes: BTreeMap<u64, NodeProcess> = BTreeMap::new();
    for spec in &layout.nodes {
        let mut process = NodeProcess::new(spec.id, &exe, layout.node_args(spec.id, &options));
        if !args.verbose {
            process = process.log_to(args.data_dir.join(format!("node{}.log", spec.id)));
        }
        nodes.insert(spec.id, process);
    }

    let (tx, rx) = mpsc::channel();
    let on_signal = tx.clone();
    ctrlc::set_handler(move || {
        let _ = on_signal.send(Input::Interrupt);
    })?;
    for node in nodes.values_mut() {
        node.start()
            .map_err(|e| format!("cannot start node {}: {e}", node.id()))?;
    }
    print_banner(&layout, &args.data_dir, args.verbose, &nodes);
    announce_leader(&layout, &rx);
    spawn_console_reader(tx)?;

    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(Input::Line(line)) => match console::parse(&line, &layout.ids()) {
                Ok(Some(ConsoleCommand::Quit)) => break,
                Ok(Some(command)) => execute(command, &layout, &mut nodes),
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
        report_exits(&mut nodes);
    }
    stop_all(&mut nodes);
    Ok(())
}

fn print_banner(
    layout: &Layout,
    data_dir: &Path,
    verbose: bool,
    nodes: &BTreeMap<u64, NodeProcess>,
) {
    println!(
        "kv-example: a {}-node Raft cluster on this machine, one process per node, data in {}",
        layout.nodes.len(),
        data_dir.display()
    );
    for spec in &layout.nodes {
        let pid = nodes[&spec.id]
            .pid()
            .map_or(String::new(), |p| format!("pid {p}"));
        println!(
            "  node {}: text {:<16} http http://{:<16} raft {:<16} {pid}",
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
        "             curl -X PUT -d bar http://{}/kv/1 ; curl http://{}/kv/1 ; curl http://{}/status",
        first.http_addr,
        layout.nodes.last().map_or(&first.http_addr, |n| &n.http_addr),
        first.http_addr
    );
    if !verbose {
        println!(
            "Node logs:   {}/nodeN.log (or start with --verbose)",
            data_dir.display()
        );
    }
    println!("{}", console::HELP);
    println!();
}

/// Waits (bounded) for a leader and says which node it is.
fn announce_leader(layout: &Layout, rx: &mpsc::Receiver<Input>) {
    let deadline = Instant::now() + LEADER_WAIT_MAX;
    while Instant::now() < deadline {
        if let Some((id, line)) = find_leader(layout) {
            println!("node {id} leads: {line}");
            return;
        }
        // Stay responsive to Ctrl-C while waiting.
        if let Ok(Input::Interrupt) = rx.recv_timeout(Duration::from_millis(100)) {
            println!("(interrupted while waiting for a leader; type quit to stop)");
            return;
        }
    }
    println!("no leader yet; `status` shows what each node knows");
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

/// Asks node `spec`'s text front end for its status line.
fn query_status(addr: &str) -> Result<String, String> {
    let mut client = TextClient::connect(addr, STATUS_TIMEOUT).map_err(|e| e.to_string())?;
    match client.request("status").map_err(|e| e.to_string())? {
        Answer::Ok(line) => Ok(line),
        Answer::Error(reason) => Err(reason),
    }
}

/// The node that says it leads, with its status line.
fn find_leader(layout: &Layout) -> Option<(u64, String)> {
    layout.nodes.iter().find_map(|spec| {
        let line = query_status(&spec.client_addr).ok()?;
        line.split_whitespace()
            .any(|w| w == "role=leader")
            .then_some((spec.id, line))
    })
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

fn execute(command: ConsoleCommand, layout: &Layout, nodes: &mut BTreeMap<u64, NodeProcess>) {
    match command {
        ConsoleCommand::Status => print_status(layout, nodes),
        ConsoleCommand::Help => println!("{}", console::HELP),
        ConsoleCommand::Quit => {}
        ConsoleCommand::Stop(target) => {
            if let Some(id) = resolve(target, layout) {
                stop(id, nodes);
            }
        }
        ConsoleCommand::Start(id) => start(id, nodes),
        ConsoleCommand::Snapshot(target) => {
            let ids = match target {
                None => layout.ids(),
                Some(target) => resolve(target, layout).into_iter().collect(),
            };
            for id in ids {
                snapshot(id, layout, nodes);
            }
        }
        ConsoleCommand::Restart(target) => {
            if let Some(id) = resolve(target, layout) {
                stop(id, nodes);
                start(id, nodes);
            }
        }
        ConsoleCommand::Kill(target) => {
            let Some(id) = resolve(target, layout) else {
                return;
            };
            let node = nodes.get_mut(&id).expect("the console checks ids");
            if !node.is_running() {
                println!("node {id} is not running");
                return;
            }
            match node.kill() {
                Ok(()) => println!("node {id} killed (SIGKILL)"),
                Err(e) => println!("cannot kill node {id}: {e}"),
            }
        }
    }
}

fn stop(id: u64, nodes: &mut BTreeMap<u64, NodeProcess>) {
    let node = nodes.get_mut(&id).expect("the console checks ids");
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

fn start(id: u64, nodes: &mut BTreeMap<u64, NodeProcess>) {
    let node = nodes.get_mut(&id).expect("the console checks ids");
    match node.start() {
        Ok(()) => println!("node {id} started (pid {})", node.pid().unwrap_or_default()),
        Err(e) => println!("cannot start node {id}: {e}"),
    }
}

fn snapshot(id: u64, layout: &Layout, nodes: &mut BTreeMap<u64, NodeProcess>) {
    let node = nodes.get_mut(&id).expect("the console checks ids");
    if !node.is_running() {
        println!("node {id} is not running");
        return;
    }
    let addr = &layout.node(id).expect("a node of the layout").client_addr;
    let answer = TextClient::connect(addr, STATUS_TIMEOUT).and_then(|mut c| c.request("snapshot"));
    match answer {
        Ok(Answer::Ok(text)) => println!("node {id}: {text}"),
        Ok(Answer::Error(reason)) => println!("node {id}: no snapshot: {reason}"),
        Err(e) => println!("node {id}: no answer: {e}"),
    }
}

fn print_status(layout: &Layout, nodes: &mut BTreeMap<u64, NodeProcess>) {
    for spec in &layout.nodes {
        let node = nodes.get_mut(&spec.id).expect("one process per node");
        if !node.is_running() {
            println!("node {}: not running", spec.id);
            continue;
        }
        let pid = node.pid().unwrap_or_default();
        match query_status(&spec.client_addr) {
            Ok(line) => println!("node {} (pid {pid}): {line}", spec.id),
            Err(e) => println!("node {} (pid {pid}): running, no answer: {e}", spec.id),
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
