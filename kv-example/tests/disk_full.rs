//! A full disk is fail-stop too, with a real ENOSPC: each node runs in a mount
//! namespace of its own (`unshare --mount`) with its data directory on a small
//! tmpfs, so the host's disks are never touched. Once the disk is full under a log
//! append, or under a snapshot, the node exits with status 1 and says the disk is
//! full; the write it could not make durable is answered "fate unknown".
//!
//! Needs root and `unshare` (util-linux); without them the test prints `SKIPPED` and
//! why. CI runs as root.

mod support;

use std::process::Command;
use std::time::Instant;

use kv_example::client::TextClient;
use kv_example::layout::{Layout, NodeOptions};
use support::{Cluster, POLL, WAIT_MAX};

/// Why a tmpfs cannot be mounted in a private mount namespace here, if it cannot.
fn tmpfs_unavailable() -> Option<String> {
    let probe = tempfile::tempdir().ok()?;
    let script = "mount -t tmpfs -o size=64k tmpfs \"$0\"";
    let mounted = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .arg(probe.path())
        .output();
    match mounted {
        Ok(output) if output.status.success() => None,
        Ok(output) => Some(format!(
            "cannot mount a tmpfs in a mount namespace (root needed): {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(e) => Some(format!("cannot run unshare (util-linux): {e}")),
    }
}

/// A one-node cluster whose data directory is a tmpfs of `size` in the node's own
/// mount namespace.
fn node_on_a_small_disk(size: &str) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::free_local_ports(1, dir.path()).unwrap();
    let data_dir = layout.nodes[0].data_dir.clone();
    std::fs::create_dir_all(&data_dir).unwrap();
    let script = format!("mount -t tmpfs -o size={size} tmpfs \"$0\" && exec \"$@\"");
    let wrapper: Vec<String> = ["unshare", "--mount", "--propagation", "private", "sh", "-c"]
        .iter()
        .map(|s| s.to_string())
        .chain([script, data_dir.display().to_string()])
        .collect();
    Cluster::start_with(layout, dir, NodeOptions::default(), move |_| {
        wrapper.clone()
    })
}

/// Waits until node 1 exits; its status code and its log.
fn wait_for_exit(cluster: &mut Cluster) -> (Option<i32>, String) {
    let deadline = Instant::now() + WAIT_MAX;
    let status = loop {
        if let Some(status) = cluster.node(1).try_exit() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the node stayed up on a full disk"
        );
        std::thread::sleep(POLL);
    };
    let log = std::fs::read_to_string(cluster.dir.path().join("node1.log")).unwrap();
    if let Some(last) = log.lines().rfind(|l| l.starts_with("kv-example: ")) {
        eprintln!("{last}");
    }
    (status.code(), log)
}

fn value(i: u64) -> String {
    format!("{i}-{}", "v".repeat(16_000))
}

#[test]
fn a_disk_that_fills_under_the_log_stops_the_node_with_a_clear_message() {
    if let Some(why) = tmpfs_unavailable() {
        eprintln!("SKIPPED a_disk_that_fills_under_the_log...: {why}");
        return;
    }
    let mut cluster = node_on_a_small_disk("1m");
    let mut client = TextClient::connect(cluster.client_addr(1), WAIT_MAX).unwrap();
    // About sixty 16 KB writes fill 1 MiB; each is bounded by the request timeout.
    let mut last = String::new();
    for i in 0..500 {
        match client.request_line(&format!("put --req 9:{} k{i} {}", i + 1, value(i))) {
            Ok(answer) if answer.starts_with("Ok: Appended at ") => continue,
            Ok(answer) => last = answer,
            Err(e) => last = e.to_string(),
        }
        break;
    }
    assert!(
        last.contains("fate is unknown"),
        "the write that hit ENOSPC: {last}"
    );
    let (code, log) = wait_for_exit(&mut cluster);
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("No space left on device"), "{log}");
    assert!(log.contains("the disk is full"), "{log}");
    assert!(log.contains(".seg"), "names the segment: {log}");
}

#[test]
fn a_disk_too_full_for_a_snapshot_stops_the_node_with_a_clear_message() {
    if let Some(why) = tmpfs_unavailable() {
        eprintln!("SKIPPED a_disk_too_full_for_a_snapshot...: {why}");
        return;
    }
    // The log takes about 60% of the disk: a snapshot of the same data cannot fit.
    let mut cluster = node_on_a_small_disk("2m");
    let mut client = TextClient::connect(cluster.client_addr(1), WAIT_MAX).unwrap();
    for i in 0..75 {
        let answer = client
            .request_line(&format!("put k{i} {}", value(i)))
            .unwrap();
        assert!(answer.starts_with("Ok: Appended at "), "{answer}");
    }
    let answer = client.request_line("snapshot").unwrap();
    assert!(answer.starts_with("Ok: snapshot at "), "{answer}");
    let (code, log) = wait_for_exit(&mut cluster);
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("snapshot-"), "names the snapshot file: {log}");
    assert!(log.contains("No space left on device"), "{log}");
    assert!(log.contains("the disk is full"), "{log}");
}
