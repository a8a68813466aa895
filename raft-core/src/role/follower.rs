//! Followers: accepting the leader's log, commit index and snapshots; forwarding
//! reads and refusing proposals. (Candidates that hear from a leader of their term
//! become followers first, so these handlers serve them too.)

use crate::action::{Action, DropReason, IgnoreReason};
use crate::membership::MembershipLog;
use crate::message::{AppendOutcome, MessageBody, ReadFailure, SnapshotChunk};
use crate::role::Next;
use crate::shared::Shared;
use crate::snapshot::{ChunkOutcome, IncomingSnapshot};
use crate::types::{Entry, EntryPayload, LogIndex, NodeId, ProposalId, ReadId, Snapshot, Term};

impl Shared {
    /// AppendEntries from the leader of the current term (Raft §5.3).
    pub(crate) fn on_append_entries(
        &mut self,
        from: NodeId,
        prev_log_index: LogIndex,
        prev_log_term: Term,
        mut entries: Vec<Entry>,
        leader_commit: LogIndex,
    ) {
        if let Err(reason) = validate_append(self.term, prev_log_index, prev_log_term, &entries) {
            self.out
                .emit(Action::Ignored(IgnoreReason::Malformed(reason)));
            return;
        }
        let commit = self.log.commit_index();
        let (mut prev_index, mut prev_term) = (prev_log_index, prev_log_term);
        if prev_index < commit {
            // Everything through our commit index is committed and so agrees with the
            // leader's log: skip those entries and check consistency at the commit index.
            let skip = (commit.0 - prev_index.0).min(entries.len() as u64) as usize;
            entries.drain(..skip);
            if entries.is_empty() {
                let body = MessageBody::AppendResponse(AppendOutcome::Accepted {
                    match_index: commit,
                });
                self.send_after_persist(from, body);
                return;
            }
            prev_index = commit;
            prev_term = self
                .log
                .term_at(commit)
                .expect("the commit index is held or is the snapshot's");
        }
        if !self.log.matches(prev_index, prev_term) {
            let (hint_index, hint_term) =
                self.log.last_index_with_term_at_most(prev_index, prev_term);
            let outcome = AppendOutcome::Rejected {
                rejected_index: prev_index,
                hint_index,
                hint_term,
            };
            self.send_after_persist(from, MessageBody::AppendResponse(outcome));
            return;
        }
        let match_index = LogIndex(prev_index.0 + entries.len() as u64);
        if let Some(position) = self.log.first_new_entry(&entries) {
            entries.drain(..position);
            self.append_to_log(entries);
        }
        self.commit_to(leader_commit.min(match_index));
        let body = MessageBody::AppendResponse(AppendOutcome::Accepted { match_index });
        self.send_after_persist(from, body);
    }

    /// A heartbeat from the leader of the current term: its commit index is capped at
    /// what the leader knows we hold, so it is safe to adopt as is.
    pub(crate) fn on_heartbeat(&mut self, from: NodeId, commit: LogIndex, read_round: u64) {
        self.commit_to(commit.min(self.log.last_index()));
        // The answer confirms leadership for reads and claims nothing durable, so it
        // need not wait for our pending writes.
        self.send_now(from, MessageBody::HeartbeatResponse { read_round });
    }

    /// A chunk of a snapshot from the leader of the current term.
    pub(crate) fn on_install_snapshot(&mut self, from: NodeId, chunk: SnapshotChunk) {
        if let Err(reason) = validate_chunk(self.term, &chunk) {
            self.out
                .emit(Action::Ignored(IgnoreReason::Malformed(reason)));
            return;
        }
        let last_index = chunk.meta.last_index;
        let total_bytes = chunk.total_bytes;
        if last_index <= self.log.commit_index() {
            // We already hold everything it covers.
            let body = MessageBody::InstallSnapshotResponse {
                last_index,
                next_offset: total_bytes,
                done: true,
            };
            self.send_after_persist(from, body);
            return;
        }
        match IncomingSnapshot::receive(&mut self.incoming_snapshot, chunk) {
            ChunkOutcome::Need(next_offset) => {
                let body = MessageBody::InstallSnapshotResponse {
                    last_index,
                    next_offset,
                    done: false,
                };
                self.send_now(from, body);
            }
            ChunkOutcome::Complete(snapshot) => {
                self.install_snapshot(snapshot);
                let body = MessageBody::InstallSnapshotResponse {
                    last_index,
                    next_offset: total_bytes,
                    done: true,
                };
                // "Installed" claims durability: it waits for the snapshot's write.
                self.send_after_persist(from, body);
            }
        }
    }

    /// Replaces the log's prefix (or all of it) with `snapshot` and hands it to the
    /// application.
    fn install_snapshot(&mut self, snapshot: Snapshot) {
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

    /// The leader hands over leadership: campaign at once, skipping PreVote.
    pub(crate) fn on_timeout_now(&mut self) -> Next {
        if !self.is_voter() {
            self.out.emit(Action::Ignored(IgnoreReason::Unexpected));
            return Next::Stay;
        }
        Next::Campaign {
            pre_vote: false,
            leadership_transfer: true,
        }
    }

    /// A read on a non-leader: ask the leader for a read index (thesis §6.4).
    pub(crate) fn forward_read(&mut self, id: ReadId) {
        let Some(leader) = self.leader else {
            self.fail_read(id, ReadFailure::NoLeader);
            return;
        };
        if self.forwarded_reads.len() >= self.config.pending_reads_max {
            self.fail_read(id, ReadFailure::Overloaded);
            return;
        }
        self.forwarded_reads.push(id, self.read_deadline_tick());
        self.send_now(leader, MessageBody::ReadIndexRequest { id });
    }

    /// The leader's answer to a forwarded read.
    pub(crate) fn on_read_index_response(
        &mut self,
        id: ReadId,
        result: Result<LogIndex, ReadFailure>,
    ) {
        match result {
            Ok(read_index) => {
                if !self.forwarded_reads.answered(id, read_index) {
                    self.out.emit(Action::Ignored(IgnoreReason::Unexpected));
                    return;
                }
                self.release_forwarded_reads();
            }
            Err(reason) => {
                if self.forwarded_reads.remove(id) {
                    self.fail_read(id, reason);
                } else {
                    self.out.emit(Action::Ignored(IgnoreReason::Unexpected));
                }
            }
        }
    }

    /// Fails the forwarded reads whose deadline has passed.
    pub(crate) fn expire_forwarded_reads(&mut self) {
        if self.forwarded_reads.len() == 0 {
            return;
        }
        for id in self.forwarded_reads.take_expired(self.now_tick) {
            self.fail_read(id, ReadFailure::Timeout);
        }
    }

    /// Proposals on a node that does not lead: dropped, naming the leader it knows.
    pub(crate) fn reject_proposals(&mut self, ids: impl IntoIterator<Item = ProposalId>) {
        let reason = DropReason::NotLeader {
            leader_hint: self.leader,
        };
        for id in ids {
            self.out.emit(Action::ProposalDropped { id, reason });
        }
    }
}

/// Checks that an AppendEntries is well formed: consecutive entries after the
/// previous index, terms that never decrease and never pass the message's term.
fn validate_append(
    message_term: Term,
    prev_log_index: LogIndex,
    prev_log_term: Term,
    entries: &[Entry],
) -> Result<(), &'static str> {
    if prev_log_term > message_term {
        return Err("previous log term is newer than the message");
    }
    let mut expected_index = prev_log_index;
    let mut previous_term = prev_log_term;
    for entry in entries {
        expected_index = LogIndex(
            expected_index
                .0
                .checked_add(1)
                .ok_or("log index overflows")?,
        );
        if entry.index != expected_index {
            return Err("entries are not consecutive after the previous index");
        }
        if entry.term < previous_term {
            return Err("entry terms decrease");
        }
        if entry.term > message_term {
            return Err("an entry is newer than the message");
        }
        if let EntryPayload::Membership(m) = &entry.payload {
            if m.voters.is_empty() {
                return Err("a membership entry has no voters");
            }
        }
        previous_term = entry.term;
    }
    Ok(())
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
