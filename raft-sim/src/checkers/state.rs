//! State machines agree wherever they meet: the state a node captures in a snapshot,
//! installs from a leader, or restores from its disk after a crash must be the state
//! every other node had at the same applied index. Checked when it happens (a crash
//! in the middle of an install must not leave a node restoring something else), not
//! only at the end of the run.

use std::collections::BTreeMap;

use raft_core::NodeId;

use super::{Violation, ViolationKind};
use crate::digest::Digest;

/// The digest of the state machine at each applied index seen so far.
#[derive(Clone, Debug, Default)]
pub struct StateChecker {
    /// By applied index: the first node seen with that state, and its digest.
    at_index: BTreeMap<u64, (NodeId, u64)>,
}

/// Why a state was observed (for the violation's wording).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateSource {
    /// The node compacted its log into a snapshot of its state machine.
    Compaction,
    /// The node installed a snapshot sent by a leader.
    Install,
    /// The node restarted from the snapshot on its disk.
    Restart,
}

impl StateChecker {
    /// A checker that has seen nothing.
    pub fn new() -> Self {
        StateChecker::default()
    }

    /// `node`'s state machine at `applied_index` serializes to `state`.
    pub fn observe(
        &mut self,
        node: NodeId,
        applied_index: u64,
        state: &[u8],
        source: StateSource,
    ) -> Result<(), Violation> {
        let mut digest = Digest::new();
        digest.write(state);
        let digest = digest.value();
        match self.at_index.get(&applied_index) {
            Some((other, known)) if *known != digest => Err(Violation::at_node(
                ViolationKind::Divergence,
                node,
                format!(
                    "{source:?}: the state machine at i{applied_index} differs from the one {other} had there"
                ),
            )),
            Some(_) => Ok(()),
            None => {
                self.at_index.insert(applied_index, (node, digest));
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_index_must_hold_the_same_state() {
        let mut c = StateChecker::new();
        c.observe(NodeId(1), 5, b"a=1", StateSource::Compaction)
            .unwrap();
        c.observe(NodeId(2), 5, b"a=1", StateSource::Install)
            .unwrap();
        c.observe(NodeId(2), 6, b"a=2", StateSource::Compaction)
            .unwrap();
        let err = c
            .observe(NodeId(3), 5, b"a=9", StateSource::Restart)
            .unwrap_err();
        assert_eq!(err.kind, ViolationKind::Divergence);
        assert!(err.detail.contains("Restart"), "{}", err.detail);
    }
}
