//! Snapshots (Raft §7, thesis §5): the application compacts the log under a snapshot
//! of its state; the leader sends a snapshot, in chunks, to a follower whose missing
//! entries were compacted away; the follower installs it and answers once it is
//! durable.

mod chunks;

pub(crate) use chunks::{ChunkOutcome, IncomingSnapshot, SnapshotSend};

use crate::action::{Action, IgnoreReason};
use crate::membership::MembershipLog;
use crate::message::{MessageBody, SnapshotChunk};
use crate::progress::{Progress, ProgressState};
use crate::replication::send_until_paused;
use crate::role::follower::FollowerState;
use crate::role::leader::LeaderState;
use crate::role::Next;
use crate::shared::Shared;
use crate::types::{EntryPayload, LogIndex, NodeId, Snapshot, Term};

impl Shared {
    /// The application captured its state through `up_to`: keep it as the snapshot
    /// and discard the log prefix it covers.
    pub(crate) fn compact(&mut self, up_to: LogIndex, data: crate::types::SharedBytes) {
        // A node that joined a running cluster knows no configuration in force
        // before the entry that added it (the initial one lives in each member's
        // Config, not in the log); a snapshot there would record no voters, which no
        // restart accepts. It compacts once it has applied a configuration entry.
        let unknown_membership = self.memberships.at(up_to).voters.is_empty();
        if up_to <= self.log.snapshot_index()
            || up_to > self.log.applied_index()
            || unknown_membership
        {
            let reason = crate::action::IgnoreReason::InvalidCompact;
            self.out.emit(Action::Ignored(reason));
            return;
        }
        let meta = crate::types::SnapshotMeta {
            last_index: up_to,
            last_term: self
                .log
                .term_at(up_to)
                .expect("an applied index past the snapshot is held"),
            membership: self.memberships.at(up_to).clone(),
        };
        self.log.compact(up_to);
        self.memberships.compact(up_to);
        let snapshot = Snapshot { meta, data };
        self.out.persist(|seq| Action::PersistSnapshot {
            seq,
            snapshot: Box::new(snapshot.clone()),
            discard_log: false,
        });
        self.snapshot = Some(snapshot);
    }

    /// Replaces the log's prefix (or all of it) with `snapshot` and hands it to the
    /// application.
    pub(crate) fn install_snapshot(&mut self, snapshot: Snapshot) {
        let last_index = snapshot.meta.last_index;
        let kept_suffix = self
            .log
            .install_snapshot(last_index, snapshot.meta.last_term);
        let mut memberships = MembershipLog::new(last_index, snapshot.meta.membership.clone());
        for entry in self.log.entries() {
            if let EntryPayload::Membership(m) = &entry.payload {
                memberships.push(entry.index, (**m).clone());
            }
        }
        self.memberships = memberships;
        let seq = self.out.persist(|seq| Action::PersistSnapshot {
            seq,
            snapshot: Box::new(snapshot.clone()),
            discard_log: !kept_suffix,
        });
        // A kept suffix stays durable as it was; a discarded one is gone from disk too.
        let truncate_from = if kept_suffix {
            LogIndex(u64::MAX)
        } else {
            last_index.next()
        };
        self.log.write_issued(seq, truncate_from);
        self.out
            .emit(Action::RestoreSnapshot(Box::new(snapshot.clone())));
        self.snapshot = Some(snapshot);
        self.proposals.resolve_committed(&self.log, &mut self.out);
        self.release_forwarded_reads();
    }
}

impl FollowerState {
    /// A chunk of a snapshot from the leader of the current term.
    pub(crate) fn on_install_snapshot(
        &mut self,
        shared: &mut Shared,
        from: NodeId,
        chunk: SnapshotChunk,
    ) {
        if let Err(reason) = validate_chunk(shared.term, &chunk) {
            shared
                .out
                .emit(Action::Ignored(IgnoreReason::Malformed(reason)));
            return;
        }
        let last_index = chunk.meta.last_index;
        let total_bytes = chunk.total_bytes;
        if last_index <= shared.log.commit_index() {
            // We already hold everything it covers.
            let body = MessageBody::InstallSnapshotResponse {
                last_index,
                next_offset: total_bytes,
                done: true,
            };
            shared.send_after_persist(from, body);
            return;
        }
        match IncomingSnapshot::receive(&mut self.incoming_snapshot, chunk) {
            ChunkOutcome::Need(next_offset) => {
                let body = MessageBody::InstallSnapshotResponse {
                    last_index,
                    next_offset,
                    done: false,
                };
                shared.send_now(from, body);
            }
            ChunkOutcome::Complete(snapshot) => {
                shared.install_snapshot(snapshot);
                let body = MessageBody::InstallSnapshotResponse {
                    last_index,
                    next_offset: total_bytes,
                    done: true,
                };
                // "Installed" claims durability: it waits for the snapshot's write.
                shared.send_after_persist(from, body);
            }
        }
    }
}

impl LeaderState {
    /// A follower's answer to a snapshot chunk.
    pub(crate) fn on_snapshot_response(
        &mut self,
        shared: &mut Shared,
        from: NodeId,
        last_index: LogIndex,
        next_offset: u64,
        done: bool,
    ) -> Next {
        let Some(progress) = self.heard_from(shared, from) else {
            return Next::Stay;
        };
        if done {
            if last_index > shared.log.last_index() {
                let reason = IgnoreReason::Malformed("installed a snapshot past the leader's log");
                shared.out.emit(Action::Ignored(reason));
                return Next::Stay;
            }
            let updated = progress.maybe_update(last_index);
            if progress.state == ProgressState::Snapshot {
                progress.become_probe();
            }
            send_until_paused(shared, from, progress);
            return if updated {
                self.maybe_commit(shared)
            } else {
                Next::Stay
            };
        }
        if let Some(send) = &mut progress.snapshot_send {
            if send.last_index == last_index {
                if next_offset < send.acked_offset {
                    // The follower lost its partial copy (it restarted): start over there.
                    send.acked_offset = next_offset;
                    send.rewind();
                } else {
                    send.acknowledged(next_offset);
                }
            }
        }
        send_until_paused(shared, from, progress);
        Next::Stay
    }
}

/// The entries `peer` needs are compacted away: send the snapshot instead.
pub(crate) fn start_snapshot(shared: &mut Shared, peer: NodeId, progress: &mut Progress) -> bool {
    let Some(snapshot) = &shared.snapshot else {
        debug_assert!(false, "the log is compacted only through a snapshot");
        return false;
    };
    progress.become_snapshot(SnapshotSend::new(snapshot));
    send_snapshot_chunk(shared, peer, progress)
}

/// Sends the next snapshot chunk, if the chunk window allows. Returns whether one went.
pub(crate) fn send_snapshot_chunk(
    shared: &mut Shared,
    peer: NodeId,
    progress: &mut Progress,
) -> bool {
    let (Some(snapshot), Some(send)) = (&shared.snapshot, &mut progress.snapshot_send) else {
        return false;
    };
    if snapshot.meta.last_index != send.last_index {
        // A newer snapshot replaced the one in transfer: send that one instead.
        *send = SnapshotSend::new(snapshot);
    }
    let chunk_bytes = shared.config.snapshot_chunk_bytes;
    let window = shared.config.snapshot_chunks_inflight_max;
    let Some(chunk) = send.next_chunk(snapshot, chunk_bytes, window) else {
        return false;
    };
    shared.send_now(peer, MessageBody::InstallSnapshot(Box::new(chunk)));
    true
}

/// Checks that a snapshot chunk is well formed.
fn validate_chunk(message_term: Term, chunk: &SnapshotChunk) -> Result<(), &'static str> {
    let end = chunk
        .offset
        .checked_add(chunk.data.len() as u64)
        .ok_or("chunk offset overflows")?;
    if end > chunk.total_bytes {
        return Err("chunk reaches past the snapshot's size");
    }
    if chunk.meta.last_term > message_term {
        return Err("snapshot term is newer than the message");
    }
    if chunk.meta.last_index == LogIndex(0) {
        return Err("a snapshot covers at least one entry");
    }
    if chunk.meta.membership.voters.is_empty() {
        return Err("the snapshot's membership has no voters");
    }
    Ok(())
}
