//! Disk faults are fail-stop, and every client is told the truth: a node whose
//! `fdatasync` fails, or whose disk fills up under a log append or a snapshot,
//! stops its loop at once (never retrying the sync), says why through
//! `Client::wait_stopped`, and answers every proposal it had taken with "fate
//! unknown", never "not applied". Faults come from raft-mio's storage fault hook;
//! kv-example's `disk_faults` test makes the real `fdatasync` fail with libfiu.

mod support;

use std::time::Duration;

use raft_core::{LogIndex, NodeId, RoleKind};
use raft_mio::storage::faults::{StorageFaults, EIO, ENOSPC};
use raft_mio::{AppendError, Client, RaftConfig, StopReason, UnknownFate};
use serde::de::DeserializeOwned;
use serde::Serialize;
use support::{wait_until, Cmd, WAIT_MAX};

/// A one-node cluster whose storage faults the test controls; `tweak` adjusts its
/// configuration.
fn lone_node<T: Serialize + DeserializeOwned>(
    dir: &std::path::Path,
    faults: &StorageFaults,
    tweak: impl FnOnce(RaftConfig) -> RaftConfig,
) -> (Client<T>, raft_mio::CommittedStream<T>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut config = RaftConfig::new(NodeId(1), [(NodeId(1), addr)])
        .data_dir(dir)
        .tick_interval(Duration::from_millis(5))
        .listener(listener);
    config.storage.faults = faults.clone();
    let (client, committed) = raft_mio::run::<T>(tweak(config)).expect("node starts");
    wait_until("the lone node leads", || {
        client.status().is_ok_and(|s| s.role == RoleKind::Leader)
    });
    (client, committed)
}

/// The loop's failure, once it has stopped.
fn failure<T: Serialize>(client: &Client<T>) -> String {
    match client.wait_stopped(Some(WAIT_MAX)) {
        Some(StopReason::Failed(e)) => e.to_string(),
        other => panic!("the loop should have failed, not {other:?}"),
    }
}

#[test]
fn a_failed_fdatasync_stops_the_loop_once_and_for_all_without_a_retry() {
    let dir = tempfile::tempdir().unwrap();
    let faults = StorageFaults::new();
    // One fsync thread: every group commit is one fdatasync, so the count is exact.
    let (client, _committed) = lone_node::<Cmd>(dir.path(), &faults, |mut c| {
        c.fsyncs_in_flight_max = 1;
        c
    });
    assert_eq!(client.append_cmd(Cmd(1)).unwrap(), LogIndex(2));
    assert!(client.stop_reason().is_none(), "a healthy loop runs");

    let calls_before = faults.fdatasync_calls();
    faults.fail_fdatasync(EIO);
    let proposal = client.submit(&Cmd(2)).unwrap();
    let why = failure(&client);
    assert!(why.contains("fdatasync"), "{why}");
    assert!(why.contains("Input/output error"), "{why}");
    assert!(why.contains("instead of retrying"), "{why}");
    assert_eq!(
        proposal.wait(),
        Err(AppendError::Unknown(UnknownFate::NodeStopped)),
        "a proposal the loop took may be durable elsewhere: its fate is unknown"
    );
    assert_eq!(
        faults.fdatasync_calls() - calls_before,
        1,
        "the failed fdatasync was the last one: never retried"
    );
    assert!(client.status().is_err());
    assert_eq!(client.append_cmd(Cmd(3)), Err(AppendError::Shutdown));
}

#[test]
fn a_full_disk_under_a_log_append_stops_the_loop_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let faults = StorageFaults::new();
    let (client, _committed) = lone_node::<Cmd>(dir.path(), &faults, |c| c);
    client.append_cmd(Cmd(1)).unwrap();
    faults.fail_log_writes(ENOSPC);
    let answer = client.append_cmd(Cmd(2));
    let why = failure(&client);
    assert!(why.contains("No space left on device"), "{why}");
    assert!(why.contains("the disk is full"), "{why}");
    assert!(why.contains(".seg"), "names the segment: {why}");
    assert_eq!(answer, Err(AppendError::Unknown(UnknownFate::NodeStopped)));
}

#[test]
fn a_full_disk_under_a_snapshot_stops_the_loop_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let faults = StorageFaults::new();
    let (client, mut committed) = lone_node::<Cmd>(dir.path(), &faults, |c| c);
    let index = client.append_cmd(Cmd(1)).unwrap();
    wait_until("the command is applied", || {
        while committed.try_recv().is_ok() {}
        committed.last_index() >= index
    });
    faults.fail_snapshot_writes(ENOSPC);
    client.compact(index, vec![1, 2, 3]).unwrap();
    let why = failure(&client);
    assert!(why.contains("snapshot-"), "names the snapshot file: {why}");
    assert!(why.contains("the disk is full"), "{why}");
    // The node had written nothing wrong: it restarts from what was durable.
    drop(client);
    let (client, _committed) = lone_node::<Cmd>(dir.path(), &StorageFaults::new(), |c| c);
    assert!(client.status().unwrap().last_index >= index);
}

#[test]
fn a_command_over_command_bytes_max_is_refused_and_nothing_is_appended() {
    let dir = tempfile::tempdir().unwrap();
    let (client, _committed) = lone_node::<Vec<u8>>(dir.path(), &StorageFaults::new(), |c| {
        c.command_bytes_max(4096)
    });
    let last_before = client.status().unwrap().last_index;
    // Encoded: raft-mio's tag byte, a two-byte length, the bytes.
    let too_large = client.submit(&vec![0u8; 4094]);
    assert_eq!(
        too_large.unwrap_err(),
        AppendError::TooLarge {
            bytes: 4097,
            max: 4096
        }
    );
    assert_eq!(client.status().unwrap().last_index, last_before);
    let fits = client
        .append_cmd(vec![0u8; 4093])
        .expect("at the bound, it commits");
    assert_eq!(fits, last_before.next());
}

#[test]
fn commands_far_over_msg_bytes_max_replicate_in_frames_that_fit() {
    // Commands of 3 MiB, three times the core's batch limit: each travels alone in
    // a frame under the default frame_bytes_max (16 MiB) and commits on every node.
    let dir = tempfile::tempdir().unwrap();
    let listeners: Vec<_> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let peers: Vec<(NodeId, String)> = (1..=3)
        .map(|i| {
            (
                NodeId(i),
                listeners[i as usize - 1].local_addr().unwrap().to_string(),
            )
        })
        .collect();
    let nodes: Vec<_> = listeners
        .into_iter()
        .zip(1..=3)
        .map(|(listener, i)| {
            let config = RaftConfig::new(NodeId(i), peers.clone())
                .data_dir(dir.path().join(format!("node{i}")))
                // Debug builds take a while over 3 MiB: elections after 0.5 to 1 s.
                .tick_interval(Duration::from_millis(50))
                .listener(listener);
            raft_mio::run::<Vec<u8>>(config).expect("node starts")
        })
        .collect();
    let big = vec![5u8; 3 << 20];
    let mut last = LogIndex(0);
    let mut committed = 0;
    wait_until("two large commands commit", || {
        let leader = nodes
            .iter()
            .find(|(c, _)| c.status().is_ok_and(|s| s.role == RoleKind::Leader));
        let Some((client, _)) = leader else {
            return false;
        };
        // A leader change under the load is fine (the next leader takes them); a
        // command that cannot travel would never commit anywhere.
        match client.append_cmd(big.clone()) {
            Ok(index) => {
                last = index;
                committed += 1;
            }
            Err(e) => assert!(!matches!(e, AppendError::TooLarge { .. }), "{e}"),
        }
        committed >= 2
    });
    for (follower, _) in &nodes {
        wait_until("every node holds the large commands", || {
            follower.status().unwrap().commit_index >= last
        });
    }
}

#[test]
fn sizes_that_cannot_fit_a_frame_or_a_record_are_refused_at_start() {
    let config = |adjust: fn(RaftConfig) -> RaftConfig| {
        adjust(RaftConfig::new(NodeId(1), [(NodeId(1), "127.0.0.1:1")])).validate()
    };
    assert!(config(|c| c).is_ok());
    let err = config(|c| c.command_bytes_max(16 << 20)).unwrap_err();
    assert_eq!(err.field, "frame_bytes_max", "{err}");
    let err = config(|mut c| {
        c.frame_bytes_max = 1 << 30;
        c.write_queue_bytes_max = 1 << 30;
        c.command_bytes_max(300 << 20)
    })
    .unwrap_err();
    assert_eq!(err.field, "command_bytes_max", "{err}");
    let err = config(|c| c.core(|core| core.msg_bytes_max = 7 << 20)).unwrap_err();
    assert_eq!(err.field, "frame_bytes_max", "{err}");
    assert!(err.to_string().contains("msg_bytes_max"), "{err}");
    let err = config(|c| c.core(|core| core.snapshot_chunk_bytes = 16 << 20)).unwrap_err();
    assert!(err.to_string().contains("snapshot chunk"), "{err}");
}
