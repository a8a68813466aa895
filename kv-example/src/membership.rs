//! Membership changes as the front ends ask for them: add a node (as a learner,
//! then, once it has caught up, as a voter) and remove one. Adding a node that is a
//! member already publishes the given addresses if the replicated table has others
//! (a node that moved), so `add-node` also re-addresses.
//!
//! Each procedure looks at the leader's state and takes the next step, again and
//! again, until the goal shows in the *applied* membership (so it is committed):
//! a step refused because another change is still in flight (the leader leaving a
//! joint configuration, a change just made by someone else) is simply retried, and
//! a request retried after a lost answer resumes where the first one stopped. Every
//! procedure ends within [`MEMBERSHIP_CHANGE_TIMEOUT`].

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kv_model::Command;
use raft_core::{DropReason, LogIndex, MembershipChange, NodeId, RoleKind};
use raft_mio::{AppendError, Client, LeaderHint, MemberAddrs, NodeStatus};

use crate::addrs::{APP_CLIENT, APP_HTTP};
use crate::api::{KvError, LeaderRef, MemberReport, MembershipReport, NewNode};

/// How long adding or removing a node may take, catch-up included, before the
/// request answers with a timeout (the change may still complete; retrying the same
/// request resumes it).
pub const MEMBERSHIP_CHANGE_TIMEOUT: Duration = Duration::from_secs(60);

/// How often a procedure looks at the leader's state again.
const STEP_INTERVAL: Duration = Duration::from_millis(20);

/// The leader as the front ends name it, from raft-mio's hint.
pub fn leader_ref(hint: &LeaderHint) -> LeaderRef {
    LeaderRef {
        id: hint.id.0,
        client_addr: hint.app_addrs.get(APP_CLIENT).cloned(),
        http_addr: hint.app_addrs.get(APP_HTTP).cloned(),
    }
}

/// The membership in force and every member's addresses, from a node's status.
pub fn membership_report(status: &NodeStatus) -> MembershipReport {
    let ids = |set: &BTreeSet<NodeId>| -> Vec<u64> { set.iter().map(|id| id.0).collect() };
    let membership = &status.membership;
    let members = membership
        .members()
        .into_iter()
        .map(|id| {
            let addrs = status.members.get(&id);
            let app = |name: &str| addrs.and_then(|a| a.app(name)).map(str::to_string);
            MemberReport {
                id: id.0,
                role: if membership.is_voter(id) {
                    "voter"
                } else {
                    "learner"
                }
                .into(),
                raft_addr: addrs.map(|a| a.raft.clone()),
                client_addr: app(APP_CLIENT),
                http_addr: app(APP_HTTP),
            }
        })
        .collect();
    MembershipReport {
        voters: ids(&membership.voters),
        voters_outgoing: ids(&membership.voters_outgoing),
        learners: ids(&membership.learners),
        members,
    }
}

/// Adds `node`: as a learner with its addresses, then, once it holds what the
/// leader had committed when it became a learner, as a voter.
pub fn add_node(
    client: &Client<Command>,
    node: &NewNode,
    timeout: Duration,
) -> Result<MembershipReport, KvError> {
    node.validate().map_err(KvError::Invalid)?;
    let id = NodeId(node.id);
    let addrs = MemberAddrs::new(&node.raft_addr)
        .with(APP_CLIENT, &node.client_addr)
        .with(APP_HTTP, &node.http_addr);
    let deadline = Instant::now() + timeout;
    // The leader's commit index when the node was first seen a learner: it has
    // caught up once it holds that much.
    let mut catch_up_to: Option<LogIndex> = None;
    loop {
        let status = status_of(client)?;
        let applied = &status.applied_membership;
        let settled = !applied.is_joint() && status.membership == *applied;
        let addressed = status.members.get(&id) == Some(&addrs);
        if settled && applied.voters.contains(&id) && addressed {
            return Ok(membership_report(&status));
        }
        let leader = leader_only(&status)?;
        if settled && applied.contains(id) && !addressed {
            // A member already, but the table has other addresses for it (it moved,
            // or its record was lost): publish these.
            publish(client, id, &addrs)?;
        } else if settled && applied.learners.contains(&id) {
            let target = *catch_up_to.get_or_insert(leader.commit_index);
            let matched = leader.replication.get(&id).map(|p| p.match_index);
            if matched >= Some(target) {
                step(client, MembershipChange::AddVoter(id), None)?;
            }
        } else if settled {
            step(client, MembershipChange::AddLearner(id), Some(&addrs))?;
        }
        pause_until(
            deadline,
            "the node to be added, caught up and promoted",
            timeout,
        )?;
    }
}

/// Removes node `id` (a voter or a learner; the leader itself too).
pub fn remove_node(
    client: &Client<Command>,
    id: u64,
    timeout: Duration,
) -> Result<MembershipReport, KvError> {
    let node = NodeId(id);
    let deadline = Instant::now() + timeout;
    let mut requested = false;
    loop {
        let status = status_of(client)?;
        let applied = &status.applied_membership;
        let settled = !applied.is_joint() && status.membership == *applied;
        // Checked before leadership: a leader that removed itself steps down once
        // its removal commits, and that is success.
        if settled && !applied.contains(node) {
            if requested {
                return Ok(membership_report(&status));
            }
            leader_only(&status)?;
            return Err(KvError::NotMember(id));
        }
        leader_only(&status)?;
        if settled {
            step(client, MembershipChange::Remove(node), None)?;
            requested = true;
        }
        pause_until(deadline, "the node's removal to commit", timeout)?;
    }
}

fn status_of(client: &Client<Command>) -> Result<NodeStatus, KvError> {
    client.status().map_err(|_| KvError::Stopped)
}

/// The status if this node leads; otherwise who does.
fn leader_only(status: &NodeStatus) -> Result<&NodeStatus, KvError> {
    if status.role == RoleKind::Leader {
        return Ok(status);
    }
    Err(KvError::NotLeader {
        leader: status.leader.as_ref().map(leader_ref),
    })
}

/// Proposes one change and waits for its entry to commit. A refusal that passes
/// (another change in flight, a leadership transfer, a fate unknown) is not an
/// error: the caller looks at the state again.
fn step(
    client: &Client<Command>,
    change: MembershipChange,
    addrs: Option<&MemberAddrs>,
) -> Result<(), KvError> {
    let id = match change {
        MembershipChange::AddLearner(id)
        | MembershipChange::AddVoter(id)
        | MembershipChange::Remove(id) => id,
    };
    let addrs = addrs.map(|a| (id, a.clone()));
    tracing::info!(?change, "changing the membership");
    match client.change_membership(vec![change], addrs) {
        Ok(_) => Ok(()),
        Err(AppendError::Dropped(DropReason::InvalidMembership)) => Err(KvError::Invalid(format!(
            "{change:?} would leave the cluster without a voter"
        ))),
        // Refused for now, or its fate unknown: the caller looks at the state again
        // and takes the step that is still needed (changes are goals, not deltas).
        Err(e @ (AppendError::Dropped(_) | AppendError::Unknown(_))) => {
            tracing::debug!(?change, "membership change not done yet ({e}); retrying");
            Ok(())
        }
        Err(AppendError::NotLeader(hint)) => Err(KvError::NotLeader {
            leader: hint.as_ref().map(leader_ref),
        }),
        Err(AppendError::Shutdown) => Err(KvError::Stopped),
        Err(e @ (AppendError::Encode(_) | AppendError::TooLarge { .. })) => {
            Err(KvError::Invalid(e.to_string()))
        }
    }
}

/// Publishes node `id`'s addresses in the replicated table and waits for them to
/// commit.
fn publish(client: &Client<Command>, id: NodeId, addrs: &MemberAddrs) -> Result<(), KvError> {
    tracing::info!(node = %id, ?addrs, "publishing a member's addresses");
    match client.publish_member_addrs([(id, addrs.clone())]) {
        // The caller checks the table again either way.
        Ok(_) | Err(AppendError::Dropped(_) | AppendError::Unknown(_)) => Ok(()),
        Err(AppendError::NotLeader(hint)) => Err(KvError::NotLeader {
            leader: hint.as_ref().map(leader_ref),
        }),
        Err(AppendError::Shutdown) => Err(KvError::Stopped),
        Err(e @ (AppendError::Encode(_) | AppendError::TooLarge { .. })) => {
            Err(KvError::Invalid(e.to_string()))
        }
    }
}

/// Sleeps a step interval, or fails if the deadline has passed.
fn pause_until(deadline: Instant, what: &'static str, after: Duration) -> Result<(), KvError> {
    if Instant::now() >= deadline {
        return Err(KvError::Timeout { what, after });
    }
    std::thread::sleep(STEP_INTERVAL);
    Ok(())
}
