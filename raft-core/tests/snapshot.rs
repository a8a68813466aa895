//! Log compaction and InstallSnapshot (thesis §5): chunks with their own flow
//! control, resumable after a loss, restored by the application, and restarts from a
//! snapshot plus the log after it.

mod support;

use raft_core::{Action, LogIndex, MessageBody, NodeId, ProgressState, RoleKind};
use support::*;

fn lagging_follower_cluster(chunk_bytes: u64) -> Cluster {
    let mut configs: Vec<_> = (1..=3).map(|i| config(i, &[1, 2, 3])).collect();
    for config in &mut configs {
        config.snapshot_chunk_bytes = chunk_bytes;
        config.snapshot_chunks_inflight_max = 2;
    }
    let mut c = Cluster::with_configs(configs);
    c.elect(1);
    c.crash(3);
    for p in 0..20 {
        c.propose(1, p, &format!("c{p}"));
    }
    c.compact(1);
    assert_eq!(
        c.node(1).first_index(),
        LogIndex(22),
        "the log is compacted through the last applied entry"
    );
    c
}

#[test]
fn a_lagging_follower_is_caught_up_with_a_snapshot() {
    let mut c = lagging_follower_cluster(1 << 20);
    c.restart(3);
    for _ in 0..4 {
        c.tick_all();
    }
    assert!(c
        .outputs(3)
        .iter()
        .any(|a| matches!(a, Action::RestoreSnapshot(_))));
    assert_eq!(c.applied_commands(3), c.applied_commands(1));
    c.propose(1, 100, "after");
    c.tick_all();
    c.tick_all();
    assert_eq!(
        c.applied_commands(3).last().map(String::as_str),
        Some("after")
    );
    assert_eq!(c.node(3).status().snapshot_index, LogIndex(21));
}

#[test]
fn snapshot_travels_in_chunks_and_resumes_after_a_lost_chunk() {
    let mut c = lagging_follower_cluster(16);
    c.restart(3);
    c.record_sent = true;
    let mut dropped = false;
    for _ in 0..40 {
        c.tick(1);
        c.tick(2);
        c.tick(3);
        while let Some(message) = c.in_flight.pop_front() {
            let is_chunk =
                matches!(&message.body, MessageBody::InstallSnapshot(chunk) if chunk.offset == 32);
            if is_chunk && !dropped {
                dropped = true;
                continue;
            }
            c.deliver(message);
        }
    }
    assert!(dropped, "a chunk was lost on the way");
    let offsets: Vec<u64> = c
        .sent
        .iter()
        .filter_map(|m| match &m.body {
            MessageBody::InstallSnapshot(chunk) => Some(chunk.offset),
            _ => None,
        })
        .collect();
    assert!(offsets.len() > 4, "many chunks: {offsets:?}");
    assert_eq!(offsets[0], 0);
    assert!(
        offsets.iter().filter(|&&o| o == 0).count() == 1,
        "the transfer resumed, it did not start over: {offsets:?}"
    );
    assert_eq!(c.applied_commands(3), c.applied_commands(1));
}

#[test]
fn a_node_restarts_from_its_snapshot_and_the_log_after_it() {
    let mut c = lagging_follower_cluster(1 << 20);
    c.propose(1, 50, "tail");
    c.crash(1);
    c.restart(1);
    assert_eq!(c.node(1).first_index(), LogIndex(22));
    assert_eq!(
        c.applied_commands(1).len(),
        20,
        "the snapshot holds the first 20 commands"
    );
    c.restart(3);
    for _ in 0..60 {
        c.tick_all();
    }
    let leader = c.leader().expect("a leader");
    c.propose(leader, 60, "more");
    c.tick_all();
    c.tick_all();
    for n in 1..=3 {
        let state = c.applied_commands(n);
        assert_eq!(state.len(), 22, "node {n}: {state:?}");
        assert_eq!(state[20..], ["tail", "more"]);
    }
}

#[test]
fn snapshot_replaces_a_conflicting_log() {
    // Node 3 holds a divergent tail of term 2 that never committed.
    let mut c = Cluster::with_logs(&[
        (&[1, 1, 3, 3, 3, 3], 3),
        (&[1, 1, 3, 3, 3, 3], 3),
        (&[1, 1, 2, 2, 2, 2, 2, 2], 3),
    ]);
    c.isolate(3);
    c.elect(1);
    c.tick_all();
    c.compact(1);
    assert_eq!(c.node(1).first_index(), LogIndex(8));
    c.heal();
    for _ in 0..6 {
        c.tick_all();
    }
    let discarded = c
        .outputs(3)
        .iter()
        .any(|a| matches!(a, Action::RestoreSnapshot(s) if s.meta.last_index == LogIndex(7)));
    assert!(discarded, "node 3 installed the snapshot");
    let disk = &c.nodes[&NodeId(3)].disk;
    assert_eq!(disk.snapshot.as_ref().unwrap().meta.last_index, LogIndex(7));
    assert!(
        disk.entries.is_empty(),
        "the divergent tail is gone from disk too"
    );
    assert_eq!(c.node(3).last_index(), LogIndex(7));
    assert_eq!(c.applied_commands(3), c.applied_commands(1));
}

#[test]
fn leader_progress_goes_snapshot_then_probe_then_replicate() {
    let mut c = lagging_follower_cluster(8);
    c.restart(3);
    let mut states = Vec::new();
    for _ in 0..30 {
        c.tick(1);
        c.tick(2);
        c.tick(3);
        while c.deliver_one() {
            if let Some(peer) = c.node(1).status().peers.get(&NodeId(3)) {
                if states.last() != Some(&peer.state) {
                    states.push(peer.state);
                }
            }
        }
    }
    // The leader still believed node 3 replicating when it found its entries gone.
    let expected = [
        ProgressState::Replicate,
        ProgressState::Snapshot,
        ProgressState::Probe,
        ProgressState::Replicate,
    ];
    assert_eq!(states, expected);
}

#[test]
fn snapshot_install_survives_a_leader_change() {
    let mut c = lagging_follower_cluster(8);
    c.restart(3);
    // A few chunks arrive, then the leader crashes mid-transfer.
    c.tick(1);
    c.tick(1);
    for _ in 0..4 {
        c.deliver_one();
    }
    c.crash(1);
    let leader = c.elect_among(&[2, 3]);
    assert_eq!(leader, 2, "node 3 lacks the log and cannot win");
    c.compact(2);
    for _ in 0..20 {
        c.tick(2);
        c.tick(3);
        c.deliver_all();
    }
    assert_eq!(c.applied_commands(3), c.applied_commands(2));
    assert_eq!(c.node(3).role(), RoleKind::Follower);
}

#[test]
fn a_follower_that_lost_its_disk_catches_up_through_a_snapshot() {
    let mut c = lagging_follower_cluster(1 << 20);
    c.restart(3);
    for _ in 0..4 {
        c.tick_all();
    }
    assert_eq!(c.applied_commands(3).len(), 20);
    // Node 3's disk is lost; it comes back empty under the same id.
    c.crash(3);
    c.test_node(3).disk = Default::default();
    c.restart(3);
    c.propose(1, 200, "after the wipe");
    for _ in 0..6 {
        c.tick_all();
    }
    assert_eq!(c.applied_commands(3), c.applied_commands(1));
    assert_eq!(c.node(3).status().snapshot_index, LogIndex(21));
}

/// A partial snapshot belongs to the follower role: a node that campaigns in between
/// asks for the whole snapshot again rather than completing one it began as a
/// follower of another term.
#[test]
fn a_partial_snapshot_ends_with_the_follower_role() {
    use raft_core::{Event, Membership, Message, SnapshotChunk, SnapshotMeta, Term};
    let mut c = Cluster::new(3);
    let meta = SnapshotMeta {
        last_index: LogIndex(5),
        last_term: Term(1),
        membership: Membership::new([NodeId(1), NodeId(2), NodeId(3)]),
    };
    let chunk = |term: u64, offset: u64| {
        Event::Message(Message {
            from: NodeId(1),
            to: NodeId(2),
            term: Term(term),
            body: MessageBody::InstallSnapshot(Box::new(SnapshotChunk {
                meta: meta.clone(),
                offset,
                total_bytes: 8,
                data: raft_core::SharedBytes::from(vec![0u8; 4]),
            })),
        })
    };
    let next_offset_asked = |c: &mut Cluster| {
        let answers = c.take_messages(|m| m.from == NodeId(2));
        answers.iter().find_map(|m| match m.body {
            MessageBody::InstallSnapshotResponse { next_offset, .. } => Some(next_offset),
            _ => None,
        })
    };
    c.step(2, chunk(1, 0));
    assert_eq!(next_offset_asked(&mut c), Some(4), "the first half arrived");
    c.step(2, Event::Campaign);
    assert_ne!(c.node(2).role(), RoleKind::Follower);
    c.in_flight.clear();
    // The leader of a newer term sends the second half of the same snapshot.
    let term = c.node(2).term().0 + 1;
    c.step(2, chunk(term, 4));
    assert_eq!(next_offset_asked(&mut c), Some(0), "start over");
}
