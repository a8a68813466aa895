//! Carrying out a node's actions, in order, with the checkers watching:
//! persistence goes to the simulated disk (an fsync is started if none is running),
//! messages to the network after the durability check, applied entries to the KV
//! store, and read / proposal outcomes back to the clients.

use std::collections::BTreeSet;

use kv_model::Command;
use raft_core::{
    Action, AppendOutcome, DropReason, Entry, EntryPayload, Event, LogIndex, MembershipChange,
    Message, MessageBody, NodeId, PersistSeq, ProposalId, ReadFailure, ReadId, RoleKind, Snapshot,
    Term,
};

use crate::checkers::state::StateSource;
use crate::checkers::{durability, Violation, ViolationKind};
use crate::client::{ClientReply, ReplyBody};
use crate::disk::Write;
use crate::env::{Env, Ev};
use crate::host::NodeHost;
use crate::hosts::Peers;
use crate::timeline::Mark;

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
    let now = env.sched.now();
    if role == RoleKind::Leader {
        let election = env.election.observe_leader(host.id, term);
        env.check(election);
        env.disruption
            .on_leader_step(host.id, term, raft.membership(), now);
    }
    if (role, term) == host.role_last {
        return false;
    }
    env.disruption.on_term(term, now);
    if role == RoleKind::PreCandidate {
        env.disruption.on_poll(term.next(), now);
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
        check_deposition(host.id, term, env);
    }
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

/// `node` stopped leading while running: a disruption if it was in contact with a
/// quorum (see [`crate::checkers::disruption`]), which fails the run only where
/// PreVote and CheckQuorum are both on.
fn check_deposition(node: NodeId, term: Term, env: &mut Env) {
    env.cost.on_reign_end(node);
    let now = env.sched.now();
    let Some(detail) = env.disruption.on_deposed(node, term, now) else {
        return;
    };
    env.coverage.leaders_deposed_in_contact += 1;
    env.trace(|| format!("DEPOSED {detail}"));
    if env.checks.disruption && env.params.pre_vote && env.params.check_quorum {
        env.violate(Violation::at_node(ViolationKind::Disruption, node, detail));
    }
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

fn reply(
    env: &mut Env,
    from: NodeId,
    client: usize,
    seq: kv_model::RequestSeq,
    attempt: u32,
    body: ReplyBody,
) {
    let delay_us = env.client_delay_us();
    let reply = ClientReply {
        from,
        client: kv_model::ClientId(client as u64 + 1),
        seq,
        attempt,
        body,
    };
    env.schedule_in(delay_us, Ev::Reply { client, reply });
}

/// The term of the entry at `index` in the log of the leader of `term`, if that
/// leader is still in `term` (so its log has only grown since) and holds it.
fn leader_term_at(peers: &Peers<'_>, env: &Env, term: Term, index: LogIndex) -> Option<Term> {
    let leader = env.election.leader_of(term)?;
    let raft = peers.raft(leader)?;
    if raft.term() != term {
        return None;
    }
    raft.term_at(index)
}

/// What the membership checker needs to judge the configuration entries a step
/// appends, read before its actions run: the node's term if it leads, and whether
/// an entry of that term is committed.
#[derive(Clone, Copy)]
struct StepContext {
    leader_term: Option<Term>,
    commit_index: LogIndex,
    commit_term: Option<Term>,
}

impl StepContext {
    fn of(host: &NodeHost) -> StepContext {
        match &host.raft {
            Some(raft) => StepContext {
                leader_term: (raft.role() == RoleKind::Leader).then(|| raft.term()),
                commit_index: raft.commit_index(),
                commit_term: raft.term_at(raft.commit_index()),
            },
            None => StepContext {
                leader_term: None,
                commit_index: LogIndex(0),
                commit_term: None,
            },
        }
    }
}

/// Carries out `actions` (drained) of `host`'s last step, in order, then starts an
/// fsync if writes wait for one.
pub(crate) fn execute(
    host: &mut NodeHost,
    peers: &Peers<'_>,
    env: &mut Env,
    actions: &mut Vec<Action>,
) {
    let context = StepContext::of(host);
    for action in actions.drain(..) {
        if env.violation.is_some() {
            return;
        }
        if env.trace.is_on() {
            let line = format!("{}   {}", host.id, describe_action(&action));
            env.trace(|| line);
        }
        execute_one(host, peers, env, context, action);
    }
    maybe_start_fsync(host, env);
}

/// Carries out one action: each kind has its own function.
fn execute_one(
    host: &mut NodeHost,
    peers: &Peers<'_>,
    env: &mut Env,
    context: StepContext,
    action: Action,
) {
    match action {
        Action::PersistHardState { seq, hard_state } => {
            persist(host, env, seq, Write::HardState(hard_state));
        }
        Action::AppendToLog { seq, entries } => append_to_log(host, env, context, seq, entries),
        Action::PersistSnapshot {
            seq,
            snapshot,
            discard_log,
        } => persist_snapshot(host, env, seq, *snapshot, discard_log),
        Action::Send(msg) => send(host, peers, env, &msg),
        Action::Apply(entries) => apply(host, env, &entries),
        Action::RestoreSnapshot(snapshot) => restore_snapshot(host, env, &snapshot),
        Action::ReadReady { id, read_index } => read_ready(host, env, id, read_index),
        Action::ReadFailed { id, reason } => read_failed(host, env, id, reason),
        Action::ProposalAccepted { id, index, .. } => accepted(host, id, index),
        Action::ProposalCommitted { id, index } => committed(host, env, id, index),
        Action::ProposalDropped { id, reason } => dropped(host, env, id, reason),
        Action::RoleChanged { .. }
        | Action::LeaderChanged { .. }
        | Action::TransferAborted { .. } => {}
        Action::Ignored(_) => env.coverage.events_ignored += 1,
    }
}

/// Entries go to the disk; the log-matching and membership checkers read them first.
fn append_to_log(
    host: &mut NodeHost,
    env: &mut Env,
    context: StepContext,
    seq: PersistSeq,
    entries: Vec<Entry>,
) {
    let node = host.id;
    if let (Some(first), Some(last)) = (entries.first(), entries.last()) {
        // An append that starts at or before the log's end replaced entries.
        if first.index <= host.log_last {
            env.coverage.log_truncations += 1;
        }
        host.log_last = last.index;
    }
    let appended = env.logs.on_append(node, &entries);
    env.check(appended);
    let configs = env.members.on_append(
        node,
        &entries,
        context.leader_term,
        context.commit_index,
        context.commit_term,
    );
    env.check(configs);
    persist(host, env, seq, Write::Append(entries));
}

/// A snapshot goes to the disk (and may discard the log); the checkers follow it.
fn persist_snapshot(
    host: &mut NodeHost,
    env: &mut Env,
    seq: PersistSeq,
    snapshot: Snapshot,
    discard_log: bool,
) {
    let node = host.id;
    let meta = &snapshot.meta;
    host.log_last = if discard_log {
        meta.last_index
    } else {
        host.log_last.max(meta.last_index)
    };
    env.logs
        .on_snapshot(node, meta.last_index, meta.last_term, discard_log);
    let configs = env
        .members
        .on_snapshot(node, meta.last_index, &meta.membership, discard_log);
    env.check(configs);
    persist(
        host,
        env,
        seq,
        Write::Snapshot {
            snapshot,
            discard_log,
        },
    );
}

/// A message goes to the network, once the durability checker has seen that what
/// it depends on is on the disk.
fn send(host: &NodeHost, peers: &Peers<'_>, env: &mut Env, msg: &Message) {
    if msg.body == MessageBody::TimeoutNow {
        env.disruption.on_hand_over(msg.from, msg.term);
    }
    if env.checks.durability {
        let leader_term_at_match = match &msg.body {
            MessageBody::AppendResponse(AppendOutcome::Accepted { match_index }) => {
                leader_term_at(peers, env, msg.term, *match_index)
            }
            _ => None,
        };
        let durable = durability::check_send(msg, host.disk.durable(), leader_term_at_match);
        env.check(durable);
    }
    env.send(msg);
}

/// The state machine takes the leader's snapshot; the state checker compares it.
fn restore_snapshot(host: &mut NodeHost, env: &mut Env, snapshot: &Snapshot) {
    let node = host.id;
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

/// A read failed: on a node that does not lead (or whose leader refused it), a
/// redirect without a hint; otherwise (a timeout, too many reads) a refusal.
fn read_failed(host: &mut NodeHost, env: &mut Env, id: ReadId, reason: ReadFailure) {
    env.coverage.reads_failed += 1;
    let body = match reason {
        ReadFailure::NoLeader | ReadFailure::NotLeader => ReplyBody::NotLeader { hint: None },
        ReadFailure::Timeout | ReadFailure::Overloaded => ReplyBody::Refused,
    };
    if let Some(r) = host.reads.remove(&id) {
        reply(env, host.id, r.client, r.seq, r.attempt, body);
    }
}

fn accepted(host: &mut NodeHost, id: ProposalId, index: LogIndex) {
    if host.writes.contains_key(&id) {
        host.accepted.insert(index, id);
    }
}

fn persist(host: &mut NodeHost, env: &mut Env, seq: PersistSeq, write: Write) {
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
    reply(
        env,
        host.id,
        r.client,
        r.seq,
        r.attempt,
        ReplyBody::Value(value),
    );
}

fn committed(host: &mut NodeHost, env: &mut Env, id: ProposalId, index: LogIndex) {
    if let Some((changes, leader, voters_before)) = env.membership_proposals.remove(&id) {
        count_membership_commit(&mut env.coverage, &changes, leader, &voters_before);
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
        host.id,
        write.client,
        write.seq,
        write.attempt,
        ReplyBody::Written(outcome),
    );
}

/// Counts what a committed membership change did.
fn count_membership_commit(
    c: &mut crate::coverage::Coverage,
    changes: &[MembershipChange],
    leader: NodeId,
    voters_before: &BTreeSet<NodeId>,
) {
    c.membership_committed += 1;
    let mut voters = voters_before.clone();
    for change in changes {
        match *change {
            MembershipChange::AddVoter(id) => {
                c.learners_promoted += 1;
                voters.insert(id);
            }
            MembershipChange::Remove(removed) => {
                c.voters_removed += 1;
                if removed == leader {
                    c.leaders_removed += 1;
                }
                voters.remove(&removed);
            }
            MembershipChange::AddLearner(id) => {
                c.learners_added += 1;
                voters.remove(&id);
            }
        }
    }
    if voters.symmetric_difference(voters_before).count() >= 2 {
        c.two_voter_changes_committed += 1;
        match (voters_before.len(), voters.len()) {
            (3, 5) => c.voters_three_to_five += 1,
            (5, 3) => c.voters_five_to_three += 1,
            _ => {}
        }
    }
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
    reply(env, host.id, write.client, write.seq, write.attempt, body);
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
