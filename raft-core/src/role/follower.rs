//! Followers: accepting the leader's log and commit index (Raft §5.3) and refusing
//! proposals. (Candidates that hear from a leader of their term become followers
//! first, so these handlers serve them too.) Snapshots a follower installs live in
//! `snapshot/`, the reads it forwards in `read_index.rs`, the TimeoutNow it obeys in
//! `transfer.rs`.

use crate::action::{Action, DropReason, IgnoreReason};
use crate::message::{AppendOutcome, MessageBody};
use crate::shared::Shared;
use crate::snapshot::IncomingSnapshot;
use crate::types::{Entry, EntryPayload, LogIndex, NodeId, ProposalId, Term};

/// State only a follower has.
#[derive(Debug, Default)]
pub(crate) struct FollowerState {
    /// A snapshot being received from the leader, chunk by chunk. It ends with the
    /// role: a node that campaigns or leads is not receiving one.
    pub(crate) incoming_snapshot: Option<IncomingSnapshot>,
}

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
        debug_assert_eq!(
            self.leader,
            Some(from),
            "only the known leader sends entries"
        );
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
        // The log now agrees with the leader's through match_index (Log Matching).
        debug_assert!(self.log.last_index() >= match_index);
        if match_index > prev_index {
            debug_assert!(self
                .log
                .term_at(match_index)
                .is_some_and(|t| t <= self.term));
        }
        self.commit_to(leader_commit.min(match_index));
        debug_assert!(
            self.log.commit_index() >= commit,
            "the commit index never falls"
        );
        let body = MessageBody::AppendResponse(AppendOutcome::Accepted { match_index });
        self.send_after_persist(from, body);
    }

    /// A heartbeat from the leader of the current term: its commit index is capped at
    /// what the leader knows we hold, so it is safe to adopt as is.
    pub(crate) fn on_heartbeat(&mut self, from: NodeId, commit: LogIndex, read_round: u64) {
        debug_assert_eq!(
            self.leader,
            Some(from),
            "only the known leader sends heartbeats"
        );
        self.commit_to(commit.min(self.log.last_index()));
        // The answer confirms leadership for reads and claims nothing durable, so it
        // need not wait for our pending writes.
        self.send_now(from, MessageBody::HeartbeatResponse { read_round });
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
