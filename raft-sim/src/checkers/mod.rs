//! Safety checkers, one property per file, run after every event.
//!
//! Each checker consumes observations (a node became leader, appended entries,
//! advanced its commit index, applied entries, sent a message) and reads a node's log
//! through [`LogView`], so that it can be tested without a running node and so that
//! its cost per event is proportional to what changed, not to the log's length.

pub mod commit;
pub mod disruption;
pub mod durability;
pub mod election;
pub mod log_matching;
pub mod membership;
pub mod state;

use std::fmt;

use raft_core::{Entry, EntryPayload, LogIndex, NodeId, Term};

use crate::digest::Digest;
use crate::time::SimTime;

/// Which promise was broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ViolationKind {
    /// Two leaders in one term (Raft §5.2, Election Safety).
    ElectionSafety,
    /// Two logs agree on an entry's index and term but not on what precedes it or on
    /// the entry itself (Log Matching, §5.3).
    LogMatching,
    /// A leader lacks an entry committed in an earlier term (Leader Completeness, §5.4).
    LeaderCompleteness,
    /// Two different entries committed or applied at one index (State Machine Safety).
    StateMachineSafety,
    /// A node's commit index went down within one lifetime.
    CommitRegression,
    /// An acknowledged proposal is not the committed entry at its index.
    AckLost,
    /// A message went out before the durable state it depends on (thesis §3.8).
    Durability,
    /// The core broke its contract with the shell (apply order, persistence shape,
    /// read served before apply).
    Contract,
    /// The client history is not linearizable.
    Linearizability,
    /// The core panicked (a failed assertion).
    Panic,
    /// The nodes' state machines disagree (at the end of the run, or where a
    /// snapshot is taken, installed or restored).
    Divergence,
    /// A membership rule broke (thesis §4): configurations committed differently,
    /// an active configuration that is not the log's newest, two uncommitted
    /// configurations, or one appended before the leader committed its term.
    Membership,
    /// A leader in contact with a quorum of its configuration was deposed although
    /// PreVote and CheckQuorum are both on (thesis §9.6, §4.2.3).
    Disruption,
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            ViolationKind::ElectionSafety => "election-safety",
            ViolationKind::LogMatching => "log-matching",
            ViolationKind::LeaderCompleteness => "leader-completeness",
            ViolationKind::StateMachineSafety => "state-machine-safety",
            ViolationKind::CommitRegression => "commit-regression",
            ViolationKind::AckLost => "ack-lost",
            ViolationKind::Durability => "durability",
            ViolationKind::Contract => "contract",
            ViolationKind::Linearizability => "linearizability",
            ViolationKind::Panic => "panic",
            ViolationKind::Divergence => "divergence",
            ViolationKind::Membership => "membership",
            ViolationKind::Disruption => "disruption",
        };
        f.write_str(name)
    }
}

/// A broken promise, with where and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// What was broken.
    pub kind: ViolationKind,
    /// The virtual time of the event that broke it.
    pub at: SimTime,
    /// The node at fault, if one is.
    pub node: Option<NodeId>,
    /// What exactly, in words.
    pub detail: String,
}

impl Violation {
    /// A violation at node `node` (time filled in by the world).
    pub fn at_node(kind: ViolationKind, node: NodeId, detail: String) -> Violation {
        Violation {
            kind,
            at: SimTime::ZERO,
            node: Some(node),
            detail,
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.kind, self.at)?;
        if let Some(node) = self.node {
            write!(f, " on {node}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// Read access to a node's in-memory log.
pub trait LogView {
    /// The first entry held in memory (the snapshot's last index + 1).
    fn first_index(&self) -> LogIndex;
    /// The last entry's index (the snapshot's if the log is empty).
    fn last_index(&self) -> LogIndex;
    /// The term at `index`, including the snapshot's last index (and 0 at index 0).
    fn term_at(&self, index: LogIndex) -> Option<Term>;
    /// The entry at `index`, if held in memory.
    fn entry(&self, index: LogIndex) -> Option<&Entry>;
}

/// A digest of what an entry carries (not where it sits).
pub fn payload_digest(payload: &EntryPayload) -> u64 {
    let mut d = Digest::new();
    match payload {
        EntryPayload::Noop => d.write(&[0]),
        EntryPayload::Command(bytes) => {
            d.write(&[1]);
            d.write(bytes);
        }
        EntryPayload::Membership(m) => {
            d.write(&[2]);
            for set in [&m.voters, &m.voters_outgoing, &m.learners] {
                d.write_u64(set.len() as u64);
                for id in set {
                    d.write_u64(id.0);
                }
            }
        }
    }
    d.value()
}

#[cfg(test)]
pub(crate) mod fake {
    //! A log in a Vec, standing in for a node in checker tests.
    use super::*;

    #[derive(Clone, Debug, Default)]
    pub struct FakeLog {
        pub snapshot_index: LogIndex,
        pub snapshot_term: Term,
        pub entries: Vec<Entry>,
    }

    pub fn entry(index: u64, term: u64, payload: &str) -> Entry {
        Entry {
            term: Term(term),
            index: LogIndex(index),
            payload: EntryPayload::Command(payload.into()),
        }
    }

    impl FakeLog {
        pub fn of(terms: &[u64]) -> FakeLog {
            let entries = terms
                .iter()
                .enumerate()
                .map(|(i, t)| entry(i as u64 + 1, *t, &format!("e{}t{}", i + 1, t)))
                .collect();
            FakeLog {
                entries,
                ..FakeLog::default()
            }
        }
    }

    impl LogView for FakeLog {
        fn first_index(&self) -> LogIndex {
            self.snapshot_index.next()
        }
        fn last_index(&self) -> LogIndex {
            self.entries.last().map_or(self.snapshot_index, |e| e.index)
        }
        fn term_at(&self, index: LogIndex) -> Option<Term> {
            if index == self.snapshot_index {
                return Some(self.snapshot_term);
            }
            self.entry(index).map(|e| e.term)
        }
        fn entry(&self, index: LogIndex) -> Option<&Entry> {
            let offset = index.0.checked_sub(self.first_index().0)?;
            self.entries.get(offset as usize)
        }
    }
}
