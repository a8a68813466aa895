//! Membership changes as the fault plan fires them, the retirement of nodes a
//! committed configuration removed, and crashes aimed at a node receiving a
//! snapshot. Every choice here draws from the reconfiguration stream, so worlds
//! without membership changes draw everything else as they always did.

use std::fmt::Write as _;

use raft_core::{Event, LogIndex, Membership, MembershipChange, NodeId, ProposalId};

use crate::env::Ev;
use crate::faults::MembershipKind;
use crate::host::NodeHost;
use crate::params::MembershipParams;
use crate::rng::Ppm;
use crate::timeline::Mark;
use crate::world::World;

/// The changes `kind` asks of a leader `leader` whose membership is `m`, if they
/// apply: a spare from `spares` to add, a learner (or two) to promote, a voter (or
/// two) to remove while at least [`MembershipParams::VOTERS_MIN`] remain, or two
/// voters replaced by two learners or spares.
fn changes_for(
    kind: MembershipKind,
    leader: NodeId,
    m: &Membership,
    spares: &[NodeId],
    pick: &mut impl FnMut(&[NodeId]) -> NodeId,
) -> Option<Vec<MembershipChange>> {
    use MembershipChange::{AddLearner, AddVoter, Remove};
    let voters: Vec<NodeId> = m.voters.iter().copied().collect();
    let learners: Vec<NodeId> = m.learners.iter().copied().collect();
    let removable = voters.len() > MembershipParams::VOTERS_MIN;
    let changes = match kind {
        MembershipKind::AddSpare if !spares.is_empty() => vec![AddLearner(pick(spares))],
        MembershipKind::Promote if !learners.is_empty() => vec![AddVoter(pick(&learners))],
        MembershipKind::RemoveFollower if removable => {
            let followers: Vec<NodeId> = voters.iter().copied().filter(|v| *v != leader).collect();
            vec![Remove(pick(&followers))]
        }
        MembershipKind::RemoveLeader if removable && m.voters.contains(&leader) => {
            vec![Remove(leader)]
        }
        MembershipKind::PromoteTwo if learners.len() + spares.len() >= 2 => {
            pick_two(&joining(&learners, spares), pick)
                .map(AddVoter)
                .to_vec()
        }
        MembershipKind::RemoveTwo if voters.len() >= MembershipParams::VOTERS_MIN + 2 => {
            pick_two(&voters, pick).map(Remove).to_vec()
        }
        MembershipKind::ReplaceTwo if voters.len() >= 2 && learners.len() + spares.len() >= 2 => {
            let mut changes = pick_two(&voters, pick).map(Remove).to_vec();
            changes.extend(pick_two(&joining(&learners, spares), pick).map(AddVoter));
            changes
        }
        _ => return None,
    };
    debug_assert!(!changes.is_empty());
    Some(changes)
}

/// The nodes to make voters, two at a time: learners if there are two, since they
/// hold the log already; otherwise spares too, which join empty, as voters at once,
/// so that the new half may have to wait for them to catch up.
fn joining(learners: &[NodeId], spares: &[NodeId]) -> Vec<NodeId> {
    if learners.len() >= 2 {
        learners.to_vec()
    } else {
        learners.iter().chain(spares).copied().collect()
    }
}

/// Two different ids of `ids` (at least two).
fn pick_two(ids: &[NodeId], pick: &mut impl FnMut(&[NodeId]) -> NodeId) -> [NodeId; 2] {
    debug_assert!(ids.len() >= 2);
    let first = pick(ids);
    let rest: Vec<NodeId> = ids.iter().copied().filter(|id| *id != first).collect();
    [first, pick(&rest)]
}

impl World {
    /// Asks `leader` (the current leader if None) for the membership change `kind`,
    /// or the next kind that applies to its membership.
    pub(crate) fn fire_membership(&mut self, kind: MembershipKind, leader: Option<NodeId>) {
        let Some(leader) = leader.or_else(|| self.current_leader()) else {
            return;
        };
        let Some(raft) = self.hosts.host(leader).raft.as_ref() else {
            return;
        };
        let membership = raft.membership().clone();
        // Spares: never added, never retired, not already in the leader's log.
        let spares: Vec<NodeId> = self
            .hosts
            .iter()
            .filter(|h| !h.was_member && !h.retired && !membership.contains(h.id))
            .map(|h| h.id)
            .collect();
        let rng = &mut self.env.streams.reconfig;
        let mut pick = |ids: &[NodeId]| *rng.pick(ids);
        let changes = kind
            .fallbacks()
            .into_iter()
            .find_map(|k| changes_for(k, leader, &membership, &spares, &mut pick));
        let Some(changes) = changes else {
            return;
        };
        let id = ProposalId(self.env.proposal_next);
        self.env.proposal_next += 1;
        self.env.coverage.membership_proposed += 1;
        let label = describe(&changes);
        self.env
            .trace(|| format!("MEMBERSHIP ask {leader} to {changes:?} ({id})"));
        self.mark_membership(format!("ask n{}: {label}", leader.0));
        let before = membership.voters.clone();
        self.env
            .membership_proposals
            .insert(id, (changes.clone(), leader, before));
        self.step(leader, Event::ChangeMembership { id, changes });
    }

    /// After a step: if a newer configuration committed, note its members, and
    /// retire the nodes it removed: each is stopped now, or (half the time) left
    /// running outside the configuration until the heal, which must be harmless.
    pub(crate) fn after_membership_commit(&mut self) {
        let (index, committed) = self.env.members.committed_latest();
        if index <= self.membership_seen {
            return;
        }
        self.membership_seen = index;
        let label = format!("committed i{}: {}", index.0, describe_config(committed));
        let members = committed.members();
        self.mark_membership(label);
        let mut removed = Vec::new();
        for host in self.hosts.iter_mut() {
            if members.contains(&host.id) {
                host.was_member = true;
            } else if host.was_member && !host.retired {
                host.retired = true;
                removed.push(host.id);
            }
        }
        // Clients learn the new member list, as their operators would tell them.
        let endpoints: Vec<NodeId> = self
            .hosts
            .iter()
            .filter(|h| h.was_member && !h.retired)
            .map(|h| h.id)
            .collect();
        for client in &mut self.clients {
            client.set_endpoints(endpoints.clone());
        }
        for id in removed {
            self.env.trace(|| format!("MEMBERSHIP {id} retired"));
            let stop_now = self.env.streams.reconfig.chance(Ppm::from_percent(50.0));
            if stop_now && self.healed_at.is_none() && self.hosts.host(id).is_up() {
                self.env.coverage.removed_nodes_stopped += 1;
                self.crash(id);
            }
        }
    }

    fn mark_membership(&mut self, text: String) {
        let now = self.env.sched.now();
        if let Some(t) = &mut self.env.timeline {
            t.mark(Mark::Membership { at: now, text });
        }
    }

    /// `node` just stepped an InstallSnapshot chunk: aim the oldest armed
    /// snapshot-install crash at it, right away (between chunks, or before the
    /// snapshot it asked to persist is durable) or a little later.
    pub(crate) fn aim_install_crash(&mut self, node: NodeId) {
        if self.healed_at.is_some() || !self.hosts.host(node).is_up() {
            return;
        }
        let Some(down_ms) = self.armed_install_crashes.pop_front() else {
            return;
        };
        let life = self.hosts.host(node).life;
        let rng = &mut self.env.streams.reconfig;
        let delay_us = if rng.chance(Ppm::from_percent(50.0)) {
            0
        } else {
            rng.between(1, self.env.params.fsync_us_max.max(1))
        };
        self.env.schedule_in(
            delay_us,
            Ev::InstallCrash {
                node,
                life,
                down_ms,
            },
        );
    }

    pub(crate) fn fire_install_crash(&mut self, node: NodeId, life: u32, down_ms: u32) {
        let host = self.hosts.host(node);
        if self.healed_at.is_some() || host.life != life || !host.is_up() {
            return;
        }
        self.env.coverage.snapshot_install_crashes += 1;
        self.env
            .trace(|| format!("CRASH {node} while installing a snapshot"));
        self.crash(node);
        let life = self.hosts.host(node).life;
        self.env
            .schedule_in(u64::from(down_ms) * 1_000, Ev::Restart { node, life });
    }

    /// `node` just won an election: aim the oldest armed membership change at it,
    /// within 3ms (usually before its first entry commits).
    pub(crate) fn aim_armed_membership(&mut self, node: NodeId) {
        if self.healed_at.is_some() {
            return;
        }
        let Some(kind) = self.armed_membership.pop_front() else {
            return;
        };
        let life = self.hosts.host(node).life;
        let delay_us = self.env.streams.reconfig.between(0, 3_000);
        self.env
            .schedule_in(delay_us, Ev::AimedMembership { node, life, kind });
    }

    pub(crate) fn fire_aimed_membership(&mut self, node: NodeId, life: u32, kind: MembershipKind) {
        if self.healed_at.is_some() || !self.still_leads(node, life) {
            return;
        }
        self.fire_membership(kind, Some(node));
    }
}

/// Changes as the timeline labels them: `+voter n4 +voter n5`.
fn describe(changes: &[MembershipChange]) -> String {
    let one = |change: &MembershipChange| match change {
        MembershipChange::AddLearner(id) => format!("+learner n{}", id.0),
        MembershipChange::AddVoter(id) => format!("+voter n{}", id.0),
        MembershipChange::Remove(id) => format!("-n{}", id.0),
    };
    changes.iter().map(one).collect::<Vec<_>>().join(" ")
}

/// A configuration as the timeline labels it: `voters 1,2,3 (joint with 1,2,4)
/// learners 5`.
fn describe_config(membership: &Membership) -> String {
    let list = |ids: &std::collections::BTreeSet<NodeId>| {
        let ids: Vec<String> = ids.iter().map(|id| id.0.to_string()).collect();
        if ids.is_empty() {
            "-".to_string()
        } else {
            ids.join(",")
        }
    };
    let mut text = format!("voters {}", list(&membership.voters));
    if !membership.voters_outgoing.is_empty() {
        let _ = write!(text, " (joint with {})", list(&membership.voters_outgoing));
    }
    let _ = write!(text, " learners {}", list(&membership.learners));
    text
}

/// The membership `host` would have in force if it ran now: its node's, or for a
/// crashed node the newest configuration on its disk.
pub(crate) fn membership_of_host(host: &NodeHost) -> Membership {
    if let Some(raft) = &host.raft {
        return raft.membership().clone();
    }
    let durable = host.disk.durable();
    let in_log = durable.entries.iter().rev().find_map(|e| match &e.payload {
        raft_core::EntryPayload::Membership(m) => Some((**m).clone()),
        _ => None,
    });
    in_log
        .or_else(|| {
            durable
                .snapshot
                .as_ref()
                .filter(|s| s.meta.last_index > LogIndex(0))
                .map(|s| s.meta.membership.clone())
        })
        .unwrap_or_else(|| Membership {
            voters: host.config.initial_voters.clone(),
            voters_outgoing: Default::default(),
            learners: host.config.initial_learners.clone(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[u64]) -> Vec<NodeId> {
        list.iter().map(|n| NodeId(*n)).collect()
    }

    fn first(list: &[NodeId]) -> NodeId {
        list[0]
    }

    #[test]
    fn removals_keep_the_voter_floor() {
        let three = Membership::new(ids(&[1, 2, 3]));
        let leader = NodeId(1);
        for kind in [MembershipKind::RemoveFollower, MembershipKind::RemoveLeader] {
            assert_eq!(changes_for(kind, leader, &three, &[], &mut first), None);
        }
        let four = Membership::new(ids(&[1, 2, 3, 4]));
        assert_eq!(
            changes_for(
                MembershipKind::RemoveFollower,
                leader,
                &four,
                &[],
                &mut first
            ),
            Some(vec![MembershipChange::Remove(NodeId(2))])
        );
        assert_eq!(
            changes_for(MembershipKind::RemoveLeader, leader, &four, &[], &mut first),
            Some(vec![MembershipChange::Remove(leader)])
        );
    }

    #[test]
    fn spares_are_added_as_learners_and_learners_promoted() {
        let mut m = Membership::new(ids(&[1, 2, 3]));
        let leader = NodeId(1);
        let add = changes_for(MembershipKind::AddSpare, leader, &m, &ids(&[4]), &mut first);
        assert_eq!(add, Some(vec![MembershipChange::AddLearner(NodeId(4))]));
        assert_eq!(
            changes_for(MembershipKind::AddSpare, leader, &m, &[], &mut first),
            None
        );
        assert_eq!(
            changes_for(MembershipKind::Promote, leader, &m, &[], &mut first),
            None
        );
        m.learners.insert(NodeId(4));
        assert_eq!(
            changes_for(MembershipKind::Promote, leader, &m, &[], &mut first),
            Some(vec![MembershipChange::AddVoter(NodeId(4))])
        );
    }

    #[test]
    fn two_voters_change_at_once_and_keep_the_floor() {
        use MembershipChange::{AddVoter, Remove};
        let leader = NodeId(1);
        let mut three = Membership::new(ids(&[1, 2, 3]));
        let promote = MembershipKind::PromoteTwo;
        assert_eq!(changes_for(promote, leader, &three, &[], &mut first), None);
        assert_eq!(
            changes_for(promote, leader, &three, &ids(&[6, 7]), &mut first),
            Some(vec![AddVoter(NodeId(6)), AddVoter(NodeId(7))]),
            "spares join as voters at once when there are no learners"
        );
        three.learners.extend(ids(&[4, 5]));
        assert_eq!(
            changes_for(promote, leader, &three, &[], &mut first),
            Some(vec![AddVoter(NodeId(4)), AddVoter(NodeId(5))])
        );
        let remove = MembershipKind::RemoveTwo;
        assert_eq!(
            changes_for(remove, leader, &three, &[], &mut first),
            None,
            "3 - 2 < 3"
        );
        let five = Membership::new(ids(&[1, 2, 3, 4, 5]));
        assert_eq!(
            changes_for(remove, leader, &five, &[], &mut first),
            Some(vec![Remove(NodeId(1)), Remove(NodeId(2))])
        );
        let replace = MembershipKind::ReplaceTwo;
        let plain = Membership::new(ids(&[1, 2, 3]));
        assert_eq!(
            changes_for(replace, leader, &plain, &ids(&[6, 7]), &mut first),
            Some(vec![
                Remove(NodeId(1)),
                Remove(NodeId(2)),
                AddVoter(NodeId(6)),
                AddVoter(NodeId(7))
            ]),
            "spares join as voters when there are no learners"
        );
        assert_eq!(
            changes_for(replace, leader, &plain, &ids(&[6]), &mut first),
            None
        );
    }

    #[test]
    fn a_two_voter_kind_falls_back_on_the_others_then_on_single_changes() {
        let kinds = MembershipKind::RemoveTwo.fallbacks();
        assert_eq!(
            kinds[..3],
            [
                MembershipKind::RemoveTwo,
                MembershipKind::ReplaceTwo,
                MembershipKind::PromoteTwo
            ]
        );
        assert_eq!(kinds[3..], MembershipKind::SINGLE);
        assert_eq!(
            MembershipKind::Promote.fallbacks(),
            [
                MembershipKind::Promote,
                MembershipKind::RemoveFollower,
                MembershipKind::RemoveLeader,
                MembershipKind::AddSpare
            ]
        );
    }
}
