//! What became of each proposal: the core reports it, so no shell has to guess.
//!
//! A proposal's fate is known only once its index commits (Raft §5.3, Log Matching):
//! the entry committed there either carries the proposal's term, and is the
//! proposal, or carries another term, and the proposal can never commit. Until then
//! the fate is open, even after this node's own copy was truncated: a new leader may
//! overwrite the entry here while another node keeps it and a later leader commits it
//! (raft-sim seed 965 with `--check-quorum false --partition-every-ms 100`). So a
//! proposal stays tracked, whatever role this node plays, until the commit index
//! reaches it.

use std::collections::BTreeMap;

use crate::action::{Action, DropReason};
use crate::log::RaftLog;
use crate::outbox::Outbox;
use crate::types::{LogIndex, ProposalId, Term};

/// Proposals appended to the log whose fate is not yet known, by (index, term). One
/// index may hold several: each term's leader appends its own entry there, and only
/// the commit decides which one stands.
#[derive(Debug, Default)]
pub(crate) struct ProposalTracker {
    tracked: BTreeMap<(LogIndex, Term), ProposalId>,
}

impl ProposalTracker {
    /// Starts tracking a proposal appended at `index` in `term`.
    pub(crate) fn track(&mut self, id: ProposalId, index: LogIndex, term: Term) {
        let earlier = self.tracked.insert((index, term), id);
        debug_assert!(earlier.is_none(), "one entry per (index, term)");
    }

    /// Reports every tracked proposal at or below the commit index: committed if its
    /// entry is the one committed, overwritten otherwise.
    pub(crate) fn resolve_committed(&mut self, log: &RaftLog, out: &mut Outbox) {
        let commit = log.commit_index();
        while let Some(entry) = self.tracked.first_entry() {
            let (index, term) = *entry.key();
            if index > commit {
                break;
            }
            let id = entry.remove();
            let action = match log.term_at(index) {
                Some(committed) if committed == term => Action::ProposalCommitted { id, index },
                Some(_) => Action::ProposalDropped {
                    id,
                    reason: DropReason::Overwritten,
                },
                // Compacted before this node could compare: not knowable here.
                None => Action::ProposalDropped {
                    id,
                    reason: DropReason::Unknown,
                },
            };
            out.emit(action);
        }
    }
}
