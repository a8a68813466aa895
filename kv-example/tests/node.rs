//! `kv-example node` as a container runs it: configured only through `KV_*`
//! environment variables, stopped with SIGTERM; and a bad configuration refused with
//! a reason.

mod support;

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Instant;

use kv_example::client::TextClient;
use support::{exe, wait_for, POLL, REQUEST_TIMEOUT, WAIT_MAX};

fn free_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

#[test]
fn a_node_configured_by_environment_serves_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (raft, client, http) = (free_addr(), free_addr(), free_addr());
    let mut node = Command::new(exe())
        .arg("node")
        .env("KV_ID", "1")
        .env("KV_PEERS", format!("1={raft}"))
        .env("KV_CLIENT_ADDR", &client)
        .env("KV_HTTP_ADDR", &http)
        .env("KV_DATA_DIR", dir.path().join("node1"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // A cluster of one elects itself and serves.
    let answer = wait_for("the single node to take a write", || {
        let mut c = TextClient::connect(&client, REQUEST_TIMEOUT).ok()?;
        c.request("put k v").ok()?.appended_index()
    });
    assert!(answer >= 1);
    let mut c = TextClient::connect(&client, REQUEST_TIMEOUT).unwrap();
    assert_eq!(c.request_line("get k").unwrap(), "Ok: v");

    let pid = rustix::process::Pid::from_child(&node);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let deadline = Instant::now() + WAIT_MAX;
    let status = loop {
        if let Some(status) = node.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the node ignored SIGTERM");
        std::thread::sleep(POLL);
    };
    assert!(status.success(), "{status}");
}

#[test]
fn a_node_that_is_not_among_its_peers_refuses_to_start_and_says_why() {
    let output = Command::new(exe())
        .args([
            "node",
            "--id",
            "4",
            "--peers",
            "1=127.0.0.1:1,2=127.0.0.1:2",
        ])
        .args(["--client-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
        .env_remove("KV_ID")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--id 4 is not among --peers"), "{stderr}");
}

#[test]
fn a_write_over_the_command_limit_is_refused_and_nothing_is_appended() {
    let dir = tempfile::tempdir().unwrap();
    let (raft, client, http) = (free_addr(), free_addr(), free_addr());
    let mut node = kv_example::process::NodeProcess::new(
        1,
        exe(),
        [
            "node",
            "--id",
            "1",
            "--peers",
            &format!("1={raft}"),
            "--client-addr",
            &client,
            "--http-addr",
            &http,
            "--command-bytes-max",
            "1024",
            "--exit-on-stdin-eof",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([
            "--data-dir".into(),
            dir.path().join("n1").display().to_string(),
        ])
        .collect(),
    )
    .log_to(dir.path().join("n1.log"));
    node.start().unwrap();
    wait_for("the single node to take a write", || {
        let mut c = TextClient::connect(&client, REQUEST_TIMEOUT).ok()?;
        c.request("put k v").ok()?.appended_index()
    });
    let last_index = || {
        let status = support::http::request_plain(&http, "GET", "/status", None).unwrap();
        let json: serde_json::Value = serde_json::from_str(&status.body).unwrap();
        json["last_index"].as_u64().unwrap()
    };
    let before = last_index();
    let mut c = TextClient::connect(&client, REQUEST_TIMEOUT).unwrap();
    let answer = c
        .request_line(&format!("put big {}", "x".repeat(2000)))
        .unwrap();
    assert!(
        answer.starts_with("Error: the write is ")
            && answer.contains("over this node's limit of 1024 bytes")
            && answer.contains("not applied"),
        "{answer}"
    );
    let put =
        support::http::request_plain(&http, "PUT", "/kv/big", Some(&"y".repeat(2000))).unwrap();
    assert_eq!(put.status, 413, "{put:?}");
    assert_eq!(last_index(), before, "nothing was appended");
    assert_eq!(
        c.request_line("get big").unwrap(),
        "Error: value does not exist"
    );
    let stopped = node.stop(WAIT_MAX).unwrap();
    assert!(
        matches!(stopped, kv_example::process::Stopped::Exited(s) if s.success()),
        "{stopped:?}"
    );
}
