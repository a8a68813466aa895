//! Snapshots end to end: the application hands its state to the node, whole log
//! segments below it are deleted, a restarted node starts from the snapshot, and a
//! follower that fell behind the compacted log is brought back by InstallSnapshot.

mod support;

use std::fs;
use std::path::Path;

use raft_core::NodeId;
use support::{compact, wait_until, Cluster, Cmd};

fn segment_count(dir: &Path) -> usize {
    fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("log-")
        })
        .count()
}

#[test]
fn snapshots_compact_the_log_and_bring_back_a_lagging_follower() {
    // Small segments, so that a snapshot frees whole files.
    let mut cluster = Cluster::start_with(3, |mut c| {
        c.storage.segment_bytes_max = 4096;
        c
    });
    let mut expected: Vec<Cmd> = (0..200).map(Cmd).collect();
    for cmd in &expected {
        cluster.append(cmd.clone());
    }
    cluster.wait_for_applied(&expected);
    let lagging = NodeId(3);
    cluster.stop(lagging);

    for i in 200..400 {
        cluster.append(Cmd(i));
        expected.push(Cmd(i));
    }
    cluster.wait_for_applied(&expected);
    let segments_before = segment_count(&cluster.data_dir(NodeId(1)));
    assert!(
        segments_before >= 2,
        "the test needs the log to span segments"
    );
    for node in cluster.nodes.values() {
        compact(node);
    }
    let segments_after = segment_count(&cluster.data_dir(NodeId(1)));
    assert!(
        segments_after < segments_before,
        "segments {segments_before} -> {segments_after}"
    );

    // Node 3 needs entries the others compacted away: it must install a snapshot.
    cluster.launch(lagging, None);
    for i in 400..410 {
        cluster.append(Cmd(i));
        expected.push(Cmd(i));
    }
    cluster.wait_for_applied(&expected);
    wait_until("node 3 holds the snapshot", || {
        cluster.node(lagging).status().snapshot_index.0 > 0
    });
    let metrics = cluster.node(lagging).client.metrics().unwrap();
    assert_eq!(metrics.snapshots_installed, 1, "{metrics:?}");
    assert_eq!(
        metrics.snapshots_written, 1,
        "the install is written to disk"
    );
    let leader_metrics = cluster.node(NodeId(1)).client.metrics().unwrap();
    assert_eq!(leader_metrics.snapshots_installed, 0);
    assert_eq!(leader_metrics.snapshots_written, 1, "its own compaction");

    // A restart starts from the snapshot and replays only the log after it.
    cluster.stop(NodeId(1));
    cluster.launch(NodeId(1), None);
    cluster.wait_for_applied(&expected);
    cluster.shutdown();
}
