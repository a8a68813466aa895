//! The leader's replication (Raft §5.3, thesis §3.5): AppendEntries with flow control
//! (probe / replicate, an inflight window in messages and bytes), heartbeats, and the
//! answers to both. When a follower needs entries compacted away, sending switches to
//! the snapshot in `snapshot/`.

use crate::action::{Action, IgnoreReason};
use crate::message::{AppendOutcome, MessageBody};
use crate::progress::{Progress, ProgressState};
use crate::role::leader::LeaderState;
use crate::role::Next;
use crate::shared::Shared;
use crate::snapshot::{send_snapshot_chunk, start_snapshot};
use crate::types::{LogIndex, NodeId};

impl LeaderState {
    /// Sends every follower what it lacks, as far as its window allows.
    pub(crate) fn broadcast_append(&mut self, shared: &mut Shared) {
        for (&peer, progress) in self.progress.iter_mut() {
            send_until_paused(shared, peer, progress);
        }
    }

    /// Sends `peer` what it lacks; with `allow_empty`, at least one (possibly empty)
    /// AppendEntries that carries the commit index and probes where the logs agree.
    pub(crate) fn send_append_to(&mut self, shared: &mut Shared, peer: NodeId, allow_empty: bool) {
        let Some(progress) = self.progress.get_mut(&peer) else {
            return;
        };
        if allow_empty {
            send_append(shared, peer, progress, true);
        }
        send_until_paused(shared, peer, progress);
    }

    /// Heartbeats to every member, starting a new read round if reads wait for one.
    pub(crate) fn broadcast_heartbeat(&mut self, shared: &mut Shared) {
        // With a read lease every heartbeat starts a round, which renews the lease.
        let read_round = if self.reads.wants_new_round() || shared.config.read_lease {
            self.start_read_round(shared)
        } else {
            self.reads.round_sent()
        };
        for (&peer, progress) in &self.progress {
            let commit = shared.log.commit_index().min(progress.match_index);
            shared.send_now(peer, MessageBody::Heartbeat { commit, read_round });
        }
        self.heartbeat_elapsed_ticks = 0;
    }

    /// One heartbeat to `peer` in the current round.
    pub(crate) fn send_heartbeat(&mut self, shared: &mut Shared, peer: NodeId) {
        let Some(progress) = self.progress.get(&peer) else {
            return;
        };
        let commit = shared.log.commit_index().min(progress.match_index);
        let read_round = self.reads.round_sent();
        shared.send_now(peer, MessageBody::Heartbeat { commit, read_round });
    }

    /// The progress of `from`, which answered this leader, marked as heard from
    /// (CheckQuorum counts it); None, with the answer ignored, if it is not tracked.
    pub(crate) fn heard_from(
        &mut self,
        shared: &mut Shared,
        from: NodeId,
    ) -> Option<&mut Progress> {
        let Some(progress) = self.progress.get_mut(&from) else {
            shared
                .out
                .emit(Action::Ignored(IgnoreReason::UnknownSender));
            return None;
        };
        progress.recent_active = true;
        Some(progress)
    }

    /// A follower's answer to AppendEntries.
    pub(crate) fn on_append_response(
        &mut self,
        shared: &mut Shared,
        from: NodeId,
        outcome: AppendOutcome,
    ) -> Next {
        let last_index = shared.log.last_index();
        let Some(progress) = self.heard_from(shared, from) else {
            return Next::Stay;
        };
        match outcome {
            AppendOutcome::Accepted { match_index } => {
                if match_index > last_index {
                    let reason =
                        IgnoreReason::Malformed("acknowledges entries past the leader's log");
                    shared.out.emit(Action::Ignored(reason));
                    return Next::Stay;
                }
                let updated = progress.maybe_update(match_index);
                match progress.state {
                    ProgressState::Probe if updated || progress.match_index == match_index => {
                        progress.become_replicate();
                    }
                    ProgressState::Replicate => progress.inflights.free_through(match_index),
                    _ => {}
                }
                send_until_paused(shared, from, progress);
                let next = if updated {
                    self.maybe_commit(shared)
                } else {
                    Next::Stay
                };
                let commit = shared.log.commit_index();
                let member = shared.membership().contains(from)
                    || shared.memberships.at(commit).contains(from);
                if !member {
                    // A removed member caught up: release it (see `sync_progress`).
                    self.sync_progress(shared);
                }
                self.maybe_send_timeout_now(shared, from);
                next
            }
            AppendOutcome::Rejected {
                rejected_index,
                hint_index,
                hint_term,
            } => {
                let (probe_from, _) = shared
                    .log
                    .last_index_with_term_at_most(hint_index, hint_term);
                if progress.maybe_decrease_to(rejected_index, probe_from) {
                    send_append(shared, from, progress, true);
                }
                Next::Stay
            }
        }
    }

    /// A follower's answer to a heartbeat: it is alive, it confirms a read round, and
    /// it unsticks replication that lost a message.
    pub(crate) fn on_heartbeat_response(
        &mut self,
        shared: &mut Shared,
        from: NodeId,
        read_round: u64,
    ) -> Next {
        let last_index = shared.log.last_index();
        let Some(progress) = self.heard_from(shared, from) else {
            return Next::Stay;
        };
        progress.read_round_acked = progress.read_round_acked.max(read_round);
        let acked_new_round = progress.read_round_acked == read_round;
        match progress.state {
            ProgressState::Probe => progress.probe_sent = false,
            ProgressState::Replicate => {
                let (msgs_max, bytes_max) = (
                    shared.config.inflight_msgs_max,
                    shared.config.inflight_bytes_max,
                );
                if progress.inflights.is_full(msgs_max, bytes_max) {
                    progress.inflights.free_oldest();
                }
            }
            ProgressState::Snapshot => {
                // Chunks unanswered for a whole heartbeat interval were lost: resend.
                if let Some(send) = &mut progress.snapshot_send {
                    if send.has_unacknowledged() {
                        send.rewind();
                    }
                }
            }
        }
        if progress.match_index < last_index || progress.state == ProgressState::Snapshot {
            send_append(shared, from, progress, true);
            send_until_paused(shared, from, progress);
        }
        if acked_new_round {
            self.renew_lease(shared);
        }
        self.release_reads(shared);
        Next::Stay
    }
}

/// Sends AppendEntries (or snapshot chunks) to `peer` until its window is full or it
/// has everything. Bounded by the window size.
pub(crate) fn send_until_paused(shared: &mut Shared, peer: NodeId, progress: &mut Progress) {
    let attempts_max =
        shared.config.inflight_msgs_max + shared.config.snapshot_chunks_inflight_max + 1;
    for _ in 0..attempts_max {
        if !send_append(shared, peer, progress, false) {
            return;
        }
    }
}

/// Sends one AppendEntries to `peer` from its next index (or, if those entries were
/// compacted away, starts or continues a snapshot). Returns whether a message went
/// out. Without `allow_empty`, nothing is sent when there is nothing new.
fn send_append(
    shared: &mut Shared,
    peer: NodeId,
    progress: &mut Progress,
    allow_empty: bool,
) -> bool {
    if progress.state == ProgressState::Snapshot {
        return send_snapshot_chunk(shared, peer, progress);
    }
    let config = &shared.config;
    if progress.is_paused(config.inflight_msgs_max, config.inflight_bytes_max) {
        return false;
    }
    let last_index = shared.log.last_index();
    let has_new = progress.next_index <= last_index;
    if !has_new && !allow_empty && progress.state == ProgressState::Replicate {
        return false;
    }
    let prev_log_index = progress.next_index.prev();
    let Some(prev_log_term) = shared.log.term_at(prev_log_index) else {
        return start_snapshot(shared, peer, progress);
    };
    let (entries, bytes) = if has_new {
        shared.log.entries_from(
            progress.next_index,
            config.msg_entries_max,
            config.msg_bytes_max,
        )
    } else {
        (Vec::new(), 0)
    };
    let sent_through = LogIndex(prev_log_index.0 + entries.len() as u64);
    match (entries.is_empty(), progress.state) {
        (false, _) => progress.sent_entries(sent_through, bytes),
        (true, ProgressState::Probe) => progress.probe_sent = true,
        (true, _) => {}
    }
    let body = MessageBody::AppendEntries {
        prev_log_index,
        prev_log_term,
        entries,
        leader_commit: shared.log.commit_index(),
    };
    shared.send_now(peer, body);
    has_new
}
