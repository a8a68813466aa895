//! The scenario of Diego Ongaro's 2015 raft-dev report on single-server membership
//! changes ("bug in single-server membership changes", July 2015), scripted message
//! by message against real `RaftNode`s with the simulator's checkers watching.
//!
//! The bug: C_old = {a, b, c, d}. Leader a (term 1) adds e; the entry reaches only e.
//! a is cut off; b is elected in term 2 by {b, c, d} and at once removes d, before any
//! entry of term 2 has committed. b's C = {a, b, c} and a's C = {a, b, c, d, e} share
//! no majority with each other, so with single-server changes both can commit, and a
//! committed entry is lost or two leaders rule one term. The fix: a leader appends no
//! configuration entry until an entry of its own term has committed.
//!
//! raft-core changes voters only through joint consensus, which overlaps with C_old
//! at every step; the fix is in the core all the same (raft-core/src/role/leader.rs,
//! `change_membership`), and the membership checker enforces it directly, which is
//! what catches the mutant `raft-sim/mutants/config-change-before-term-commit.mutant`
//! (run with `raft-sim/mutants/run.sh`; this test fails the same way under it).

use std::collections::{BTreeMap, BTreeSet};

use raft_core::{
    Action, Config, DropReason, Event, LogIndex, Membership, MembershipChange, Message, NodeId,
    ProposalId, RaftNode, Restored, RoleKind,
};
use raft_sim::checkers::commit::CommitChecker;
use raft_sim::checkers::election::ElectionChecker;
use raft_sim::checkers::membership::MembershipChecker;
use raft_sim::checkers::Violation;

/// The five servers of the report: a..e are n1..n5.
const A: u64 = 1;
const B: u64 = 2;
const C: u64 = 3;
const D: u64 = 4;
const E: u64 = 5;
const C_OLD: [u64; 4] = [A, B, C, D];
/// A bound on message rounds and ticks, so a broken script cannot hang the test.
const ROUNDS_MAX: usize = 1_000;

/// Five nodes driven by hand: every write is durable at once, messages move only
/// when the script delivers them, and the checkers see every step.
struct Script {
    nodes: BTreeMap<u64, RaftNode>,
    in_flight: Vec<Message>,
    /// Links that are cut, both ways.
    cut: BTreeSet<(u64, u64)>,
    election: ElectionChecker,
    commits: CommitChecker,
    members: MembershipChecker,
    violation: Option<Violation>,
    outputs: BTreeMap<u64, Vec<Action>>,
}

impl Script {
    fn new() -> Script {
        let voters: Vec<NodeId> = C_OLD.iter().map(|n| NodeId(*n)).collect();
        let mut nodes = BTreeMap::new();
        for n in A..=E {
            // e starts outside the configuration, knowing no members.
            let known = if n == E { Vec::new() } else { voters.clone() };
            let mut config = Config::new(NodeId(n), known);
            config.seed = 2015;
            // Neither PreVote nor leader stickiness: the report's servers have neither,
            // and b must be able to win the moment a is cut off.
            config.pre_vote = false;
            config.check_quorum = false;
            let node = RaftNode::new(config, Restored::default()).expect("a valid config");
            nodes.insert(n, node);
        }
        let mut members = MembershipChecker::new(5, Membership::new(voters.clone()));
        for n in A..=E {
            let base = if n == E {
                Membership::default()
            } else {
                Membership::new(voters.clone())
            };
            members.on_restart(NodeId(n), base, [], LogIndex(0));
        }
        Script {
            nodes,
            in_flight: Vec::new(),
            cut: BTreeSet::new(),
            election: ElectionChecker::new(),
            commits: CommitChecker::new(5),
            members,
            violation: None,
            outputs: BTreeMap::new(),
        }
    }

    fn check(&mut self, result: Result<(), Violation>) {
        if let (Err(v), None) = (result, &self.violation) {
            self.violation = Some(v);
        }
    }

    /// Steps node `n`, carries out its actions (persisting at once), and checks.
    fn step(&mut self, n: u64, event: Event) {
        let node = self.nodes.get_mut(&n).expect("a node of the script");
        let actions = node.step(event);
        let (leads, term, commit) = (
            node.role() == RoleKind::Leader,
            node.term(),
            node.commit_index(),
        );
        let commit_term = node.term_at(commit);
        let mut persisted = None;
        for action in &actions {
            match action {
                Action::AppendToLog { seq, entries } => {
                    let leader_term = leads.then_some(term);
                    let r = self.members.on_append(
                        NodeId(n),
                        entries,
                        leader_term,
                        commit,
                        commit_term,
                    );
                    self.check(r);
                    persisted = Some(*seq);
                }
                Action::PersistHardState { seq, .. } | Action::PersistSnapshot { seq, .. } => {
                    persisted = Some(*seq);
                }
                Action::Send(m) => self.in_flight.push(m.clone()),
                _ => {}
            }
        }
        self.outputs.entry(n).or_default().extend(actions);
        self.observe(n);
        if let Some(through) = persisted {
            self.step(n, Event::Persisted { through });
        }
    }

    fn observe(&mut self, n: u64) {
        let node = &self.nodes[&n];
        let id = NodeId(n);
        let mut results = Vec::new();
        if node.role() == RoleKind::Leader {
            results.push(self.election.observe_leader(id, node.term()));
        }
        results.push(
            self.commits
                .observe_commit(id, node.term(), node.commit_index(), node),
        );
        results.push(self.members.observe_commit(id, node.commit_index()));
        let committed = LogIndex(self.commits.committed_len());
        let leads = node.role() == RoleKind::Leader;
        results.push(
            self.members
                .check_node(id, node.membership(), leads, committed),
        );
        for r in results {
            self.check(r);
        }
    }

    /// Delivers messages between nodes of `group` (others stay queued) until none
    /// are left to deliver; messages over a cut link are lost.
    fn deliver_within(&mut self, group: &[u64]) {
        self.deliver_until(group, |_| false);
    }

    /// Like `deliver_within`, but stops as soon as `done` holds after a delivery.
    fn deliver_until(&mut self, group: &[u64], done: impl Fn(&Script) -> bool) {
        for _ in 0..ROUNDS_MAX {
            let (now, later): (Vec<Message>, Vec<Message>) = std::mem::take(&mut self.in_flight)
                .into_iter()
                .partition(|m| group.contains(&m.from.0) && group.contains(&m.to.0));
            self.in_flight = later;
            if now.is_empty() {
                return;
            }
            let mut rest = now.into_iter();
            for m in rest.by_ref() {
                if !self.cut.contains(&(m.from.0, m.to.0)) {
                    self.step(m.to.0, Event::Message(m));
                }
                if done(self) {
                    break;
                }
            }
            if done(self) {
                // Undelivered messages go back to the queue, in order, ahead of newer ones.
                let newer = std::mem::take(&mut self.in_flight);
                self.in_flight = rest.chain(newer).collect();
                return;
            }
        }
        panic!("messages still flowing after {ROUNDS_MAX} rounds");
    }

    /// Drops every queued message.
    fn drop_in_flight(&mut self) {
        self.in_flight.clear();
    }

    /// Ticks `n` until it becomes a candidate, delivering within `group` as it goes.
    fn campaign(&mut self, n: u64, group: &[u64]) {
        for _ in 0..ROUNDS_MAX {
            self.step(n, Event::Tick);
            if self.nodes[&n].role() != RoleKind::Follower {
                self.deliver_within(group);
                return;
            }
        }
        panic!("n{n} never campaigned");
    }

    /// Lets `group` exchange heartbeats for a few rounds.
    fn settle(&mut self, group: &[u64]) {
        for _ in 0..6 {
            for n in group {
                self.step(*n, Event::Tick);
            }
            self.deliver_within(group);
        }
    }

    fn change(&mut self, leader: u64, id: u64, change: MembershipChange) {
        let event = Event::ChangeMembership {
            id: ProposalId(id),
            changes: vec![change],
        };
        self.step(leader, event);
    }

    fn dropped(&self, n: u64, id: u64) -> Option<DropReason> {
        self.outputs[&n].iter().find_map(|a| match a {
            Action::ProposalDropped { id: p, reason } if *p == ProposalId(id) => Some(*reason),
            _ => None,
        })
    }

    fn assert_checkers_pass(&self, when: &str) {
        if let Some(v) = &self.violation {
            panic!("{when}: {v}");
        }
    }
}

#[test]
fn ongaro_2015_single_server_change_bug() {
    let mut s = Script::new();
    // a leads term 1 over C_old and commits its no-op.
    s.campaign(A, &C_OLD);
    assert_eq!(s.nodes[&A].role(), RoleKind::Leader);
    s.settle(&C_OLD);
    s.assert_checkers_pass("a elected");

    // a adds e; the configuration entry reaches e alone, then a is cut off.
    s.change(A, 1, MembershipChange::AddVoter(NodeId(E)));
    s.deliver_within(&[A, E]);
    s.drop_in_flight();
    for other in [B, C, D, E] {
        s.cut.insert((A, other));
        s.cut.insert((other, A));
    }
    assert!(s.nodes[&E].membership().is_voter(NodeId(E)));
    assert!(!s.nodes[&B].membership().is_voter(NodeId(E)));

    // b is elected in term 2 by {b, c, d} and at once asks to remove d, before its
    // no-op has reached anyone: the moment of the bug.
    let bcd = [B, C, D];
    let b_leads = |s: &Script| s.nodes[&B].role() == RoleKind::Leader;
    for _ in 0..ROUNDS_MAX {
        if b_leads(&s) {
            break;
        }
        s.step(B, Event::Tick);
        s.deliver_until(&bcd, b_leads);
    }
    assert!(b_leads(&s), "b won term 2");
    let term_b = s.nodes[&B].term();
    assert!(s.nodes[&B].commit_index() < s.nodes[&B].last_index());
    s.change(B, 2, MembershipChange::Remove(NodeId(D)));
    s.assert_checkers_pass("b asked to remove d before committing an entry of its term");
    assert_eq!(
        s.dropped(B, 2),
        Some(DropReason::MembershipChangePending),
        "the leader of a new term refuses a configuration change until its term commits"
    );

    // Once b's no-op commits, the same change goes through (and b leaves the joint
    // configuration on its own).
    s.settle(&bcd);
    s.change(B, 3, MembershipChange::Remove(NodeId(D)));
    s.settle(&bcd);
    s.assert_checkers_pass("b removed d after committing its term");
    assert_eq!(s.dropped(B, 3), None);
    let without_d: BTreeSet<NodeId> = [A, B, C].iter().map(|n| NodeId(*n)).collect();
    assert_eq!(s.nodes[&B].membership().voters, without_d);
    assert!(!s.nodes[&B].membership().is_joint());

    // a comes back on e's side of a partition that also holds d: with its
    // configuration {a, b, c, d, e} it must not be able to win (d and everyone else
    // that matters hold b's newer log), so term 2 keeps one leader and b's committed
    // entries stay committed.
    s.cut.clear();
    let ade = [A, D, E];
    for (x, y) in [(B, A), (B, D), (B, E), (C, A), (C, D), (C, E)] {
        s.cut.insert((x, y));
        s.cut.insert((y, x));
    }
    s.drop_in_flight();
    for _ in 0..60 {
        for n in ade {
            s.step(n, Event::Tick);
        }
        s.deliver_within(&ade);
    }
    s.assert_checkers_pass("a campaigned with {a, d, e}");
    assert_ne!(
        s.nodes[&A].role(),
        RoleKind::Leader,
        "a cannot win without c_old's majority"
    );
    assert_eq!(s.election.leader_of(term_b), Some(NodeId(B)));

    // Healed, everyone converges on b's configuration.
    s.cut.clear();
    s.drop_in_flight();
    let all = [A, B, C, D, E];
    for _ in 0..40 {
        for n in all {
            s.step(n, Event::Tick);
        }
        s.deliver_within(&all);
    }
    s.assert_checkers_pass("healed");
    let leader = all
        .iter()
        .find(|n| s.nodes[n].role() == RoleKind::Leader)
        .expect("a leader after the heal");
    for n in [A, B, C] {
        assert_eq!(
            s.nodes[&n].membership().voters,
            without_d,
            "n{n} (leader n{leader})"
        );
    }
}
