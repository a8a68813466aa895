//! Faults as they fire (partitions, crashes, restarts), the heal at the end of the
//! fault phase, and the liveness check that follows it.

use raft_core::{NodeId, RoleKind};

use crate::env::Ev;
use crate::faults::{CrashTarget, Fault, PartitionKind};
use crate::network::NetworkParams;
use crate::params::TICK_US;
use crate::rng::Ppm;
use crate::timeline::Mark;
use crate::world::World;

impl World {
    /// The node that leads the highest term among the running nodes, if any.
    pub(crate) fn current_leader(&self) -> Option<NodeId> {
        self.hosts
            .iter()
            .filter_map(|h| h.raft.as_ref().map(|r| (h.id, r)))
            .filter(|(_, r)| r.role() == RoleKind::Leader)
            .max_by_key(|(_, r)| r.term())
            .map(|(id, _)| id)
    }

    fn random_node(&mut self) -> NodeId {
        NodeId(self.env.streams.fault.between(1, self.hosts.len() as u64))
    }

    fn mark_network(&mut self, text: String) {
        self.env.trace(|| format!("NETWORK {text}"));
        let now = self.env.sched.now();
        if let Some(t) = &mut self.env.timeline {
            t.mark(Mark::Network { at: now, text });
        }
    }

    pub(crate) fn fire_fault(&mut self, index: usize) {
        if self.healed_at.is_some() {
            return;
        }
        let fault = self.plan.faults[index];
        match fault.fault {
            Fault::Partition {
                kind: PartitionKind::IsolateNextLeader,
                ..
            }
            | Fault::Crash {
                target: CrashTarget::NextLeader,
                ..
            } => {
                if self.armed.len() < crate::faults::FAULTS_MAX {
                    self.armed.push_back(fault.fault);
                }
            }
            Fault::Crash {
                target: CrashTarget::SnapshotReceiver,
                down_ms,
            } => {
                if self.armed_install_crashes.len() < crate::faults::FAULTS_MAX {
                    self.armed_install_crashes.push_back(down_ms);
                }
            }
            Fault::Crash {
                target: CrashTarget::LeaderWithUnsyncedAppends,
                down_ms,
            } => {
                if self.armed_unsynced_crashes.len() < crate::faults::FAULTS_MAX {
                    self.armed_unsynced_crashes.push_back(down_ms);
                }
            }
            Fault::Membership {
                kind,
                at_next_leader: true,
            } => {
                if self.armed_membership.len() < crate::faults::FAULTS_MAX {
                    self.armed_membership.push_back(kind);
                }
            }
            Fault::Membership { kind, .. } => self.fire_membership(kind, None),
            Fault::Partition { kind, duration_ms } => self.partition(kind, duration_ms),
            Fault::Crash { target, down_ms } => self.crash_target(target, down_ms),
        }
    }

    /// Whether `node` is in the same life as when a fault was aimed at it, and leads.
    pub(crate) fn still_leads(&self, node: NodeId, life: u32) -> bool {
        let host = self.hosts.host(node);
        host.life == life
            && host
                .raft
                .as_ref()
                .is_some_and(|r| r.role() == RoleKind::Leader)
    }

    /// `node` just won an election: aim the oldest armed fault at it, up to 20ms from
    /// now (a window that spans the first rounds of replication).
    pub(crate) fn aim_armed_fault(&mut self, node: NodeId) {
        if self.healed_at.is_some() {
            return;
        }
        self.aim_armed_membership(node);
        let Some(fault) = self.armed.pop_front() else {
            return;
        };
        let life = self.hosts.host(node).life;
        let delay_us = self.env.streams.fault.between(0, 20_000);
        self.env
            .schedule_in(delay_us, Ev::AimedFault { node, life, fault });
    }

    pub(crate) fn fire_aimed(&mut self, node: NodeId, life: u32, fault: Fault) {
        if self.healed_at.is_some() || !self.still_leads(node, life) {
            return;
        }
        match fault {
            Fault::Crash { down_ms, .. } => {
                self.crash(node);
                let life = self.hosts.host(node).life;
                self.env
                    .schedule_in(u64::from(down_ms) * 1_000, Ev::Restart { node, life });
            }
            Fault::Partition { duration_ms, .. } => {
                self.env.net.heal();
                self.env.net.isolate(node);
                self.env.coverage.partitions += 1;
                self.partition_epoch += 1;
                let epoch = self.partition_epoch;
                self.mark_network(format!("isolate new leader {node} for {duration_ms}ms"));
                self.env.release_held();
                self.env
                    .schedule_in(u64::from(duration_ms) * 1_000, Ev::HealPartition { epoch });
            }
            Fault::Membership { .. } => unreachable!("membership changes are armed apart"),
        }
    }

    fn partition(&mut self, kind: PartitionKind, duration_ms: u32) {
        let n = self.hosts.len();
        let text = match kind {
            PartitionKind::RandomHalves => {
                let mut groups: Vec<u8> = (0..n)
                    .map(|_| self.env.streams.fault.below(2) as u8)
                    .collect();
                // Both sides non-empty: move one node across if needed.
                if groups.iter().all(|g| *g == groups[0]) {
                    let i = self.env.streams.fault.below(n as u64) as usize;
                    groups[i] ^= 1;
                }
                self.env.net.split(&groups);
                let side: Vec<String> = (0..n)
                    .filter(|i| groups[*i] == 0)
                    .map(|i| format!("n{}", i + 1))
                    .collect();
                format!("split {{{}}} from the rest", side.join(","))
            }
            PartitionKind::IsolateLeader => {
                let leader = self.current_leader().unwrap_or_else(|| self.random_node());
                self.env.net.heal();
                self.env.net.isolate(leader);
                format!("isolate {leader}")
            }
            PartitionKind::MajoritiesRing => {
                let mut ring: Vec<NodeId> = (1..=n as u64).map(NodeId).collect();
                self.env.streams.fault.shuffle(&mut ring);
                self.env.net.majorities_ring(&ring);
                let names: Vec<String> = ring.iter().map(|id| id.to_string()).collect();
                format!("majorities ring {}", names.join("-"))
            }
            PartitionKind::IsolateNextLeader => unreachable!("armed, not fired directly"),
            PartitionKind::ReachesOnlyOne => self.reach_only_one(),
            PartitionKind::CannotHearLeader => self.deafen_to_leader(),
            PartitionKind::OneWay => {
                let node = self.random_node();
                let deaf = self.env.streams.fault.chance(Ppm::from_percent(50.0));
                self.env.net.heal();
                let others: Vec<NodeId> = self.env.net.ids().filter(|o| *o != node).collect();
                for other in others {
                    if deaf {
                        self.env.net.set_link(other, node, false);
                    } else {
                        self.env.net.set_link(node, other, false);
                    }
                }
                if deaf {
                    format!("{node} cannot hear")
                } else {
                    format!("{node} cannot speak")
                }
            }
        };
        self.env.coverage.partitions += 1;
        self.partition_epoch += 1;
        let epoch = self.partition_epoch;
        self.mark_network(format!("{text} for {duration_ms}ms"));
        self.env.release_held();
        self.env
            .schedule_in(u64::from(duration_ms) * 1_000, Ev::HealPartition { epoch });
    }

    /// One node keeps links (both ways) to exactly one other node; every other link
    /// is up. Returns the description.
    fn reach_only_one(&mut self) -> String {
        self.env.net.heal();
        let ids: Vec<NodeId> = self.env.net.ids().collect();
        if ids.len() < 3 {
            return "no node can reach only one in a world of two".into();
        }
        let rng = &mut self.env.streams.targeted;
        let node = *rng.pick(&ids);
        let others: Vec<NodeId> = ids.iter().copied().filter(|o| *o != node).collect();
        let bridge = *rng.pick(&others);
        for other in others.into_iter().filter(|o| *o != bridge) {
            self.env.net.set_link(node, other, false);
            self.env.net.set_link(other, node, false);
        }
        self.env.coverage.partitions_reach_only_one += 1;
        format!("{node} reaches only {bridge}")
    }

    /// Cuts the links from the leader (a random node without one) to some nodes, a
    /// minority of the others, one way: they cannot hear it, it still hears them.
    /// Returns the description.
    fn deafen_to_leader(&mut self) -> String {
        self.env.net.heal();
        let ids: Vec<NodeId> = self.env.net.ids().collect();
        let leader = self
            .current_leader()
            .unwrap_or_else(|| *self.env.streams.targeted.pick(&ids));
        let mut others: Vec<NodeId> = ids.into_iter().filter(|o| *o != leader).collect();
        if others.is_empty() {
            return format!("{leader} has no one to be deaf to it");
        }
        let rng = &mut self.env.streams.targeted;
        rng.shuffle(&mut others);
        let count = rng.between(1, (others.len() as u64 / 2).max(1)) as usize;
        let deaf: Vec<String> = others[..count].iter().map(|id| id.to_string()).collect();
        for other in &others[..count] {
            self.env.net.set_link(leader, *other, false);
        }
        self.env.coverage.partitions_cannot_hear_leader += 1;
        format!("{} cannot hear {leader}", deaf.join(","))
    }

    /// After a step of `node`: if it leads with appends its disk has not synced, aim
    /// the oldest armed unsynced-leader crash at it, before the fsync can complete
    /// (within half the shortest fsync).
    pub(crate) fn aim_unsynced_crash(&mut self, node: NodeId) {
        if self.armed_unsynced_crashes.is_empty() || self.healed_at.is_some() {
            return;
        }
        let host = self.hosts.host(node);
        let leads = host
            .raft
            .as_ref()
            .is_some_and(|r| r.role() == RoleKind::Leader);
        if !leads || !host.disk.has_unsynced_append() {
            return;
        }
        let life = host.life;
        let down_ms = self
            .armed_unsynced_crashes
            .pop_front()
            .expect("checked non-empty");
        let delay_us = self
            .env
            .streams
            .targeted
            .between(0, self.env.params.fsync_us_min / 2);
        self.env.schedule_in(
            delay_us,
            Ev::UnsyncedLeaderCrash {
                node,
                life,
                down_ms,
            },
        );
    }

    pub(crate) fn fire_unsynced_leader_crash(&mut self, node: NodeId, life: u32, down_ms: u32) {
        if self.healed_at.is_some() || !self.still_leads(node, life) {
            return;
        }
        self.env
            .trace(|| format!("CRASH leader {node} with unsynced appends"));
        let lost = self.crash(node);
        self.env.coverage.unsynced_leader_crashes += 1;
        self.env.coverage.unsynced_leader_writes_lost += lost as u64;
        let life = self.hosts.host(node).life;
        self.env
            .schedule_in(u64::from(down_ms) * 1_000, Ev::Restart { node, life });
    }

    pub(crate) fn heal_partition(&mut self, epoch: u64) {
        if epoch == self.partition_epoch && self.env.net.is_partitioned() {
            self.env.net.heal();
            self.mark_network("heal".into());
            self.env.release_held();
        }
    }

    fn crash_target(&mut self, target: CrashTarget, down_ms: u32) {
        let up: Vec<NodeId> = self
            .hosts
            .iter()
            .filter(|h| h.is_up())
            .map(|h| h.id)
            .collect();
        if up.is_empty() {
            return;
        }
        let leader = self.current_leader();
        let victim = match (target, leader) {
            (CrashTarget::Leader, Some(leader)) => leader,
            (
                CrashTarget::NextLeader
                | CrashTarget::SnapshotReceiver
                | CrashTarget::LeaderWithUnsyncedAppends,
                _,
            ) => unreachable!("armed, not fired directly"),
            (CrashTarget::Follower, Some(leader)) if up.len() > 1 => {
                let followers: Vec<NodeId> =
                    up.iter().copied().filter(|id| *id != leader).collect();
                *self.env.streams.fault.pick(&followers)
            }
            _ => *self.env.streams.fault.pick(&up),
        };
        self.crash(victim);
        let life = self.hosts.host(victim).life;
        self.env.schedule_in(
            u64::from(down_ms) * 1_000,
            Ev::Restart { node: victim, life },
        );
    }

    /// Crashes `node`: it loses its memory and whatever its disk had not synced.
    /// Returns how many unsynced writes were lost.
    pub(crate) fn crash(&mut self, node: NodeId) -> usize {
        let host = self.hosts.host_mut(node);
        if !host.is_up() {
            return 0;
        }
        let mut lost = 0;
        self.env.disruption.on_crash(node);
        self.env.cost.on_reign_end(node);
        host.crash();
        match host.disk.crash(&mut self.env.streams.disk) {
            Ok(loss) => {
                lost = loss.writes_lost;
                self.env.coverage.crash_writes_lost += loss.writes_lost as u64;
                self.env.coverage.crash_writes_kept += loss.writes_kept as u64;
                self.env.trace(|| {
                    format!(
                        "CRASH {node} (unsynced writes: {} lost, {} kept)",
                        loss.writes_lost, loss.writes_kept
                    )
                });
            }
            Err(e) => {
                let detail = format!("persist {} (kept at crash): {}", e.seq, e.reason);
                self.env.violate(crate::checkers::Violation::at_node(
                    crate::checkers::ViolationKind::Contract,
                    node,
                    detail,
                ));
            }
        }
        self.env.coverage.crashes += 1;
        let now = self.env.sched.now();
        if let Some(t) = &mut self.env.timeline {
            t.mark(Mark::Crash { node, at: now });
        }
        lost
    }

    pub(crate) fn restart(&mut self, node: NodeId, life: u32) {
        let host = self.hosts.host(node);
        if host.life != life || host.is_up() || host.kept_down || host.retired {
            return;
        }
        self.env.coverage.restarts += 1;
        self.env.trace(|| format!("RESTART {node}"));
        let now = self.env.sched.now();
        if let Some(t) = &mut self.env.timeline {
            t.mark(Mark::Restart { node, at: now });
        }
        self.boot(node);
    }

    /// The fault phase is over: heal the network, calm it, restart the quorum core
    /// (perhaps leaving a minority down), stop the nodes a committed configuration
    /// removed, and start the liveness clock.
    pub(crate) fn end_fault_phase(&mut self) {
        let now = self.env.sched.now();
        self.healed_at = Some(now);
        self.partition_epoch += 1;
        self.env.net.heal();
        self.env.net.params = NetworkParams {
            delay_us_min: self.env.params.network.delay_us_min,
            ..NetworkParams::calm()
        };
        // Whatever the partitions held arrives now, long after it was sent.
        self.env.release_held();
        let kept_down = if self.env.params.minority_stays_down {
            self.choose_kept_down()
        } else {
            Vec::new()
        };
        let down: Vec<String> = kept_down.iter().map(|id| id.to_string()).collect();
        self.mark_network(format!("heal all; keep down [{}]", down.join(",")));
        for id in (1..=self.hosts.len() as u64).map(NodeId) {
            let host = self.hosts.host(id);
            if kept_down.contains(&id) {
                self.crash(id);
                self.hosts.host_mut(id).kept_down = true;
            } else if host.retired && !self.removed_nodes_are_harmless() {
                // Outside the configuration: liveness must not depend on it. Without
                // both PreVote and CheckQuorum, a removed node that missed the news
                // of its removal may disrupt the cluster with ever newer terms (thesis
                // §4.2.3), so it is stopped; with both, a running one stays up, and
                // the cluster must stay live around it.
                self.crash(id);
            } else if !host.is_up() {
                self.env.coverage.restarts += 1;
                self.boot(id);
            }
        }
        for client in &mut self.clients {
            client.stop_issuing();
        }
    }

    /// Whether a removed node left running cannot disturb the cluster: PreVote keeps
    /// its polls from raising terms, and the leader stickiness that comes with
    /// CheckQuorum makes members ignore it while they hear from a leader.
    fn removed_nodes_are_harmless(&self) -> bool {
        self.env.params.pre_vote && self.env.params.check_quorum
    }

    /// Voters of the committed configuration to keep down after the heal: 1 to
    /// (voters - 1) / 2 of them, and never a half or more of the voters of any
    /// configuration a node holds (joint halves counted apart), so that the nodes
    /// left up are a quorum of whichever configuration ends up leading.
    fn choose_kept_down(&mut self) -> Vec<NodeId> {
        let committed = self.env.members.committed_latest().1.clone();
        let mut candidates: Vec<NodeId> = committed.voters.iter().copied().collect();
        let v = candidates.len() as u64;
        if v < 3 {
            return Vec::new();
        }
        let count = self.env.streams.fault.between(1, (v - 1) / 2) as usize;
        self.env.streams.fault.shuffle(&mut candidates);
        let mut voter_sets = vec![committed.voters.clone()];
        for host in self.hosts.iter().filter(|h| !h.retired) {
            let m = crate::reconfig::membership_of_host(host);
            voter_sets.push(m.voters);
            voter_sets.push(m.voters_outgoing);
        }
        voter_sets.retain(|set| !set.is_empty());
        let mut kept: Vec<NodeId> = Vec::new();
        for id in candidates {
            if kept.len() == count {
                break;
            }
            let minority_everywhere = voter_sets.iter().all(|set| {
                let down = kept.iter().chain([&id]).filter(|k| set.contains(k)).count();
                2 * down < set.len()
            });
            if minority_everywhere {
                kept.push(id);
            }
        }
        kept
    }

    /// After the heal: notes when a leader appeared and when every client finished.
    /// Returns true when the run may end; records a liveness failure past a bound.
    pub(crate) fn check_liveness_progress(&mut self) -> bool {
        let Some(healed_at) = self.healed_at else {
            return false;
        };
        let now = self.env.sched.now();
        if self.leader_at.is_none() && self.current_leader().is_some() {
            self.leader_at = Some(now);
        }
        if self.ops_done_at.is_none() && self.clients.iter().all(|c| c.is_idle()) {
            self.ops_done_at = Some(now);
        }
        let elapsed_ticks = now.since_us(healed_at) / TICK_US;
        let p = &self.env.params;
        if self.leader_at.is_none() && elapsed_ticks > p.liveness_leader_ticks_max {
            self.liveness_failure = Some(format!(
                "no leader within {} ticks of the heal",
                p.liveness_leader_ticks_max
            ));
            return true;
        }
        if self.ops_done_at.is_none() && elapsed_ticks > p.liveness_ops_ticks_max {
            let pending = self.clients.iter().filter(|c| !c.is_idle()).count();
            self.liveness_failure = Some(format!(
                "{pending} client operation(s) still pending {} ticks after the heal (leader: {})",
                p.liveness_ops_ticks_max,
                self.current_leader()
                    .map_or("none".to_string(), |l| l.to_string())
            ));
            return true;
        }
        self.leader_at.is_some() && self.ops_done_at.is_some()
    }
}
