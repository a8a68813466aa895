//! What is committed stays committed: State Machine Safety, commit monotonicity,
//! apply order, Leader Completeness, and acknowledged proposals never lost.
//!
//! The checker keeps the one committed log the cluster may have: for each index, the
//! entry's term and payload digest, and the earliest term in which a node was seen
//! with its commit index at or past it. The first observation of a commit is the
//! leader's (followers learn commits from leaders), so that term is the term the
//! entry was committed in, which is what Leader Completeness (§5.4.3) is about.

use raft_core::{Entry, LogIndex, NodeId, Term};

use super::{payload_digest, LogView, Violation, ViolationKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Committed {
    term: Term,
    digest: u64,
    /// The term of the first node seen with its commit index covering this entry.
    committed_in: Term,
}

#[derive(Clone, Copy, Debug, Default)]
struct Lifetime {
    commit_index: LogIndex,
    applied_index: LogIndex,
}

/// The committed log and every node's progress through it.
#[derive(Clone, Debug)]
pub struct CommitChecker {
    /// `committed[i - 1]` is the entry committed at index `i`, once known.
    committed: Vec<Option<Committed>>,
    lifetimes: Vec<Lifetime>,
}

impl CommitChecker {
    /// A checker for nodes `1..=nodes_count`.
    pub fn new(nodes_count: usize) -> Self {
        CommitChecker {
            committed: Vec::new(),
            lifetimes: vec![Lifetime::default(); nodes_count],
        }
    }

    fn lifetime(&mut self, node: NodeId) -> &mut Lifetime {
        &mut self.lifetimes[node.0 as usize - 1]
    }

    fn known(&self, index: LogIndex) -> Option<Committed> {
        let slot = usize::try_from(index.0).ok()?.checked_sub(1)?;
        self.committed.get(slot).copied().flatten()
    }

    /// The highest index known committed anywhere.
    pub fn committed_len(&self) -> u64 {
        self.committed.len() as u64
    }

    fn record(
        &mut self,
        node: NodeId,
        index: LogIndex,
        term: Term,
        digest: u64,
        committed_in: Term,
        what: &str,
    ) -> Result<(), Violation> {
        let slot = index.0 as usize - 1;
        if self.committed.len() <= slot {
            self.committed.resize(slot + 1, None);
        }
        match &mut self.committed[slot] {
            None => {
                self.committed[slot] = Some(Committed {
                    term,
                    digest,
                    committed_in,
                });
                Ok(())
            }
            Some(known) if known.term == term && known.digest == digest => {
                known.committed_in = known.committed_in.min(committed_in);
                Ok(())
            }
            Some(known) => Err(Violation::at_node(
                ViolationKind::StateMachineSafety,
                node,
                format!(
                    "{what} {index}@{term}, but {index}@{} (another payload or term) was committed before",
                    known.term
                ),
            )),
        }
    }

    /// A node (re)started: its commit and apply indexes start over from what it
    /// restored.
    pub fn on_restart(&mut self, node: NodeId, commit_index: LogIndex, applied_index: LogIndex) {
        *self.lifetime(node) = Lifetime {
            commit_index,
            applied_index,
        };
    }

    /// Observes `node`'s commit index after a step; records newly committed entries.
    pub fn observe_commit(
        &mut self,
        node: NodeId,
        term: Term,
        commit_index: LogIndex,
        view: &impl LogView,
    ) -> Result<(), Violation> {
        let old = self.lifetime(node).commit_index;
        if commit_index < old {
            return Err(Violation::at_node(
                ViolationKind::CommitRegression,
                node,
                format!("commit index went from {old} down to {commit_index}"),
            ));
        }
        for i in old.0 + 1..=commit_index.0 {
            let index = LogIndex(i);
            // Entries below the in-memory log were compacted: a snapshot covers them.
            let Some(entry) = view.entry(index) else {
                continue;
            };
            let digest = payload_digest(&entry.payload);
            self.record(node, index, entry.term, digest, term, "committed")?;
        }
        self.lifetime(node).commit_index = commit_index;
        Ok(())
    }

    /// `node` applied `entries` (an `Apply` action).
    pub fn on_apply(
        &mut self,
        node: NodeId,
        term: Term,
        entries: &[Entry],
    ) -> Result<(), Violation> {
        for entry in entries {
            let expected = self.lifetime(node).applied_index.next();
            if entry.index != expected {
                return Err(Violation::at_node(
                    ViolationKind::Contract,
                    node,
                    format!("applied {} when {expected} was next", entry.index),
                ));
            }
            if entry.index > self.lifetime(node).commit_index {
                return Err(Violation::at_node(
                    ViolationKind::Contract,
                    node,
                    format!(
                        "applied {} beyond its commit index {}",
                        entry.index,
                        self.lifetime(node).commit_index
                    ),
                ));
            }
            let digest = payload_digest(&entry.payload);
            self.record(node, entry.index, entry.term, digest, term, "applied")?;
            self.lifetime(node).applied_index = entry.index;
        }
        Ok(())
    }

    /// `node` replaced its state machine with a snapshot through `last_index`.
    pub fn on_restore_snapshot(&mut self, node: NodeId, last_index: LogIndex) {
        let lifetime = self.lifetime(node);
        lifetime.applied_index = lifetime.applied_index.max(last_index);
        lifetime.commit_index = lifetime.commit_index.max(last_index);
    }

    /// `node` just became leader of `term`: its log must hold every entry committed
    /// in an earlier term.
    pub fn check_leader_completeness(
        &self,
        node: NodeId,
        term: Term,
        view: &impl LogView,
    ) -> Result<(), Violation> {
        let compacted_through = view.first_index().prev();
        for (slot, known) in self.committed.iter().enumerate() {
            let Some(known) = known else { continue };
            let index = LogIndex(slot as u64 + 1);
            if known.committed_in >= term || index < compacted_through {
                continue;
            }
            let held = view.term_at(index);
            if held != Some(known.term) {
                let held = held.map_or("nothing".to_string(), |t| t.to_string());
                return Err(Violation::at_node(
                    ViolationKind::LeaderCompleteness,
                    node,
                    format!(
                        "leader of {term} holds {held} at {index}, where {} was committed in {}",
                        known.term, known.committed_in
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `node` told a client that the entry `entry` committed at its index.
    pub fn on_acknowledged(&self, node: NodeId, entry: &Entry) -> Result<(), Violation> {
        let digest = payload_digest(&entry.payload);
        match self.known(entry.index) {
            Some(known) if known.term == entry.term && known.digest == digest => Ok(()),
            Some(known) => Err(Violation::at_node(
                ViolationKind::AckLost,
                node,
                format!(
                    "acknowledged {}@{} but {}@{} is what committed there",
                    entry.index, entry.term, entry.index, known.term
                ),
            )),
            None => Err(Violation::at_node(
                ViolationKind::AckLost,
                node,
                format!("acknowledged {} before anyone committed it", entry.index),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::{entry, FakeLog};
    use super::*;

    #[test]
    fn commits_and_applies_that_agree_pass() {
        let mut c = CommitChecker::new(2);
        let log = FakeLog::of(&[1, 1]);
        c.observe_commit(NodeId(1), Term(1), LogIndex(2), &log)
            .unwrap();
        c.on_apply(NodeId(1), Term(1), &log.entries).unwrap();
        c.observe_commit(NodeId(2), Term(1), LogIndex(2), &log)
            .unwrap();
        c.on_apply(NodeId(2), Term(1), &log.entries).unwrap();
        c.on_acknowledged(NodeId(1), &log.entries[1]).unwrap();
    }

    #[test]
    fn two_different_commits_at_one_index_are_caught() {
        let mut c = CommitChecker::new(2);
        c.observe_commit(NodeId(1), Term(1), LogIndex(1), &FakeLog::of(&[1]))
            .unwrap();
        let v = c
            .observe_commit(NodeId(2), Term(2), LogIndex(1), &FakeLog::of(&[2]))
            .unwrap_err();
        assert_eq!(v.kind, ViolationKind::StateMachineSafety);
    }

    #[test]
    fn a_commit_index_going_down_is_caught_but_a_restart_resets_it() {
        let mut c = CommitChecker::new(1);
        let log = FakeLog::of(&[1, 1]);
        c.observe_commit(NodeId(1), Term(1), LogIndex(2), &log)
            .unwrap();
        let v = c
            .observe_commit(NodeId(1), Term(1), LogIndex(1), &log)
            .unwrap_err();
        assert_eq!(v.kind, ViolationKind::CommitRegression);
        c.on_restart(NodeId(1), LogIndex(0), LogIndex(0));
        c.observe_commit(NodeId(1), Term(1), LogIndex(1), &log)
            .unwrap();
    }

    #[test]
    fn applying_out_of_order_or_uncommitted_breaks_the_contract() {
        let mut c = CommitChecker::new(1);
        let log = FakeLog::of(&[1, 1]);
        let v = c
            .on_apply(NodeId(1), Term(1), &log.entries[..1])
            .unwrap_err();
        assert!(v.detail.contains("beyond its commit index"), "{}", v.detail);
        c.observe_commit(NodeId(1), Term(1), LogIndex(2), &log)
            .unwrap();
        let v = c
            .on_apply(NodeId(1), Term(1), &log.entries[1..])
            .unwrap_err();
        assert!(v.detail.contains("when i1 was next"), "{}", v.detail);
    }

    #[test]
    fn a_leader_missing_an_entry_committed_earlier_is_caught() {
        let mut c = CommitChecker::new(2);
        c.observe_commit(NodeId(1), Term(2), LogIndex(2), &FakeLog::of(&[1, 2]))
            .unwrap();
        let v = c
            .check_leader_completeness(NodeId(2), Term(3), &FakeLog::of(&[1]))
            .unwrap_err();
        assert_eq!(v.kind, ViolationKind::LeaderCompleteness);
        // A leader of an earlier term (elected late) is not bound by it.
        c.check_leader_completeness(NodeId(2), Term(2), &FakeLog::of(&[1]))
            .unwrap();
        c.check_leader_completeness(NodeId(1), Term(3), &FakeLog::of(&[1, 2]))
            .unwrap();
    }

    #[test]
    fn an_acknowledgement_of_something_else_is_caught() {
        let mut c = CommitChecker::new(1);
        c.observe_commit(NodeId(1), Term(1), LogIndex(1), &FakeLog::of(&[1]))
            .unwrap();
        let v = c
            .on_acknowledged(NodeId(1), &entry(1, 1, "not what committed"))
            .unwrap_err();
        assert_eq!(v.kind, ViolationKind::AckLost);
        let v = c.on_acknowledged(NodeId(1), &entry(2, 1, "x")).unwrap_err();
        assert!(v.detail.contains("before anyone committed it"));
    }
}
