//! Election Safety: at most one leader per term (Raft §5.2).

use std::collections::BTreeMap;

use raft_core::{NodeId, Term};

use super::{Violation, ViolationKind};

/// Remembers who led each term.
#[derive(Clone, Debug, Default)]
pub struct ElectionChecker {
    leaders: BTreeMap<Term, NodeId>,
}

impl ElectionChecker {
    /// A checker that has seen no leader.
    pub fn new() -> Self {
        ElectionChecker::default()
    }

    /// `node` is leader in `term` (call after every step of a leader).
    pub fn observe_leader(&mut self, node: NodeId, term: Term) -> Result<(), Violation> {
        match self.leaders.insert(term, node) {
            Some(other) if other != node => Err(Violation::at_node(
                ViolationKind::ElectionSafety,
                node,
                format!("{node} and {other} both lead {term}"),
            )),
            _ => Ok(()),
        }
    }

    /// The number of terms that had a leader.
    pub fn terms_led(&self) -> usize {
        self.leaders.len()
    }

    /// The leader of `term`, if any was seen.
    pub fn leader_of(&self, term: Term) -> Option<NodeId> {
        self.leaders.get(&term).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_leader_per_term_is_fine_even_when_seen_again() {
        let mut c = ElectionChecker::new();
        c.observe_leader(NodeId(1), Term(1)).unwrap();
        c.observe_leader(NodeId(1), Term(1)).unwrap();
        c.observe_leader(NodeId(2), Term(2)).unwrap();
        assert_eq!(c.terms_led(), 2);
    }

    #[test]
    fn a_second_leader_in_a_term_is_a_violation() {
        let mut c = ElectionChecker::new();
        c.observe_leader(NodeId(1), Term(3)).unwrap();
        let v = c.observe_leader(NodeId(2), Term(3)).unwrap_err();
        assert_eq!(v.kind, ViolationKind::ElectionSafety);
        assert!(v.detail.contains("n2 and n1 both lead t3"), "{}", v.detail);
    }
}
