//! The README session, end to end, through the `kv-example` cluster command itself
//! (started as `cargo run -p kv-example` starts it): three node processes, node 1
//! leading, the nc session verbatim, the console breaking and mending the cluster
//! and moving leadership, Ctrl-C, and a second start that finds every key again.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use kv_example::client::{Answer, TextClient};
use kv_example::layout::Layout;
use support::{exe, wait_for, REQUEST_TIMEOUT, WAIT_MAX};

/// The tests of this file run one at a time: between choosing its free ports and its
/// nodes binding them, a test must not have another test choose the same ones.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Three first ports `p` such that `p` to `p+nodes-1` are all free now (and all the
/// ports distinct): the raft, text and HTTP ports of a cluster of `nodes` nodes.
fn free_port_runs(nodes: u16) -> (u16, u16, u16) {
    let mut held = Vec::new();
    let mut firsts = Vec::new();
    for _ in 0..300 {
        if firsts.len() == 3 {
            return (firsts[0], firsts[1], firsts[2]);
        }
        let first = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = first.local_addr().unwrap().port();
        if port > 65_000 {
            continue;
        }
        let rest: Vec<_> = (1..nodes)
            .filter_map(|i| TcpListener::bind(("127.0.0.1", port + i)).ok())
            .collect();
        if rest.len() == usize::from(nodes - 1) {
            firsts.push(port);
            held.push(first);
            held.extend(rest);
        }
    }
    panic!("no three runs of {nodes} consecutive free ports found");
}

/// `kv-example` (the cluster command) with its console on a pipe.
struct Supervisor {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Supervisor {
    fn start(data: &Path, ports: (u16, u16, u16)) -> Supervisor {
        let mut child = Command::new(exe())
            .args(["--data-dir", &data.display().to_string()])
            .args(["--raft-port", &ports.0.to_string()])
            .args(["--client-port", &ports.1.to_string()])
            .args(["--http-port", &ports.2.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the cluster command");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Supervisor {
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for an output line containing `text`, and returns it.
    fn expect_line(&mut self, text: &str) -> String {
        self.expect_any(&[text])
    }

    /// Waits for an output line containing one of `texts`, and returns it.
    fn expect_any(&mut self, texts: &[&str]) -> String {
        let deadline = Instant::now() + WAIT_MAX;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if texts.iter().any(|text| line.contains(text)) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "the cluster command never printed any of {texts:?}; it printed:\n{}",
            self.seen.join("\n")
        );
    }

    fn console(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().expect("the console is open");
        writeln!(stdin, "{command}").expect("write to the console");
    }

    /// Sends SIGINT, as Ctrl-C in a terminal would, and waits for a clean exit.
    fn interrupt(&mut self) {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::INT).expect("send SIGINT");
        self.expect_exit();
    }

    fn expect_exit(&mut self) {
        let deadline = Instant::now() + WAIT_MAX;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "the cluster command exited with {status}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster command did not exit"
            );
            std::thread::sleep(support::POLL);
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        // Its nodes see their stdin close when it dies, and stop.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ask(addr: &str, line: &str) -> String {
    TextClient::connect(addr, REQUEST_TIMEOUT)
        .and_then(|mut c| c.request_line(line))
        .unwrap_or_else(|e| panic!("{addr} <- {line}: {e}"))
}

/// Parses `node N leads: ...` or `... node=N role=leader ...`.
fn leader_of(line: &str) -> u64 {
    let word = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("leader="))
        .expect("a status line names the leader");
    word.parse().expect("a node id")
}

#[test]
fn the_readme_session_the_console_and_a_restart_of_the_whole_cluster() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ports = free_port_runs(3);
    let layout = Layout::consecutive(3, "127.0.0.1", ports, &data).unwrap();
    let addr = |id: u64| layout.node(id).unwrap().client_addr.clone();

    let mut cluster = Supervisor::start(&data, ports);
    // On a new cluster node 1 campaigns as soon as it reaches a peer, so it leads
    // term 1: the node the banner (and the README) tells you to talk to.
    let announced = cluster.expect_line(" leads: ");
    let (leader, follower) = (1, 2);
    assert_eq!(leader_of(&announced), leader, "{announced}");
    assert!(announced.contains(" term=1 "), "one election: {announced}");
    // Index 1 is its no-op. No address record follows it (every node knows every
    // address from its configuration), so the first write lands at 2.

    // The session of the README, verbatim, on one connection to node 1...
    let mut nc = TextClient::connect(&addr(leader), REQUEST_TIMEOUT).unwrap();
    let answers: Vec<String> = ["put 1 bar", "get 1", "del 1", "get 1"]
        .into_iter()
        .map(|line| nc.request_line(line).unwrap())
        .collect();
    assert_eq!(
        answers,
        [
            "Ok: Appended at 2".to_string(),
            "Ok: bar".to_string(),
            "Ok: Appended at 3".to_string(),
            "Error: value does not exist".to_string(),
        ]
    );
    let put_index = 2;
    // ...and on node 2, which names node 1's client address.
    assert_eq!(
        ask(&addr(follower), "put 1 bar"),
        format!("Error: Leader is {}", addr(leader))
    );
    // Linearizable reads on every node see an acknowledged write at once.
    assert!(nc.request("put 1 bar").unwrap().appended_index().is_some());
    for id in 1..=3 {
        assert_eq!(ask(&addr(id), "get 1"), "Ok: bar", "node {id}");
    }

    // The console: kill a follower, write without it, start it, it catches up.
    cluster.console("status");
    cluster.expect_line(&format!("node={leader} role=leader"));
    cluster.console(&format!("kill {follower}"));
    cluster.expect_line(&format!("node {follower} killed (SIGKILL)"));
    assert!(nc.request("put 2 two").unwrap().appended_index().is_some());
    cluster.console("status");
    cluster.expect_line(&format!("node {follower}: not running"));
    cluster.console(&format!("start {follower}"));
    cluster.expect_line(&format!("node {follower} started"));
    wait_for("the restarted follower to catch up", || {
        let answer = TextClient::connect(&addr(follower), REQUEST_TIMEOUT)
            .and_then(|mut c| c.request_line("get --stale 2"))
            .ok()?;
        (answer == "Ok: two").then_some(())
    });
    // Snapshots on demand, on every running node.
    cluster.console("snapshot");
    for id in 1..=3 {
        cluster.expect_line(&format!("node {id}: snapshot at "));
    }
    // The console moves leadership (asked again if a transfer times out under load).
    let moved = (0..3).any(|_| {
        cluster.console("transfer 3");
        let line = cluster.expect_any(&["node 3 leads", "did not move to node 3"]);
        line == "node 3 leads"
    });
    assert!(moved, "{}", cluster.seen.join("\n"));
    let leader = 3;
    cluster.console("status");
    cluster.expect_line("node=3 role=leader");
    // A clean restart of the leader: someone leads again and takes writes.
    cluster.console("restart leader");
    cluster.expect_line(&format!("node {leader} stopped (exit status: 0)"));
    cluster.expect_line(&format!("node {leader} started"));
    let three = wait_for("a write after the leader's restart", || {
        (1..=3).find_map(|id| {
            let answer = TextClient::connect(&addr(id), REQUEST_TIMEOUT)
                .and_then(|mut c| c.request("put 3 three"))
                .ok()?;
            answer.appended_index()
        })
    });
    assert!(three > put_index);

    // Ctrl-C stops every node cleanly.
    cluster.interrupt();
    for id in 1..=3 {
        cluster.expect_line(&format!("node {id} stopped (exit status: 0)"));
    }
    drop(cluster);

    // Started again on the same data, the cluster has every key.
    let mut again = Supervisor::start(&data, ports);
    again.expect_line(" leads: ");
    for id in 1..=3 {
        for (key, value) in [("1", "bar"), ("2", "two"), ("3", "three")] {
            let answer = wait_for("a linearizable read after the restart", || {
                match TextClient::connect(&addr(id), REQUEST_TIMEOUT)
                    .and_then(|mut c| c.request(&format!("get {key}")))
                    .ok()?
                {
                    Answer::Ok(v) => Some(v),
                    Answer::Error(e) if e == "value does not exist" => Some(e),
                    // No leader confirmed yet: ask again.
                    Answer::Error(_) => None,
                }
            });
            assert_eq!(answer, value, "node {id}, key {key}");
        }
    }
    again.console("quit");
    again.expect_exit();
}

#[test]
fn the_console_adds_and_removes_nodes_and_the_next_run_keeps_the_membership() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ports = free_port_runs(4);
    let layout = Layout::consecutive(4, "127.0.0.1", ports, &data).unwrap();
    let addr = |id: u64| layout.node(id).unwrap().client_addr.clone();

    let mut cluster = Supervisor::start(&data, ports);
    let leader = leader_of(&cluster.expect_line(" leads: "));
    assert!(ask(&addr(leader), "put k v").starts_with("Ok: Appended at "));

    // A fourth process on the port scheme joins: learner, catch-up, voter.
    cluster.console("add-node 4");
    cluster.expect_line("node 4 started");
    cluster.expect_line("node 4 added: node 4 is a voter; voters=1,2,3,4 learners=-");
    // Until node 4 knows the leader, a read may not be confirmed: ask again.
    let read_on_four = || {
        wait_for("a linearizable read of k=v on node 4", || {
            (ask(&addr(4), "get k") == "Ok: v").then_some(())
        })
    };
    read_on_four();
    // A founder leaves (whichever leads): its process stops once the removal commits.
    cluster.console("remove-node 1");
    cluster.expect_line("node 1 removed: node 1 is removed; voters=2,3,4 learners=-");
    cluster.expect_line("node 1 stopped (exit status: 0)");
    cluster.console("status");
    for id in 2..=4 {
        cluster.expect_line(&format!("node={id} "));
    }
    cluster.interrupt();
    drop(cluster);

    // The next run starts the members, and only them.
    let mut again = Supervisor::start(&data, ports);
    again.expect_line("resuming the membership saved in");
    again.expect_line(" leads: ");
    read_on_four();
    assert!(
        TextClient::connect(&addr(1), REQUEST_TIMEOUT).is_err(),
        "the removed node was started again"
    );
    again.console("quit");
    again.expect_exit();
}
