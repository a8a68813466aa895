//! Restarts from disk: a clean stop, a whole-cluster restart, and a kill without clean
//! shutdown; and the refusals at start (a locked or corrupt data directory).

mod support;

use std::fs;

use raft_core::{EntryPayload, LogIndex, NodeId};
use raft_mio::envelope::TAG_COMMAND;
use raft_mio::storage::{Storage, StorageError, StorageOptions};
use raft_mio::StartError;
use support::{Cluster, Cmd};

fn commands_on_disk(cluster: &Cluster, id: NodeId) -> (raft_core::Restored, Vec<Cmd>) {
    let (_storage, restored) =
        Storage::open(&cluster.data_dir(id), StorageOptions::default()).expect("storage opens");
    let commands = restored
        .entries
        .iter()
        .filter_map(|e| match &e.payload {
            // raft-mio's envelope: one tag byte, then the application's command.
            EntryPayload::Command(bytes) => match bytes.split_first() {
                Some((&TAG_COMMAND, command)) => Some(postcard::from_bytes(command).unwrap()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    (restored, commands)
}

#[test]
fn a_restarted_node_recovers_its_term_vote_and_log() {
    let mut cluster = Cluster::start(3);
    let expected: Vec<Cmd> = (0..20).map(Cmd).collect();
    for cmd in &expected {
        cluster.append(cmd.clone());
    }
    cluster.wait_for_applied(&expected);
    let leader = cluster.wait_for_leader();
    let follower = cluster
        .nodes
        .keys()
        .copied()
        .find(|id| *id != leader)
        .unwrap();
    let before = cluster.node(follower).status();
    cluster.stop(follower);

    let (restored, on_disk) = commands_on_disk(&cluster, follower);
    // At least what the node reported before it stopped (an election in between may
    // have moved it on).
    assert!(restored.hard_state.term >= before.term, "term durable");
    if let Some(vote) = restored.hard_state.voted_for {
        assert!(cluster.addrs.contains_key(&vote), "a vote for a member");
    }
    assert!(
        restored.entries.last().map(|e| e.index) >= Some(before.last_index),
        "log durable"
    );
    assert_eq!(on_disk, expected);

    cluster.launch(follower, None);
    let after = cluster.node(follower).status();
    assert!(after.term >= before.term);
    assert!(after.last_index >= before.last_index);
    // The application state is rebuilt by replaying the committed log.
    cluster.wait_for_applied(&expected);
    cluster.shutdown();
}

#[test]
fn the_whole_cluster_restarts_from_disk_and_goes_on() {
    let mut cluster = Cluster::start(3);
    let mut expected: Vec<Cmd> = (0..10).map(Cmd).collect();
    for cmd in &expected {
        cluster.append(cmd.clone());
    }
    let term_before = cluster.node(cluster.wait_for_leader()).status().term;
    for id in [NodeId(1), NodeId(2), NodeId(3)] {
        cluster.stop(id);
    }
    for id in [NodeId(1), NodeId(2), NodeId(3)] {
        cluster.launch(id, None);
    }
    let leader = cluster.wait_for_leader();
    assert!(
        cluster.node(leader).status().term > term_before,
        "a new election in a newer term"
    );
    for i in 10..15 {
        cluster.append(Cmd(i));
        expected.push(Cmd(i));
    }
    cluster.wait_for_applied(&expected);
    cluster.shutdown();
}

#[test]
fn a_node_killed_without_clean_shutdown_recovers() {
    let mut cluster = Cluster::start(2);
    // A third node on a loop the test can kill.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let third = NodeId(3);
    cluster
        .addrs
        .insert(third, listener.local_addr().unwrap().to_string());
    // Restart the first two with the full membership.
    for id in [NodeId(1), NodeId(2)] {
        cluster.stop(id);
        fs::remove_dir_all(cluster.data_dir(id)).unwrap();
        cluster.launch(id, None);
    }
    let kill = cluster.launch_killable(third, Some(listener));
    let mut expected: Vec<Cmd> = (0..10).map(Cmd).collect();
    for cmd in &expected {
        cluster.append(cmd.clone());
    }
    cluster.wait_for_applied(&expected);
    cluster.kill(third, &kill);

    for i in 10..20 {
        cluster.append(Cmd(i));
        expected.push(Cmd(i));
    }
    cluster.launch(third, None);
    cluster.wait_for_applied(&expected);
    let status = cluster.node(third).status();
    assert!(status.last_index >= LogIndex(20));
    assert!(status.commit_index >= LogIndex(20));
    cluster.shutdown();
}

#[test]
fn a_locked_or_corrupt_data_directory_is_refused_at_start() {
    let mut cluster = Cluster::start(3);
    cluster.append(Cmd(1));
    for i in 2..=10 {
        cluster.append(Cmd(i));
    }
    // A second process (here: a second node) on the same directory is refused.
    let err =
        raft_mio::run::<Cmd>(cluster.config(NodeId(1)).listen_addr("127.0.0.1:0")).unwrap_err();
    assert!(
        matches!(err, StartError::Storage(StorageError::Locked { .. })),
        "{err}"
    );

    cluster.stop(NodeId(1));
    let segment = cluster
        .data_dir(NodeId(1))
        .join("log-00000000000000000001.seg");
    let mut bytes = fs::read(&segment).unwrap();
    // Flip a bit a few records in (the segment header is 24 bytes, then the leader's
    // small no-op, then the commands), well before the last record.
    bytes[24 + 40] ^= 0x01;
    fs::write(&segment, &bytes).unwrap();
    let err = raft_mio::run::<Cmd>(cluster.config(NodeId(1))).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, StartError::Storage(StorageError::Corrupt { .. })),
        "{text}"
    );
    assert!(
        text.contains("log-00000000000000000001.seg") && text.contains("offset"),
        "{text}"
    );
    cluster.shutdown();
}
