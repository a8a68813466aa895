//! Log Matching (Raft §5.3): if two logs hold an entry with the same index and term,
//! the entries are identical and so are the logs up to that index.
//!
//! Each node's log is shadowed by a chain of hashes (the hash at index `i` covers
//! every entry through `i`), kept up to date from the `AppendToLog` and snapshot
//! actions. The first chain hash seen for an (index, term) pair is remembered; any
//! node that later holds the same pair with another chain hash breaks the property.
//! The cost per event is proportional to the entries appended.

use std::collections::HashMap;

use raft_core::{Entry, LogIndex, NodeId, Term};

use super::{payload_digest, LogView, Violation, ViolationKind};
use crate::digest::Digest;

#[derive(Clone, Debug, Default)]
struct Shadow {
    /// The index the chain starts after (a snapshot's last index, or 0).
    base_index: LogIndex,
    /// The chain hash at `base_index`.
    base_hash: u64,
    /// (term, chain hash) of entries `base_index + 1 ..`.
    chain: Vec<(Term, u64)>,
}

impl Shadow {
    fn last_index(&self) -> LogIndex {
        LogIndex(self.base_index.0 + self.chain.len() as u64)
    }

    fn last_term(&self, base_term: Term) -> Term {
        self.chain.last().map_or(base_term, |(t, _)| *t)
    }

    fn hash_at(&self, index: LogIndex) -> Option<u64> {
        if index == self.base_index {
            return Some(self.base_hash);
        }
        let offset = index.0.checked_sub(self.base_index.0 + 1)?;
        self.chain.get(offset as usize).map(|(_, h)| *h)
    }
}

/// Shadows every node's log and checks Log Matching as entries arrive.
#[derive(Clone, Debug)]
pub struct LogMatchingChecker {
    shadows: Vec<Shadow>,
    base_terms: Vec<Term>,
    /// The first chain hash seen for each (index, term). Only membership matters,
    /// never iteration order, so a HashMap keeps runs deterministic.
    seen: HashMap<(LogIndex, Term), u64>,
}

fn chain_hash(prev: u64, entry: &Entry) -> u64 {
    let mut d = Digest::new();
    d.write_u64(prev);
    d.write_u64(entry.index.0);
    d.write_u64(entry.term.0);
    d.write_u64(payload_digest(&entry.payload));
    d.value()
}

fn base_hash(index: LogIndex, term: Term) -> u64 {
    if index == LogIndex(0) {
        return 0; // The empty prefix every log starts from (the default shadow).
    }
    let mut d = Digest::new();
    d.write(b"snapshot");
    d.write_u64(index.0);
    d.write_u64(term.0);
    d.value()
}

impl LogMatchingChecker {
    /// A checker for nodes `1..=nodes_count`, all with empty logs.
    pub fn new(nodes_count: usize) -> Self {
        LogMatchingChecker {
            shadows: vec![Shadow::default(); nodes_count],
            base_terms: vec![Term(0); nodes_count],
            seen: HashMap::new(),
        }
    }

    fn slot(node: NodeId) -> usize {
        node.0 as usize - 1
    }

    /// `node` appended `entries`, first truncating its log at `entries[0].index`.
    pub fn on_append(&mut self, node: NodeId, entries: &[Entry]) -> Result<(), Violation> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let shadow = &mut self.shadows[Self::slot(node)];
        if first.index <= shadow.base_index || first.index > shadow.last_index().next() {
            return Err(Violation::at_node(
                ViolationKind::Contract,
                node,
                format!(
                    "AppendToLog at {} outside {}..={}",
                    first.index,
                    shadow.base_index.next(),
                    shadow.last_index().next()
                ),
            ));
        }
        shadow
            .chain
            .truncate((first.index.0 - shadow.base_index.0 - 1) as usize);
        for entry in entries {
            let prev = shadow.hash_at(entry.index.prev()).ok_or_else(|| {
                Violation::at_node(
                    ViolationKind::Contract,
                    node,
                    format!("AppendToLog entries not consecutive at {}", entry.index),
                )
            })?;
            let hash = chain_hash(prev, entry);
            shadow.chain.push((entry.term, hash));
            let first_seen = *self.seen.entry((entry.index, entry.term)).or_insert(hash);
            if first_seen != hash {
                return Err(Violation::at_node(
                    ViolationKind::LogMatching,
                    node,
                    format!(
                        "entry {}@{} differs from another node's entry at the same index and term (or their logs differ before it)",
                        entry.index, entry.term
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `node` installed or took a snapshot through `last_index` at `last_term`;
    /// with `discard_log` it dropped its whole log.
    pub fn on_snapshot(
        &mut self,
        node: NodeId,
        last_index: LogIndex,
        last_term: Term,
        discard_log: bool,
    ) {
        let slot = Self::slot(node);
        let shadow = &mut self.shadows[slot];
        // Keep the suffix only if the shadow holds the snapshot's last entry itself.
        let holds_last = last_index == shadow.base_index
            || last_index
                .0
                .checked_sub(shadow.base_index.0 + 1)
                .and_then(|offset| shadow.chain.get(offset as usize))
                .is_some_and(|(term, _)| *term == last_term);
        let hash = if discard_log || !holds_last {
            None
        } else {
            shadow.hash_at(last_index)
        };
        match hash {
            Some(hash) => {
                let drop = (last_index.0 - shadow.base_index.0) as usize;
                shadow.chain.drain(..drop);
                shadow.base_index = last_index;
                shadow.base_hash = hash;
            }
            None => {
                let hash = self
                    .seen
                    .get(&(last_index, last_term))
                    .copied()
                    .unwrap_or_else(|| base_hash(last_index, last_term));
                *shadow = Shadow {
                    base_index: last_index,
                    base_hash: hash,
                    chain: Vec::new(),
                };
            }
        }
        self.base_terms[slot] = last_term;
    }

    /// `node` (re)started with the log `view` holds: rebuild its shadow and check
    /// every entry in it.
    pub fn reset_from(&mut self, node: NodeId, view: &impl LogView) -> Result<(), Violation> {
        let base_index = view.first_index().prev();
        let base_term = view.term_at(base_index).unwrap_or(Term(0));
        self.on_snapshot(node, base_index, base_term, true);
        let entries: Vec<Entry> = (view.first_index().0..=view.last_index().0)
            .filter_map(|i| view.entry(LogIndex(i)).cloned())
            .collect();
        self.on_append(node, &entries)
    }

    /// Checks that the shadow of `node` ends where its log ends: a log that changed
    /// without an `AppendToLog` or snapshot action would escape the checker (and the
    /// disk), so that is a contract breach of its own.
    pub fn verify_tail(&self, node: NodeId, view: &impl LogView) -> Result<(), Violation> {
        let slot = Self::slot(node);
        let shadow = &self.shadows[slot];
        let (shadow_last, view_last) = (shadow.last_index(), view.last_index());
        let shadow_term = shadow.last_term(self.base_terms[slot]);
        let view_term = view.term_at(view_last).unwrap_or(Term(0));
        if shadow_last != view_last || shadow_term != view_term {
            return Err(Violation::at_node(
                ViolationKind::Contract,
                node,
                format!(
                    "the log ends at {view_last}@{view_term} but the persistence actions say {shadow_last}@{shadow_term}"
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::{entry, FakeLog};
    use super::*;

    #[test]
    fn identical_logs_pass() {
        let mut c = LogMatchingChecker::new(2);
        let entries = FakeLog::of(&[1, 1, 2]).entries;
        c.on_append(NodeId(1), &entries).unwrap();
        c.on_append(NodeId(2), &entries[..2]).unwrap();
        c.on_append(NodeId(2), &entries[2..]).unwrap();
    }

    #[test]
    fn same_index_and_term_with_different_payloads_is_caught() {
        let mut c = LogMatchingChecker::new(2);
        c.on_append(NodeId(1), &[entry(1, 1, "a")]).unwrap();
        let v = c.on_append(NodeId(2), &[entry(1, 1, "b")]).unwrap_err();
        assert_eq!(v.kind, ViolationKind::LogMatching);
    }

    #[test]
    fn same_entry_on_a_different_prefix_is_caught() {
        let mut c = LogMatchingChecker::new(2);
        c.on_append(NodeId(1), &[entry(1, 1, "a"), entry(2, 2, "x")])
            .unwrap();
        let v = c
            .on_append(NodeId(2), &[entry(1, 1, "b"), entry(2, 2, "x")])
            .unwrap_err();
        // Index 1 already differs; the property breaks at the first shared pair.
        assert_eq!(v.kind, ViolationKind::LogMatching);
    }

    #[test]
    fn truncating_a_conflicting_suffix_is_fine() {
        let mut c = LogMatchingChecker::new(2);
        c.on_append(NodeId(1), &[entry(1, 1, "a"), entry(2, 1, "old")])
            .unwrap();
        c.on_append(NodeId(2), &[entry(1, 1, "a"), entry(2, 2, "new")])
            .unwrap();
        c.on_append(NodeId(1), &[entry(2, 2, "new")]).unwrap();
    }

    #[test]
    fn snapshots_keep_the_chain_going() {
        let mut c = LogMatchingChecker::new(2);
        let log = FakeLog::of(&[1, 1, 1, 2]).entries;
        c.on_append(NodeId(1), &log).unwrap();
        c.on_snapshot(NodeId(1), LogIndex(2), Term(1), false);
        c.on_append(NodeId(2), &log[..1]).unwrap();
        // Node 2 installs a snapshot through 3 and then gets entry 4.
        c.on_snapshot(NodeId(2), LogIndex(3), Term(1), true);
        c.on_append(NodeId(2), &log[3..]).unwrap();
        let v = c.on_append(NodeId(2), &[entry(4, 2, "other")]).unwrap_err();
        assert_eq!(v.kind, ViolationKind::LogMatching);
    }

    #[test]
    fn a_log_that_moved_without_actions_is_a_contract_breach() {
        let mut c = LogMatchingChecker::new(1);
        let log = FakeLog::of(&[1, 1]);
        c.on_append(NodeId(1), &log.entries[..1]).unwrap();
        let v = c.verify_tail(NodeId(1), &log).unwrap_err();
        assert_eq!(v.kind, ViolationKind::Contract);
        c.on_append(NodeId(1), &log.entries[1..]).unwrap();
        c.verify_tail(NodeId(1), &log).unwrap();
    }

    #[test]
    fn reset_rebuilds_from_the_view() {
        let mut c = LogMatchingChecker::new(2);
        let log = FakeLog::of(&[1, 2]);
        c.on_append(NodeId(1), &log.entries).unwrap();
        c.reset_from(NodeId(2), &log).unwrap();
        c.verify_tail(NodeId(2), &log).unwrap();
    }

    #[test]
    fn a_gap_is_a_contract_breach() {
        let mut c = LogMatchingChecker::new(1);
        let v = c.on_append(NodeId(1), &[entry(2, 1, "a")]).unwrap_err();
        assert_eq!(v.kind, ViolationKind::Contract);
    }
}
