//! What the world notes about each message delivered to a running node, before the
//! node steps it: how late it is, whether it comes from an older term than the
//! receiver's (stale-term appends and answers must be exercised, not merely
//! possible, so the sweep's coverage check counts them), whether an AppendResponse
//! answers an older AppendEntries, and the contact the disruption checker reads.

use std::collections::BTreeMap;

use raft_core::{AppendOutcome, LogIndex, Message, MessageBody, NodeId, RaftNode, RoleKind, Term};

use crate::env::Env;
use crate::network::LATE_DELAY_US_MIN;
use crate::time::SimTime;

/// The newest acknowledgement each leader had from each follower, per term: an
/// AppendResponse below it answers an older AppendEntries (reordered or late).
#[derive(Clone, Debug, Default)]
pub(crate) struct AckWatermarks {
    /// (leader, follower) to (term, highest match index acknowledged).
    acked: BTreeMap<(NodeId, NodeId), (Term, LogIndex)>,
}

impl AckWatermarks {
    /// Records an acknowledgement; returns whether it was older than one seen.
    fn observe(&mut self, leader: NodeId, follower: NodeId, term: Term, index: LogIndex) -> bool {
        let entry = self
            .acked
            .entry((leader, follower))
            .or_insert((term, index));
        if entry.0 != term {
            *entry = (term, index);
            return false;
        }
        let older = index < entry.1;
        entry.1 = entry.1.max(index);
        older
    }
}

/// Notes the delivery of `msg`, sent at `sent`, to the running `receiver`.
pub(crate) fn observe_delivery(env: &mut Env, receiver: &RaftNode, msg: &Message, sent: SimTime) {
    let now = env.sched.now();
    env.disruption.on_delivery(msg.from, msg.to, sent, now);
    let c = &mut env.coverage;
    if now.since_us(sent) > LATE_DELAY_US_MIN {
        c.msgs_delivered_late += 1;
    }
    if msg.term < receiver.term() {
        match &msg.body {
            MessageBody::AppendEntries { .. } => c.stale_appends_delivered += 1,
            MessageBody::AppendResponse(_) => c.stale_append_responses_delivered += 1,
            MessageBody::VoteRequest { .. } | MessageBody::VoteResponse { .. } => {
                c.stale_votes_delivered += 1;
            }
            _ => {}
        }
        return;
    }
    let leads = receiver.role() == RoleKind::Leader;
    match msg.body {
        MessageBody::AppendResponse(AppendOutcome::Accepted { .. }) if leads => {
            env.cost.on_accepted(msg.to, msg.from, msg.term);
        }
        MessageBody::InstallSnapshotResponse { done: true, .. } if leads => {
            env.cost.on_accepted(msg.to, msg.from, msg.term);
        }
        _ => {}
    }
    if let MessageBody::AppendResponse(AppendOutcome::Accepted { match_index }) = msg.body {
        let older = env.acks.observe(msg.to, msg.from, msg.term, match_index);
        if older {
            env.coverage.old_append_responses_delivered += 1;
        }
    }
}
