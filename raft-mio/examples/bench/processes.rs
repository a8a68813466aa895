//! The cluster as three processes: this bench, started again once per node with
//! `--node-id`, the client in node 1's process. The parent reads every process's CPU
//! from /proc and talks to the nodes over their stdin and stdout:
//!
//! - a node answers `metrics` with `metrics <fdatasyncs so far>`;
//! - node 1, once it leads and has warmed up, says `ready` and waits for `go`; after
//!   the measured run it says `end`, waits for `go` again (every thread still runs
//!   while the parent reads the CPU), then says `run <commits> <elapsed ns>` and the
//!   latencies, `latency <ns>...` in lines of sorted values, and `done`;
//! - a node shuts down cleanly when its stdin closes.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Lines, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use raft_core::{NodeId, RoleKind};
use raft_mio::transport::tls::TlsSettings;
use raft_mio::Client;

use crate::cpu::CpuByRole;
use crate::load::{self, Run};
use crate::{pki, Measured, Options};

const NODES: u64 = 3;
const LATENCIES_PER_LINE: usize = 4096;

/// One node process and its pipes.
struct NodeProcess {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl NodeProcess {
    fn say(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("a node process reads its stdin");
    }

    fn hear(&mut self) -> String {
        self.lines
            .next()
            .expect("a node process answers")
            .expect("a node process's stdout")
    }

    fn fsyncs(&mut self) -> u64 {
        self.say("metrics");
        let answer = self.hear();
        answer
            .strip_prefix("metrics ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not a metrics line: {answer}"))
    }
}

/// Runs one level on three fresh node processes.
pub fn run_level(options: &Options, inflight: usize) -> Measured {
    let dir = tempfile::tempdir().expect("temp dir");
    // Free ports: bound and released again for the nodes to bind.
    let addrs: Vec<String> = (0..NODES)
        .map(|_| {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("an address").to_string()
        })
        .collect();
    let addrs_arg: Vec<String> = addrs
        .iter()
        .enumerate()
        .map(|(i, addr)| format!("{}={addr}", i + 1))
        .collect();
    if options.tls {
        write_pem_files(dir.path());
    }
    let mut nodes: Vec<NodeProcess> = (1..=NODES)
        .map(|id| spawn_node(options, inflight, id, &addrs_arg.join(","), dir.path()))
        .collect();
    let pids: Vec<Option<u32>> = nodes.iter().map(|n| Some(n.child.id())).collect();
    let heard = nodes[0].hear();
    assert_eq!(heard, "ready", "node 1 did not get ready");
    let cpu_before = CpuByRole::read(&pids, 1);
    let fsyncs_before: u64 = nodes.iter_mut().map(NodeProcess::fsyncs).sum();
    nodes[0].say("go");
    let heard = nodes[0].hear();
    assert_eq!(heard, "end", "node 1 did not finish its run");
    let cpu = CpuByRole::read(&pids, 1).since(&cpu_before);
    let fsyncs = nodes.iter_mut().map(NodeProcess::fsyncs).sum::<u64>() - fsyncs_before;
    nodes[0].say("go");
    let run = read_run(&mut nodes[0]);
    for mut node in nodes {
        drop(node.stdin);
        let status = node.child.wait().expect("a node process exits");
        assert!(status.success(), "a node process failed: {status}");
    }
    Measured { run, cpu, fsyncs }
}

fn spawn_node(options: &Options, inflight: usize, id: u64, addrs: &str, dir: &Path) -> NodeProcess {
    let mut args: Vec<String> = vec![
        format!("--node-id={id}"),
        format!("--addrs={addrs}"),
        format!("--data-dir={}", dir.join(format!("node{id}")).display()),
        format!("--inflight={inflight}"),
        format!("--seconds={}", options.seconds),
        format!("--payload={}", options.payload),
        format!("--fsync-threads={}", options.fsync_threads),
        format!("--snapshot-every={}", options.snapshot_every),
    ];
    if let Some(commits) = options.commits {
        args.push(format!("--commits={commits}"));
    }
    if options.no_fsync {
        args.push("--no-fsync".into());
    }
    if options.tls {
        args.push(format!("--tls-dir={}", dir.display()));
    }
    let mut child = Command::new(std::env::current_exe().expect("the bench's path"))
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start a node process");
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    NodeProcess {
        child,
        stdin,
        lines: BufReader::new(stdout).lines(),
    }
}

fn read_run(node: &mut NodeProcess) -> Run {
    let heard = node.hear();
    let mut fields = heard.strip_prefix("run ").expect("a run line").split(' ');
    let mut number = || -> u64 {
        fields
            .next()
            .and_then(|f| f.parse().ok())
            .expect("a number")
    };
    let commits = number();
    let elapsed = Duration::from_nanos(number());
    let mut latencies_ns = Vec::new();
    loop {
        let heard = node.hear();
        if heard == "done" {
            break;
        }
        let values = heard.strip_prefix("latency ").expect("a latency line");
        latencies_ns.extend(
            values
                .split(' ')
                .map(|v| v.parse::<u64>().expect("a latency")),
        );
    }
    Run {
        commits,
        elapsed,
        latencies_ns,
    }
}

/// A throwaway CA and a certificate for each node, as PEM files in `dir`.
fn write_pem_files(dir: &Path) {
    let pki = pki::TestPki::new("bench CA");
    std::fs::write(dir.join("ca.pem"), pki.ca_pem()).expect("write ca.pem");
    for id in 1..=NODES {
        let (cert, key) = pki.node_cert(NodeId(id));
        std::fs::write(dir.join(format!("node{id}.pem")), cert).expect("write a certificate");
        std::fs::write(dir.join(format!("node{id}.key")), key).expect("write a key");
    }
}

/// The node side: runs node `--node-id` until its stdin closes; node 1 runs the client.
pub fn node_main(options: &Options) {
    let id = NodeId(options.node_id.expect("a node id"));
    let addrs: BTreeMap<NodeId, String> = options
        .addrs
        .as_deref()
        .expect("--addrs")
        .split(',')
        .map(|item| {
            let (id, addr) = item.split_once('=').expect("id=host:port");
            (NodeId(id.parse().expect("a node id")), addr.to_string())
        })
        .collect();
    let tls = options.tls_dir.as_ref().map(|dir| {
        TlsSettings::from_pem_files(
            &dir.join("ca.pem"),
            &dir.join(format!("node{}.pem", id.0)),
            &dir.join(format!("node{}.key", id.0)),
        )
        .expect("the bench's PEM files")
    });
    let data_dir = options.data_dir.clone().expect("--data-dir");
    let config = load::node_config(options, id, &addrs, &data_dir, tls);
    let (client, committed) = raft_mio::run::<load::Command>(config).expect("node starts");
    let app = load::spawn_app(id, committed, client.clone(), options.snapshot_every);
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let stdin_client = client.clone();
    let stdin_reader = std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line.as_deref() {
                Ok("metrics") => {
                    let fsyncs = stdin_client.metrics().map_or(0, |m| m.fsync_latency.count);
                    println!("metrics {fsyncs}");
                }
                Ok("go") => {
                    let _ = go_tx.send(());
                }
                _ => break,
            }
        }
    });
    if id == NodeId(1) {
        wait_to_lead(&client);
        let (run, ()) = load::measure(
            client.clone(),
            options.inflight[0],
            options.payload,
            options.warmup(),
            options.amount(),
            move || {
                println!("ready");
                let _ = go_rx.recv();
                go_rx
            },
            |go_rx, _run| {
                println!("end");
                let _ = go_rx.recv();
            },
        );
        report_run(&run);
    }
    stdin_reader.join().expect("the stdin reader");
    client.shutdown();
    drop(client);
    app.join().expect("the application thread");
}

fn wait_to_lead(client: &Client<load::Command>) {
    let start = Instant::now();
    while client.status().expect("running").role != RoleKind::Leader {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "node 1 did not become the leader"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn report_run(run: &Run) {
    println!("run {} {}", run.commits, run.elapsed.as_nanos());
    for chunk in run.latencies_ns.chunks(LATENCIES_PER_LINE) {
        let values: Vec<String> = chunk.iter().map(u64::to_string).collect();
        println!("latency {}", values.join(" "));
    }
    println!("done");
}
