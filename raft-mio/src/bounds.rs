//! Why no frame outgrows `frame_bytes_max` and no log record outgrows
//! [`RECORD_PAYLOAD_BYTES_MAX`]: the core's batching and the shell's command bound,
//! tied together, and checked by [`RaftConfig::validate`](crate::RaftConfig::validate).
//!
//! A message the transport cannot frame is dropped, and the core sends the same
//! entries again and again: one command too large for a frame stalls replication to
//! every follower forever. So the bound must hold for every message the core can
//! build, not for the usual ones.
//!
//! ## The core's batching (raft-core `RaftLog::entries_from`)
//! An AppendEntries carries entries while the sum of their estimated sizes
//! ([`Entry::size_bytes`](raft_core::Entry::size_bytes): 12 bytes plus the command's
//! length, or 8 per member of a configuration) stays within `msg_bytes_max`, at most
//! `msg_entries_max` of them, and always at least one. So a message holds either
//! entries whose estimates add up to at most `msg_bytes_max`, or one entry alone.
//! The inflight limits (`inflight_msgs_max`, `inflight_bytes_max`) bound how many
//! messages are outstanding, never the size of one, so they do not enter the bound.
//!
//! ## What postcard makes of them
//! Integers are varints (at most 10 bytes for a `u64`), byte strings a varint length
//! and the bytes. Worst cases, whatever the terms, indexes and node ids:
//! - a command entry: term, index (10 + 10), the payload's tag (1), its length (10),
//!   the command: `command + 31`, against an estimate of `command + 12`;
//! - a no-op: at most 21, against 12;
//! - a configuration of `m` members (at most [`MEMBERS_MAX`]): three sets, each a
//!   length and its ids, a member in at most two of them (a voter of the outgoing
//!   and the incoming configuration): `21 + 30 + 20 m`, against `12 + 8 m`.
//!
//! Each is at most `5/2 × estimate + 21`, which gives the bound for a batch; a lone
//! entry is at most `max(command_bytes_max + 31, 51 + 20 × MEMBERS_MAX)`. Around the
//! entries a message adds at most [`MESSAGE_FIXED_BYTES_MAX`] (sender, recipient,
//! term, tags, the previous index and term, the commit index, the entry count).
//! InstallSnapshot chunks add their meta (two integers and a configuration) and two
//! more integers to `snapshot_chunk_bytes` of data. The test below builds those
//! worst cases with the largest integers and checks the real encodings against the
//! bounds, and drives a real leader to check its batches.

use raft_core::Config;

use crate::storage::record::RECORD_PAYLOAD_BYTES_MAX;

/// The most members a configuration may have: it bounds the size of configuration
/// entries and snapshot metas (raft-mio refuses changes beyond it).
pub const MEMBERS_MAX: usize = 256;

/// The most bytes a message adds around its entries or its snapshot chunk.
pub const MESSAGE_FIXED_BYTES_MAX: u64 = 128;

/// The most bytes postcard adds to a command entry beyond the command.
pub const COMMAND_ENTRY_OVERHEAD_BYTES_MAX: u64 = 31;

/// The most bytes of an encoded configuration of [`MEMBERS_MAX`] members.
pub const MEMBERSHIP_BYTES_MAX: u64 = 30 + 20 * MEMBERS_MAX as u64;

/// The largest body of an AppendEntries the core can build under `core` when no
/// command is over `command_bytes_max`.
pub fn append_entries_bytes_max(core: &Config, command_bytes_max: u64) -> u64 {
    let count_max = core.msg_entries_max as u64;
    let batch = core.msg_bytes_max.saturating_mul(5) / 2 + 21 * count_max;
    let lone_command = command_bytes_max + COMMAND_ENTRY_OVERHEAD_BYTES_MAX;
    let lone_membership = 21 + MEMBERSHIP_BYTES_MAX;
    MESSAGE_FIXED_BYTES_MAX + batch.max(lone_command).max(lone_membership)
}

/// The largest body of an InstallSnapshot under `core`.
pub fn install_snapshot_bytes_max(core: &Config) -> u64 {
    // Meta: last index and term (20) and the configuration; offset and total (20);
    // the chunk's length (10) and bytes.
    MESSAGE_FIXED_BYTES_MAX + 20 + MEMBERSHIP_BYTES_MAX + 30 + core.snapshot_chunk_bytes
}

/// The largest log record payload (an encoded entry) when no command is over
/// `command_bytes_max`.
pub fn entry_record_bytes_max(command_bytes_max: u64) -> u64 {
    (command_bytes_max + COMMAND_ENTRY_OVERHEAD_BYTES_MAX).max(21 + MEMBERSHIP_BYTES_MAX)
}

/// Whether records of entries up to `command_bytes_max` fit the record format.
pub fn fits_record(command_bytes_max: u64) -> bool {
    entry_record_bytes_max(command_bytes_max) <= u64::from(RECORD_PAYLOAD_BYTES_MAX)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;
    use raft_core::{
        Action, AppendOutcome, Entry, EntryPayload, Event, LogIndex, Membership, Message,
        MessageBody, NodeId, Proposal, ProposalId, RaftNode, Restored, SnapshotChunk, SnapshotMeta,
        Term,
    };

    use super::*;
    use crate::transport::frame::encode_frame;

    fn encoded_bytes(message: &Message) -> u64 {
        postcard::to_stdvec(message).unwrap().len() as u64
    }

    /// A configuration of `MEMBERS_MAX` members with the largest ids, every voter in
    /// both the outgoing and the incoming configuration.
    fn largest_membership() -> Membership {
        let ids: BTreeSet<NodeId> = (0..MEMBERS_MAX as u64)
            .map(|i| NodeId(u64::MAX - i))
            .collect();
        Membership {
            voters: ids.clone(),
            voters_outgoing: ids,
            learners: BTreeSet::new(),
        }
    }

    fn append(entries: Vec<Entry>) -> Message {
        Message {
            from: NodeId(u64::MAX),
            to: NodeId(u64::MAX - 1),
            term: Term(u64::MAX - 1),
            body: MessageBody::AppendEntries {
                prev_log_index: LogIndex(u64::MAX - 1),
                prev_log_term: Term(u64::MAX - 1),
                entries,
                leader_commit: LogIndex(u64::MAX - 1),
            },
        }
    }

    fn entry(index: u64, payload: EntryPayload) -> Entry {
        Entry {
            term: Term(u64::MAX - 1),
            index: LogIndex(index),
            payload,
        }
    }

    #[test]
    fn the_worst_messages_encode_within_the_bounds() {
        let mut core = Config::new(NodeId(1), [NodeId(1)]);
        core.msg_entries_max = 64;
        core.msg_bytes_max = 64 * 1024;
        let command_bytes_max = 100_000;
        let bound = append_entries_bytes_max(&core, command_bytes_max);
        let high = u64::MAX - 1000;

        // One command of the largest size, alone.
        let lone = vec![entry(
            high,
            EntryPayload::Command(vec![7u8; command_bytes_max as usize].into()),
        )];
        assert!(encoded_bytes(&append(lone)) <= bound);

        // A full batch of the worst estimate-to-encoding ratio: small configurations
        // (estimate 20, encoding 71) up to msg_bytes_max.
        let one_member = Membership::new([NodeId(u64::MAX)]);
        let small = entry(high, EntryPayload::Membership(Box::new(one_member)));
        let count = (core.msg_bytes_max / small.size_bytes()).min(core.msg_entries_max as u64);
        let batch: Vec<Entry> = (0..count)
            .map(|i| entry(high + i, small.payload.clone()))
            .collect();
        assert!(encoded_bytes(&append(batch)) <= bound);

        // The largest configuration, alone, and no-ops.
        let large = entry(
            high,
            EntryPayload::Membership(Box::new(largest_membership())),
        );
        assert!(encoded_bytes(&append(vec![large])) <= bound);
        let noops = (0..core.msg_entries_max as u64)
            .map(|i| entry(high + i, EntryPayload::Noop))
            .collect();
        assert!(encoded_bytes(&append(noops)) <= bound);

        // A snapshot chunk.
        let chunk = SnapshotChunk {
            meta: SnapshotMeta {
                last_index: LogIndex(u64::MAX - 1),
                last_term: Term(u64::MAX - 1),
                membership: largest_membership(),
            },
            offset: u64::MAX - 1,
            total_bytes: u64::MAX - 1,
            data: vec![1u8; core.snapshot_chunk_bytes as usize].into(),
        };
        let message = Message {
            body: MessageBody::InstallSnapshot(Box::new(chunk)),
            ..append(Vec::new())
        };
        assert!(encoded_bytes(&message) <= install_snapshot_bytes_max(&core));
        let record = postcard::to_stdvec(&entry(
            high,
            EntryPayload::Command(vec![7u8; command_bytes_max as usize].into()),
        ))
        .unwrap();
        assert!(record.len() as u64 <= entry_record_bytes_max(command_bytes_max));
    }

    /// Steps `node` until it has nothing more to say: persistence is reported at
    /// once, votes are granted, and AppendEntries are collected into `sent` (and,
    /// with `accept`, acknowledged, so that the leader leaves its probe).
    fn settle(
        node: &mut RaftNode,
        mut actions: Vec<Action>,
        accept: bool,
        sent: &mut Vec<Message>,
    ) {
        for _ in 0..1000 {
            let Some(action) = actions.pop() else { return };
            let answer = match action {
                Action::PersistHardState { seq, .. } | Action::AppendToLog { seq, .. } => {
                    Some(Event::Persisted { through: seq })
                }
                Action::Send(message) => {
                    let body = match &message.body {
                        MessageBody::VoteRequest { pre_vote, .. } => {
                            Some(MessageBody::VoteResponse {
                                pre_vote: *pre_vote,
                                granted: true,
                            })
                        }
                        MessageBody::AppendEntries {
                            prev_log_index,
                            entries,
                            ..
                        } => {
                            let match_index = LogIndex(prev_log_index.0 + entries.len() as u64);
                            let body = MessageBody::AppendResponse(AppendOutcome::Accepted {
                                match_index,
                            });
                            sent.push(message.clone());
                            accept.then_some(body)
                        }
                        _ => None,
                    };
                    body.map(|body| {
                        Event::Message(Message {
                            from: message.to,
                            to: message.from,
                            term: message.term,
                            body,
                        })
                    })
                }
                _ => None,
            };
            if let Some(event) = answer {
                actions.extend(node.step(event));
            }
        }
        panic!("the node did not settle");
    }

    /// Runs a real leader with one silent follower over `commands` and returns every
    /// AppendEntries it sent.
    fn leader_batches(core: Config, commands: &[usize]) -> Vec<Message> {
        let mut node = RaftNode::new(core, Restored::default()).unwrap();
        let mut sent = Vec::new();
        let actions = node.step(Event::Campaign);
        settle(&mut node, actions, true, &mut sent);
        assert_eq!(node.role(), raft_core::RoleKind::Leader);
        let batch: Vec<Proposal> = commands
            .iter()
            .enumerate()
            .map(|(i, len)| Proposal {
                id: ProposalId(i as u64),
                command: vec![3u8; *len].into(),
            })
            .collect();
        sent.clear();
        let actions = node.step(Event::Propose(batch));
        settle(&mut node, actions, false, &mut sent);
        for _ in 0..20 {
            let actions = node.step(Event::Tick);
            settle(&mut node, actions, false, &mut sent);
        }
        sent
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Whatever the command sizes (up to the bound), every AppendEntries a real
        /// leader builds fits the frame size the bound asks for.
        #[test]
        fn a_real_leaders_batches_fit_the_frame_bound(
            msg_bytes_max in 64u64..8192,
            msg_entries_max in 1usize..64,
            command_bytes_max in 1u64..20_000,
            sizes in proptest::collection::vec(0.0f64..=1.0, 1..80),
        ) {
            let mut core = Config::new(NodeId(1), [NodeId(1), NodeId(2)]);
            core.msg_bytes_max = msg_bytes_max;
            core.msg_entries_max = msg_entries_max;
            core.inflight_msgs_max = 1024;
            core.inflight_bytes_max = u64::MAX / 4;
            core.pre_vote = false;
            let commands: Vec<usize> = sizes
                .iter()
                .map(|share| (share * command_bytes_max as f64) as usize)
                .collect();
            let bound = append_entries_bytes_max(&core, command_bytes_max);
            let messages = leader_batches(core, &commands);
            prop_assert!(!messages.is_empty());
            for message in &messages {
                let mut frame = Vec::new();
                prop_assert!(encode_frame(message, bound as usize, &mut frame).is_ok());
            }
        }
    }
}
