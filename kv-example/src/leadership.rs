//! Handing leadership to another voter on request (`transfer ID` on the text
//! protocol, `POST /cluster/leader` over HTTP, `transfer N` on the console).
//!
//! The leader asks raft-mio for a transfer (Raft thesis §3.10: it brings the target
//! up to date, then tells it to campaign at once) and answers once the target leads.
//! The core abandons a transfer the target does not finish within an election
//! timeout, so the request is repeated now and then while this node still leads.
//! Every request ends within [`LEADERSHIP_TRANSFER_TIMEOUT`].

use std::time::{Duration, Instant};

use kv_model::Command;
use raft_core::{NodeId, RoleKind};
use raft_mio::{Client, NodeStatus};

use crate::api::KvError;
use crate::membership::leader_ref;

/// How long a transfer may take before the request gives up (the transfer may
/// still finish; asking again is safe).
pub const LEADERSHIP_TRANSFER_TIMEOUT: Duration = Duration::from_secs(3);

/// How often the node's state is looked at while the transfer runs.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How long a transfer request is given before it is made again (a few election
/// timeouts at the default tick).
const REQUEST_AGAIN_AFTER: Duration = Duration::from_millis(500);

/// Makes node `id` the leader; answers once it leads. Only the leader does it; a
/// node that is not a voter cannot lead.
pub fn transfer_leader(
    client: &Client<Command>,
    id: u64,
    timeout: Duration,
) -> Result<(), KvError> {
    let target = NodeId(id);
    let status = status_of(client)?;
    if status.role != RoleKind::Leader {
        return Err(KvError::NotLeader {
            leader: status.leader.as_ref().map(leader_ref),
        });
    }
    if status.id == target {
        return Ok(());
    }
    if !status.membership.contains(target) {
        return Err(KvError::NotMember(id));
    }
    if !status.membership.is_voter(target) {
        return Err(KvError::Invalid(format!(
            "node {id} is a learner; only a voter can lead"
        )));
    }
    let deadline = Instant::now() + timeout;
    let mut requested_at: Option<Instant> = None;
    loop {
        let status = status_of(client)?;
        if leads(&status, target) {
            return Ok(());
        }
        let due = requested_at.is_none_or(|at| at.elapsed() >= REQUEST_AGAIN_AFTER);
        if status.role == RoleKind::Leader && due {
            tracing::info!(to = %target, "transferring leadership");
            client
                .transfer_leadership(target)
                .map_err(|_| KvError::Stopped)?;
            requested_at = Some(Instant::now());
        }
        if Instant::now() >= deadline {
            return Err(KvError::Unavailable(format!(
                "node {id} did not take over within {} ms; the transfer may still \
                 finish, ask again",
                timeout.as_millis()
            )));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Whether this node, no longer leading, follows `target`.
fn leads(status: &NodeStatus, target: NodeId) -> bool {
    status.role != RoleKind::Leader && status.leader.as_ref().is_some_and(|l| l.id == target)
}

fn status_of(client: &Client<Command>) -> Result<NodeStatus, KvError> {
    client.status().map_err(|_| KvError::Stopped)
}
