//! Carrying out a node's actions, in order, with the checkers watching:
//! persistence goes to the simulated disk (an fsync is started if none is running),
//! messages to the network after the durability check, applied entries to the KV
//! store, and read / proposal outcomes back to the clients.

use kv_model::Command;
use raft_core::{
    Action, DropReason, Entry, EntryPayload, Event, LogIndex, MembershipChange, NodeId, ProposalId,
    ReadId, RoleKind, SharedBytes,
};

use crate::checkers::state::StateSource;
use crate::checkers::{durability, Violation, ViolationKind};
use crate::client::{ClientReply, ClientRequest, ReplyBody, RequestBody};
use crate::disk::Write;
use crate::host::{NodeHost, PendingRead, PendingWrite};
use crate::timeline::Mark;
use crate::world::{Env, Ev, World};

/// Checks what a step changed before its actions run: the commit index (so that
/// `Apply` can be checked against it), one leader per term, and a new leader's log.
/// Role changes are detected from the accessors rather than from `RoleChanged`
/// actions, so a core that forgot to announce one is still checked. Returns whether
/// the node just won an election.
pub(crate) fn observe_step(host: &mut NodeHost, env: &mut Env) -> bool {
    let Some(raft) = &host.raft else { return false };
    let commit = env
        .commits
        .observe_commit(host.id, raft.term(), raft.commit_index(), raft);
    env.check(commit);
    let (role, term) = (raft.role(), raft.term());
    if role == RoleKind::Leader {
        let election = env.election.observe_leader(host.id, term);
        env.check(election);
    }
    if (role, term) == host.role_last {
        return false;
    }
    let (was, was_term) = std::mem::replace(&mut host.role_last, (role, term));
    let elected = role == RoleKind::Leader && (was != RoleKind::Leader || was_term != term);
    match role {
        RoleKind::Leader if elected => {
            env.coverage.elections_won += 1;
            let complete = env.commits.check_leader_completeness(host.id, term, raft);
            env.check(complete);
        }
        RoleKind::Candidate if was != RoleKind::Candidate => env.coverage.campaigns += 1,
        RoleKind::PreCandidate if was != RoleKind::PreCandidate => env.coverage.pre_campaigns += 1,
        _ => {}
    }
    if was == RoleKind::Leader && role != RoleKind::Leader {
        env.coverage.leader_step_downs += 1;
    }
    let now = env.sched.now();
    if let Some(t) = &mut env.timeline {
        t.mark(Mark::Role {
            node: host.id,
            at: now,
            role,
            term,
        });
    }
    elected
}

/// Checks what a step left once its actions ran: the log matches what the
/// persistence actions built, configuration entries the node now holds committed are
/// recorded (a follower may append and commit in one step), and its active
/// configuration and uncommitted configurations obey the membership rules.
pub(crate) fn observe_after_step(host: &NodeHost, env: &mut Env) {
    let Some(raft) = &host.raft else { return };
    let node = host.id;
    let tail = env.logs.verify_tail(node, raft);
    env.check(tail);
    let commit = env.members.observe_commit(node, raft.commit_index());
    env.check(commit);
    let committed_index = LogIndex(env.commits.committed_len());
    let leads = raft.role() == RoleKind::Leader;
    let active = env
        .members
        .check_node(node, raft.membership(), leads, committed_index);
    env.check(active);
}

/// Starts an fsync if writes are waiting and none is running.
pub(crate) fn maybe_start_fsync(host: &mut NodeHost, env: &mut Env) {
    if host.disk.start_fsync().is_some() {
        let latency_us = env
            .streams
            .disk
            .between(env.params.fsync_us_min, env.params.fsync_us_max);
        let epoch = host.disk.epoch();
        env.schedule_in(
            latency_us,
            Ev::FsyncDone {
                node: host.id,
                epoch,
            },
        );
    }
}

fn reply(env: &mut Env, client: usize, seq: kv_model::RequestSeq, attempt: u32, body: ReplyBody) {
    let delay_us = env.client_delay_us();
    let reply = ClientReply {
        client: kv_model::ClientId(client as u64 + 1),
        seq,
        attempt,
        body,
    };
    env.schedule_in(delay_us, Ev::Reply { client, reply });
}

/// The other machines, read-only, while one host executes its actions.
pub(crate) struct Peers<'a> {
    /// Hosts with smaller ids than the executing one.
    pub before: &'a [NodeHost],
    /// Hosts with larger ids.
    pub after: &'a [NodeHost],
}

impl Peers<'_> {
    fn raft(&self, id: NodeId) -> Option<&raft_core::RaftNode> {
        let slot = id.0 as usize - 1;
        let host = if slot < self.before.len() {
            self.before.get(slot)
        } else {
            self.after.get(slot - self.before.len() - 1)
        };
        host.and_then(|h| h.raft.as_ref())
    }

    /// The term of the entry at `index` in the log of the leader of `term`, if that
    /// leader is still in `term` (so its log has only grown since) and holds it.
    fn leader_term_at(
        &self,
        env: &Env,
        term: raft_core::Term,
        index: LogIndex,
    ) -> Option<raft_core::Term> {
        let leader = env.election.leader_of(term)?;
        let raft = self.raft(leader)?;
        if raft.term() != term {
            return None;
        }
        raft.term_at(index)
    }
}

/// Carries out `actions` (drained) of `host`'s last step.
pub(crate) fn execute(
    host: &mut NodeHost,
    peers: &Peers<'_>,
    env: &mut Env,
    actions: &mut Vec<Action>,
) {
    let node = host.id;
    // What the membership checker needs to judge a leader's configuration entries:
    // its term, and whether an entry of that term is committed.
    let (leader_term, commit_index, commit_term) = match &host.raft {
        Some(raft) => (
            (raft.role() == RoleKind::Leader).then(|| raft.term()),
            raft.commit_index(),
            raft.term_at(raft.commit_index()),
        ),
        None => (None, LogIndex(0), None),
    };
    for action in actions.drain(..) {
        if env.violation.is_some() {
            return;
        }
        if env.trace.is_on() {
            let line = format!("{node}   {}", describe_action(&action));
            env.trace(|| line);
        }
        match action {
            Action::PersistHardState { seq, hard_state } => {
                persist(host, env, seq, Write::HardState(hard_state));
            }
            Action::AppendToLog { seq, entries } => {
                if let (Some(first), Some(last)) = (entries.first(), entries.last()) {
                    // An append that starts at or before the log's end replaced entries.
                    if first.index <= host.log_last {
                        env.coverage.log_truncations += 1;
                    }
                    host.log_last = last.index;
                }
                let appended = env.logs.on_append(node, &entries);
                env.check(appended);
                let configs =
                    env.members
                        .on_append(node, &entries, leader_term, commit_index, commit_term);
                env.check(configs);
                persist(host, env, seq, Write::Append(entries));
            }
            Action::PersistSnapshot {
                seq,
                snapshot,
                discard_log,
            } => {
                let meta = &snapshot.meta;
                host.log_last = if discard_log {
                    meta.last_index
                } else {
                    host.log_last.max(meta.last_index)
                };
                env.logs
                    .on_snapshot(node, meta.last_index, meta.last_term, discard_log);
                let configs =
                    env.members
                        .on_snapshot(node, meta.last_index, &meta.membership, discard_log);
                env.check(configs);
                persist(
                    host,
                    env,
                    seq,
                    Write::Snapshot {
                        snapshot: *snapshot,
                        discard_log,
                    },
                );
            }
            Action::Send(msg) => {
                if env.checks.durability {
                    let leader_term_at_match = match &msg.body {
                        raft_core::MessageBody::AppendResponse(
                            raft_core::AppendOutcome::Accepted { match_index },
                        ) => peers.leader_term_at(env, msg.term, *match_index),
                        _ => None,
                    };
                    let durable =
                        durability::check_send(&msg, host.disk.durable(), leader_term_at_match);
                    env.check(durable);
                }
                env.send(&msg);
            }
            Action::Apply(entries) => apply(host, env, &entries),
            Action::RestoreSnapshot(snapshot) => {
                env.coverage.snapshots_installed += 1;
                if let Err(e) = host.kv.restore(&snapshot.data) {
                    env.violate(Violation::at_node(
                        ViolationKind::Contract,
                        node,
                        format!("RestoreSnapshot data does not decode: {e}"),
                    ));
                }
                host.compacted_index = host.kv.applied_index();
                env.commits
                    .on_restore_snapshot(node, snapshot.meta.last_index);
                let state = env.states.observe(
                    node,
                    snapshot.meta.last_index.0,
                    &snapshot.data,
                    StateSource::Install,
                );
                env.check(state);
            }
            Action::ReadReady { id, read_index } => read_ready(host, env, id, read_index),
            Action::ReadFailed { id, .. } => {
                env.coverage.reads_failed += 1;
                if let Some(r) = host.reads.remove(&id) {
                    reply(env, r.client, r.seq, r.attempt, ReplyBody::Refused);
                }
            }
            Action::ProposalAccepted { id, index, .. } => {
                if host.writes.contains_key(&id) {
                    host.accepted.insert(index, id);
                }
            }
            Action::ProposalCommitted { id, index } => committed(host, env, id, index),
            Action::ProposalDropped { id, reason } => dropped(host, env, id, reason),
            Action::RoleChanged { .. }
            | Action::LeaderChanged { .. }
            | Action::TransferAborted { .. } => {}
            Action::Ignored(_) => env.coverage.events_ignored += 1,
        }
    }
    maybe_start_fsync(host, env);
}

fn persist(host: &mut NodeHost, env: &mut Env, seq: raft_core::PersistSeq, write: Write) {
    env.digest.write_u64(seq.0);
    if let Err(e) = host.disk.write(seq, write) {
        env.violate(Violation::at_node(
            ViolationKind::Contract,
            host.id,
            format!("persist {}: {}", e.seq, e.reason),
        ));
    }
}

fn apply(host: &mut NodeHost, env: &mut Env, entries: &[Entry]) {
    let node = host.id;
    if let Some(raft) = &host.raft {
        let applied = env.commits.on_apply(node, raft.term(), entries);
        env.check(applied);
    }
    for entry in entries {
        env.digest.write_u64(entry.index.0);
        let outcome = match &entry.payload {
            EntryPayload::Command(bytes) => match Command::decode(bytes) {
                Ok(command) => Some(host.kv.apply(entry.index.0, &command)),
                Err(e) => {
                    env.violate(Violation::at_node(
                        ViolationKind::Contract,
                        node,
                        format!("applied entry {} does not decode: {e}", entry.index),
                    ));
                    return;
                }
            },
            EntryPayload::Noop | EntryPayload::Membership(_) => {
                host.kv.apply_noop(entry.index.0);
                None
            }
        };
        if let (Some(outcome), true) = (outcome, host.accepted.contains_key(&entry.index)) {
            host.applied.insert(entry.index, (entry.clone(), outcome));
        }
    }
    if let Some(every) = env.params.compact_every_entries {
        if host.kv.applied_index() >= host.compacted_index + every {
            let life = host.life;
            env.schedule_in(0, Ev::Compact { node, life });
        }
    }
}

fn read_ready(host: &mut NodeHost, env: &mut Env, id: ReadId, read_index: LogIndex) {
    env.coverage.reads_ready += 1;
    let Some(r) = host.reads.remove(&id) else {
        return;
    };
    if host.kv.applied_index() < read_index.0 {
        env.violate(Violation::at_node(
            ViolationKind::Contract,
            host.id,
            format!(
                "ReadReady at read index {read_index} before the state machine applied it (applied {})",
                host.kv.applied_index()
            ),
        ));
        return;
    }
    let value = host.kv.get(&r.key).map(String::from);
    reply(env, r.client, r.seq, r.attempt, ReplyBody::Value(value));
}

fn committed(host: &mut NodeHost, env: &mut Env, id: ProposalId, index: LogIndex) {
    if let Some((change, leader)) = env.membership_proposals.remove(&id) {
        let c = &mut env.coverage;
        c.membership_committed += 1;
        match change {
            MembershipChange::AddVoter(_) => c.learners_promoted += 1,
            MembershipChange::Remove(removed) => {
                c.voters_removed += 1;
                if removed == leader {
                    c.leaders_removed += 1;
                }
            }
            MembershipChange::AddLearner(_) => c.learners_added += 1,
        }
        return;
    }
    env.coverage.proposals_committed += 1;
    let Some(write) = host.writes.remove(&id) else {
        return;
    };
    host.accepted.remove(&index);
    let Some((entry, outcome)) = host.applied.remove(&index) else {
        env.violate(Violation::at_node(
            ViolationKind::Contract,
            host.id,
            format!("ProposalCommitted {id} at {index} before its entry was applied here"),
        ));
        return;
    };
    let ack = env.commits.on_acknowledged(host.id, &entry);
    env.check(ack);
    let same = matches!(&entry.payload, EntryPayload::Command(bytes) if Command::decode(bytes).as_ref() == Ok(&write.command));
    if !same {
        env.violate(Violation::at_node(
            ViolationKind::AckLost,
            host.id,
            format!("acknowledged {id} at {index}, but another command sits there"),
        ));
        return;
    }
    reply(
        env,
        write.client,
        write.seq,
        write.attempt,
        ReplyBody::Written(outcome),
    );
}

fn dropped(host: &mut NodeHost, env: &mut Env, id: ProposalId, reason: DropReason) {
    if env.membership_proposals.remove(&id).is_some() {
        env.coverage.membership_dropped += 1;
        return;
    }
    env.coverage.proposals_dropped += 1;
    let Some(write) = host.writes.remove(&id) else {
        return;
    };
    host.accepted.retain(|_, p| *p != id);
    let body = match reason {
        DropReason::NotLeader { leader_hint } => ReplyBody::NotLeader { hint: leader_hint },
        DropReason::Overwritten => {
            env.coverage.proposals_overwritten += 1;
            ReplyBody::Refused
        }
        DropReason::Unknown => ReplyBody::Unknown,
        DropReason::Transferring
        | DropReason::Overloaded
        | DropReason::MembershipChangePending
        | DropReason::InvalidMembership => ReplyBody::Refused,
    };
    reply(env, write.client, write.seq, write.attempt, body);
}

/// A one-line description of an event, for the trace.
pub(crate) fn describe_event(node: NodeId, event: &Event) -> String {
    match event {
        Event::Tick => format!("{node} tick"),
        Event::Message(m) => format!("{node} <- {} {} {:?}", m.from, m.term, m.body),
        Event::Persisted { through } => format!("{node} persisted through {through}"),
        Event::Propose(proposals) => {
            let described: Vec<String> = proposals
                .iter()
                .map(|p| format!("{} {:?}", p.id, p.command))
                .collect();
            format!("{node} propose {}", described.join(", "))
        }
        Event::Read { id } => format!("{node} read {id}"),
        Event::Compact { up_to, .. } => format!("{node} compact up to {up_to}"),
        other => format!("{node} {other:?}"),
    }
}

/// A one-line description of an action, for the trace.
pub(crate) fn describe_action(action: &Action) -> String {
    match action {
        Action::Send(m) => format!("-> {} {} {:?}", m.to, m.term, m.body),
        Action::AppendToLog { seq, entries } => format!(
            "append {seq} {}..={} ({} entries)",
            entries.first().map_or(0, |e| e.index.0),
            entries.last().map_or(0, |e| e.index.0),
            entries.len()
        ),
        Action::Apply(entries) => format!(
            "apply {}..={}",
            entries.first().map_or(0, |e| e.index.0),
            entries.last().map_or(0, |e| e.index.0)
        ),
        other => format!("{other:?}"),
    }
}

impl World {
    /// A client request reaches node `to`.
    pub(crate) fn on_request(&mut self, to: NodeId, request: ClientRequest) {
        let host = &mut self.hosts[to.0 as usize - 1];
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
                self.step(to, Event::Read { id });
            }
        }
    }

    /// Node `node` snapshots its state machine and hands it to the core.
    pub(crate) fn compact(&mut self, node: NodeId, life: u32) {
        let host = &mut self.hosts[node.0 as usize - 1];
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
}
