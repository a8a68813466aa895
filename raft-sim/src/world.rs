//! The world: every node, disk, client and link of one run, driven by the scheduler
//! in virtual time. `World::run` pops events until the run ends (a violation, the
//! liveness check settles, or the event budget runs out).
//!
//! The driving rule for each node (the core's contract): step one event, then carry
//! out the returned actions in order ([`exec`](crate::exec)); persistence goes to the
//! simulated disk and is reported with `Event::Persisted` only when its fsync
//! completes.

use raft_core::{
    Action, AppendOutcome, Config, Event, LogIndex, Message, MessageBody, NodeId, ProposalId,
    ReadId, RoleKind, SharedBytes,
};

use crate::checkers::commit::CommitChecker;
use crate::checkers::disruption::DisruptionChecker;
use crate::checkers::election::ElectionChecker;
use crate::checkers::log_matching::LogMatchingChecker;
use crate::checkers::membership::MembershipChecker;
use crate::checkers::state::{StateChecker, StateSource};
use crate::checkers::{Violation, ViolationKind};
use crate::client::{Client, ClientEffect, ClientRequest, RequestBody};
use crate::coverage::Coverage;
use crate::digest::Digest;
pub use crate::env::Checks;
use crate::env::{Env, Ev};
use crate::exec;
use crate::faults::FaultPlan;
use crate::history::{History, OpStatus};
use crate::host::{NodeHost, PendingRead, PendingWrite};
use crate::hosts::Hosts;
use crate::linearizability::kv::KvInput;
use crate::network::Network;
use crate::params::{SimParams, TICK_US};
use crate::rng::Streams;
use crate::scheduler::Scheduler;
use crate::time::SimTime;
use crate::timeline::{Arrow, Mark, Timeline};
use crate::trace::Trace;

/// How a run is observed.
#[derive(Debug, Default)]
pub struct RunOptions {
    /// Which optional checkers run.
    pub checks: Checks,
    /// Where trace lines go.
    pub trace: Trace,
    /// Record a timeline for `--timeline`.
    pub timeline: bool,
    /// Run this fault plan instead of drawing one.
    pub plan: Option<FaultPlan>,
}

/// The most events one run may process: a healthy run takes thousands to tens of
/// thousands, so reaching this means a message storm or a livelock, which is
/// reported as a liveness failure instead of a hang.
pub const EVENTS_MAX: u64 = 2_000_000;

/// The state of a run.
pub struct World {
    pub(crate) env: Env,
    pub(crate) hosts: Hosts,
    pub(crate) clients: Vec<Client>,
    pub(crate) history: History,
    pub(crate) plan: FaultPlan,
    pub(crate) partition_epoch: u64,
    /// Faults waiting for the next election (`NextLeader`, `IsolateNextLeader`).
    pub(crate) armed: std::collections::VecDeque<crate::faults::Fault>,
    /// Membership changes waiting for the next election.
    pub(crate) armed_membership: std::collections::VecDeque<crate::faults::MembershipKind>,
    /// Crashes waiting for the next InstallSnapshot chunk (their down time).
    pub(crate) armed_install_crashes: std::collections::VecDeque<u32>,
    /// Crashes waiting for a leader with unsynced appends (their down time).
    pub(crate) armed_unsynced_crashes: std::collections::VecDeque<u32>,
    /// The index of the committed configuration the world last acted on (retiring
    /// removed nodes).
    pub(crate) membership_seen: raft_core::LogIndex,
    pub(crate) healed_at: Option<SimTime>,
    pub(crate) leader_at: Option<SimTime>,
    pub(crate) ops_done_at: Option<SimTime>,
    pub(crate) liveness_failure: Option<String>,
    pub(crate) events: u64,
    actions: Vec<Action>,
    effects: Vec<ClientEffect>,
}

impl World {
    /// Builds the world of `params` (nodes not yet started).
    pub fn new(params: SimParams, options: RunOptions) -> World {
        let mut streams = Streams::new(params.seed);
        let n = params.nodes_count as usize;
        let total = params.nodes_total() as usize;
        let plan = options.plan.unwrap_or_else(|| {
            FaultPlan::draw(&mut streams.fault, &params.faults, params.fault_phase_ms)
                .with_reconfig(&mut streams.reconfig, &params.faults, params.fault_phase_ms)
                .with_targeted(&mut streams.targeted, &params.faults, params.fault_phase_ms)
        });
        let voters: Vec<NodeId> = (1..=n as u64).map(NodeId).collect();
        let mut hosts = Vec::with_capacity(total);
        for id in (1..=total as u64).map(NodeId) {
            // A spare starts outside the configuration, knowing no members: it waits
            // for a leader to add it and send it the log.
            let initial_voters = if voters.contains(&id) {
                voters.clone()
            } else {
                Vec::new()
            };
            let mut config = Config::new(id, initial_voters);
            config.seed = streams.node.next_u64();
            config.pre_vote = params.pre_vote;
            config.check_quorum = params.check_quorum;
            config.read_lease = params.read_lease;
            config.lease_clock_drift_percent_max = params.clock_drift.0.div_ceil(10_000);
            config.msg_entries_max = params.msg_entries_max;
            config.inflight_msgs_max = params.inflight_msgs_max;
            config.snapshot_chunk_bytes = params.snapshot_chunk_bytes;
            let drift = i64::from(params.clock_drift.0);
            let skew_ppm = streams.clock.between(0, 2 * drift as u64) as i64 - drift;
            let tick_us = (TICK_US as i64 * (1_000_000 + skew_ppm) / 1_000_000) as u64;
            hosts.push(NodeHost::new(id, config, tick_us));
        }
        let clients = (1..=u64::from(params.workload.clients_count))
            .map(|c| {
                let guess = NodeId(streams.client.between(1, n as u64));
                let client = Client::new(c, n as u64, guess);
                // The odd ids read through the node they first guessed (no new
                // draw, so the client stream is what it was).
                if params.local_readers && c % 2 == 1 {
                    client.with_read_home(guess)
                } else {
                    client
                }
            })
            .collect();
        let env = Env {
            sched: Scheduler::new(),
            net: Network::new(total, params.network),
            election: ElectionChecker::new(),
            logs: LogMatchingChecker::new(total),
            commits: CommitChecker::new(total),
            members: MembershipChecker::new(total, raft_core::Membership::new(voters)),
            states: StateChecker::new(),
            disruption: DisruptionChecker::new(total),
            acks: crate::delivery::AckWatermarks::default(),
            cost: crate::efficiency::CostTracker::default(),
            membership_proposals: std::collections::BTreeMap::new(),
            coverage: Coverage::default(),
            digest: Digest::new(),
            trace: options.trace,
            timeline: options.timeline.then(Timeline::new),
            violation: None,
            checks: options.checks,
            proposal_next: 1,
            read_next: 1,
            held: Vec::new(),
            streams,
            params,
        };
        for host in hosts.iter_mut().take(n) {
            host.was_member = true;
        }
        World {
            env,
            hosts: Hosts::new(hosts),
            clients,
            history: History::new(),
            plan,
            partition_epoch: 0,
            armed: std::collections::VecDeque::new(),
            armed_membership: std::collections::VecDeque::new(),
            armed_install_crashes: std::collections::VecDeque::new(),
            armed_unsynced_crashes: std::collections::VecDeque::new(),
            membership_seen: raft_core::LogIndex(0),
            healed_at: None,
            leader_at: None,
            ops_done_at: None,
            liveness_failure: None,
            events: 0,
            actions: Vec::new(),
            effects: Vec::new(),
        }
    }

    /// The parameters of this run.
    pub fn params(&self) -> &SimParams {
        &self.env.params
    }

    /// Boots every node and schedules the first ticks, client wake-ups and faults.
    fn start(&mut self) {
        for id in self.hosts.ids().collect::<Vec<_>>() {
            self.boot(id);
        }
        for c in 0..self.clients.len() {
            let delay_us = self.env.streams.client.between(0, 20_000);
            self.env.schedule_in(delay_us, Ev::ClientWake { client: c });
        }
        for (index, fault) in self.plan.faults.clone().iter().enumerate() {
            let at = SimTime::ZERO.plus_us(u64::from(fault.at_ms) * 1_000);
            self.env.schedule_at(at, Ev::Fault { index });
        }
        let end = u64::from(self.env.params.fault_phase_ms) * 1_000;
        self.env.schedule_in(end, Ev::EndFaultPhase);
    }

    /// Boots (or restarts) node `id` from its disk and starts its clock.
    pub(crate) fn boot(&mut self, id: NodeId) {
        let host = self.hosts.host_mut(id);
        if let Err(reason) = host.boot() {
            self.env
                .violate(Violation::at_node(ViolationKind::Contract, id, reason));
            return;
        }
        let raft = host.raft.as_ref().expect("booted");
        let reset = self.env.logs.reset_from(id, raft);
        self.env.check(reset);
        self.env
            .commits
            .on_restart(id, raft.commit_index(), raft.applied_index());
        let meta = raft.snapshot_meta();
        let base = if meta.last_index > raft_core::LogIndex(0) {
            meta.membership
        } else {
            raft_core::Membership {
                voters: host.config.initial_voters.clone(),
                voters_outgoing: Default::default(),
                learners: host.config.initial_learners.clone(),
            }
        };
        self.env
            .members
            .on_restart(id, base, raft.entries(), raft.commit_index());
        if let Some(snapshot) = &host.disk.durable().snapshot {
            let restored = self.env.states.observe(
                id,
                snapshot.meta.last_index.0,
                &snapshot.data,
                StateSource::Restart,
            );
            self.env.check(restored);
        }
        let (life, tick_us) = (host.life, host.tick_us);
        let phase_us = self.env.streams.clock.between(1, tick_us);
        self.env.schedule_in(phase_us, Ev::Tick { node: id, life });
        if let Some(t) = &mut self.env.timeline {
            t.mark(Mark::Role {
                node: id,
                at: self.env.sched.now(),
                role: RoleKind::Follower,
                term: raft.term(),
            });
        }
    }

    /// Runs to the end and returns how many events were processed.
    pub fn run(&mut self) -> u64 {
        self.start();
        while self.events < EVENTS_MAX {
            let Some((_, ev)) = self.env.sched.pop() else {
                break;
            };
            self.events += 1;
            self.handle(ev);
            if self.env.violation.is_some() || self.liveness_failure.is_some() {
                break;
            }
            if self.healed_at.is_some() && self.check_liveness_progress() {
                break;
            }
        }
        if self.events >= EVENTS_MAX && self.liveness_failure.is_none() {
            self.liveness_failure = Some(format!(
                "the run used up its budget of {EVENTS_MAX} events at {} (a message storm or livelock)",
                self.env.sched.now()
            ));
        }
        self.events
    }

    fn handle(&mut self, ev: Ev) {
        let now = self.env.sched.now();
        self.env.digest.write_u64(now.as_us());
        match ev {
            Ev::Tick { node, life } => self.on_tick(node, life),
            Ev::Deliver {
                from,
                to,
                bytes,
                sent,
            } => self.on_deliver(from, to, &bytes, sent),
            Ev::FsyncDone { node, epoch } => self.on_fsync_done(node, epoch),
            Ev::Request { to, request } => self.on_request(to, request),
            Ev::Reply { client, reply } => {
                self.env.digest.write_u64(reply.seq.0);
                self.drive_client(client, |c, rng, params, history, out| {
                    c.on_reply(reply, rng, params, history, now, out);
                });
            }
            Ev::ClientWake { client } => {
                self.drive_client(client, |c, rng, params, history, out| {
                    c.on_wake(rng, params, history, now, out);
                });
            }
            Ev::ClientTimeout {
                client,
                seq,
                attempt,
            } => {
                self.drive_client(client, |c, rng, params, history, out| {
                    c.on_timeout(seq, attempt, rng, params, history, now, out);
                });
            }
            Ev::Fault { index } => self.fire_fault(index),
            Ev::HealPartition { epoch } => self.heal_partition(epoch),
            Ev::Restart { node, life } => self.restart(node, life),
            Ev::Compact { node, life } => self.compact(node, life),
            Ev::EndFaultPhase => self.end_fault_phase(),
            Ev::AimedFault { node, life, fault } => self.fire_aimed(node, life, fault),
            Ev::AimedMembership { node, life, kind } => {
                self.fire_aimed_membership(node, life, kind)
            }
            Ev::InstallCrash {
                node,
                life,
                down_ms,
            } => self.fire_install_crash(node, life, down_ms),
            Ev::UnsyncedLeaderCrash {
                node,
                life,
                down_ms,
            } => self.fire_unsynced_leader_crash(node, life, down_ms),
        }
    }

    fn on_tick(&mut self, node: NodeId, life: u32) {
        let host = self.hosts.host(node);
        if host.life != life || !host.is_up() {
            return;
        }
        let tick_us = host.tick_us;
        self.step(node, Event::Tick);
        self.env.schedule_in(tick_us, Ev::Tick { node, life });
    }

    fn on_deliver(&mut self, from: NodeId, to: NodeId, bytes: &[u8], sent: SimTime) {
        self.env.digest.write(bytes);
        if !self.hosts.host(to).is_up() {
            self.env.coverage.msgs_to_crashed += 1;
            return;
        }
        let msg: Message = match postcard::from_bytes(bytes) {
            Ok(msg) => msg,
            Err(e) => {
                let detail = format!("a message from {from} does not decode: {e}");
                self.env
                    .violate(Violation::at_node(ViolationKind::Contract, to, detail));
                return;
            }
        };
        self.env.coverage.msgs_delivered += 1;
        if let Some(t) = &mut self.env.timeline {
            t.arrow(Arrow {
                from,
                to,
                sent,
                arrived: Some(self.env.sched.now()),
                kind: msg.body.kind(),
            });
        }
        let receiver = self.hosts.host(to).raft.as_ref().expect("up");
        crate::delivery::observe_delivery(&mut self.env, receiver, &msg, sent);
        let installing = matches!(msg.body, raft_core::MessageBody::InstallSnapshot(_));
        self.step(to, Event::Message(msg));
        if installing {
            self.aim_install_crash(to);
        }
    }

    fn on_fsync_done(&mut self, node: NodeId, epoch: u32) {
        let host = self.hosts.host_mut(node);
        match host.disk.complete_fsync(epoch) {
            Ok(Some(through)) => {
                self.env.coverage.fsyncs += 1;
                self.env.digest.write_u64(through.0);
                if host.is_up() {
                    self.step(node, Event::Persisted { through });
                }
                exec::maybe_start_fsync(self.hosts.host_mut(node), &mut self.env);
            }
            Ok(None) => {}
            Err(e) => {
                let detail = format!("persist {}: {}", e.seq, e.reason);
                self.env
                    .violate(Violation::at_node(ViolationKind::Contract, node, detail));
            }
        }
    }

    /// Steps one node with one event and carries out its actions.
    pub(crate) fn step(&mut self, node: NodeId, event: Event) {
        let mut actions = std::mem::take(&mut self.actions);
        actions.clear();
        let rejected_by = rejecting_follower(&event);
        {
            let Some(raft) = self.hosts.host_mut(node).raft.as_mut() else {
                self.actions = actions;
                return;
            };
            if self.env.trace.is_on() {
                let line = exec::describe_event(node, &event);
                self.env.trace(|| line);
            }
            raft.step_into(event, &mut actions);
            if let Some(follower) = rejected_by {
                if raft.role() == RoleKind::Leader && sends_append_to(&actions, follower) {
                    self.env.cost.on_probe(node, follower, raft.term());
                }
            }
        }
        let elected = exec::observe_step(self.hosts.host_mut(node), &mut self.env);
        if elected {
            self.aim_armed_fault(node);
        }
        let (host, peers) = self.hosts.split_mut(node);
        exec::execute(host, &peers, &mut self.env, &mut actions);
        exec::observe_after_step(self.hosts.host(node), &mut self.env);
        self.actions = actions;
        self.aim_unsynced_crash(node);
        self.after_membership_commit();
    }

    /// A client request reaches node `to`.
    pub(crate) fn on_request(&mut self, to: NodeId, request: ClientRequest) {
        let host = self.hosts.host_mut(to);
        if !host.is_up() {
            self.env
                .trace(|| format!("{to} (down) loses request {:?}", request.seq));
            return; // Lost with the crashed node: the client times out.
        }
        let client = request.client.0 as usize - 1;
        self.env.digest.write_u64(request.seq.0);
        match request.body {
            RequestBody::Write(command) => {
                let id = ProposalId(self.env.proposal_next);
                self.env.proposal_next += 1;
                self.env.coverage.proposals += 1;
                let bytes = SharedBytes::from(command.encode());
                host.writes.insert(
                    id,
                    PendingWrite {
                        client,
                        seq: request.seq,
                        attempt: request.attempt,
                        command,
                    },
                );
                self.step(to, Event::propose(id, bytes));
            }
            RequestBody::Read { key } => {
                let id = ReadId(self.env.read_next);
                self.env.read_next += 1;
                host.reads.insert(
                    id,
                    PendingRead {
                        client,
                        seq: request.seq,
                        attempt: request.attempt,
                        key,
                    },
                );
                let ready_before = self.env.coverage.reads_ready;
                self.step(to, Event::Read { id });
                let host = self.hosts.host(to);
                let answered_at_once = self.env.coverage.reads_ready > ready_before;
                if answered_at_once
                    && host
                        .raft
                        .as_ref()
                        .is_some_and(|r| r.membership().voters.len() > 1)
                {
                    self.env.coverage.reads_from_lease += 1;
                }
            }
        }
    }

    /// Node `node` snapshots its state machine and hands it to the core.
    pub(crate) fn compact(&mut self, node: NodeId, life: u32) {
        let host = self.hosts.host_mut(node);
        if host.life != life || !host.is_up() {
            return;
        }
        let up_to = host.kv.applied_index();
        if up_to <= host.compacted_index {
            return;
        }
        host.compacted_index = up_to;
        let data = SharedBytes::from(host.kv.snapshot());
        self.env.coverage.snapshots_taken += 1;
        let state = self
            .env
            .states
            .observe(node, up_to, &data, StateSource::Compaction);
        self.env.check(state);
        self.step(
            node,
            Event::Compact {
                up_to: LogIndex(up_to),
                data,
            },
        );
    }

    /// Hands client `client` one input (`feed` calls the client with its rng, the
    /// workload, the history and an effects buffer), then carries out its effects.
    fn drive_client(
        &mut self,
        client: usize,
        feed: impl FnOnce(
            &mut Client,
            &mut crate::rng::SimRng,
            &crate::client::WorkloadParams,
            &mut History,
            &mut Vec<ClientEffect>,
        ),
    ) {
        let mut out = std::mem::take(&mut self.effects);
        feed(
            &mut self.clients[client],
            &mut self.env.streams.client,
            &self.env.params.workload,
            &mut self.history,
            &mut out,
        );
        self.apply_client_effects(client, &mut out);
        self.effects = out;
    }

    /// Judges the operations clients just completed: one that failed (or whose
    /// outcome is unknown) although a leader had been in contact with a quorum since
    /// before it started starved behind the client's routing, not the cluster.
    fn note_completions(&mut self) {
        let now = self.env.sched.now();
        for id in self.history.take_completed() {
            let op = self.history.op(id);
            let local_read = matches!(op.input, KvInput::Get)
                && self.clients[op.client as usize - 1].is_local_reader();
            if local_read {
                // Its home may be the node cut off; the cluster owes it nothing.
                continue;
            }
            let stable = self
                .env
                .disruption
                .stable_leader_since(now)
                .is_some_and(|since| since <= op.called_at);
            if !stable {
                continue;
            }
            self.env.coverage.client_ops_in_stable_reigns += 1;
            if matches!(op.status, OpStatus::Failed | OpStatus::Unknown) {
                self.env.coverage.client_ops_starved += 1;
                let (client, status) = (op.client, op.status.clone());
                self.env
                    .trace(|| format!("STARVED client {client} op {id:?}: {status:?}"));
            }
        }
    }

    fn apply_client_effects(&mut self, client: usize, out: &mut Vec<ClientEffect>) {
        self.note_completions();
        for effect in out.drain(..) {
            match effect {
                ClientEffect::Send {
                    to,
                    request,
                    delay_us,
                } => {
                    let delay_us = delay_us + self.env.client_delay_us();
                    self.env.schedule_in(delay_us, Ev::Request { to, request });
                }
                ClientEffect::Timeout {
                    seq,
                    attempt,
                    after_us,
                } => self.env.schedule_in(
                    after_us,
                    Ev::ClientTimeout {
                        client,
                        seq,
                        attempt,
                    },
                ),
                ClientEffect::Wake { after_us } => {
                    self.env.schedule_in(after_us, Ev::ClientWake { client })
                }
            }
        }
    }
}

/// The follower whose rejected AppendEntries `event` delivers, if it does.
fn rejecting_follower(event: &Event) -> Option<NodeId> {
    match event {
        Event::Message(Message {
            from,
            body: MessageBody::AppendResponse(AppendOutcome::Rejected { .. }),
            ..
        }) => Some(*from),
        _ => None,
    }
}

/// Whether `actions` send an AppendEntries to `peer`.
fn sends_append_to(actions: &[Action], peer: NodeId) -> bool {
    actions.iter().any(|a| {
        matches!(a, Action::Send(m) if m.to == peer && matches!(m.body, MessageBody::AppendEntries { .. }))
    })
}
