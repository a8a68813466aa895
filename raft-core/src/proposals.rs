//! What became of each proposal: the core reports it, so no shell has to guess.

use std::collections::VecDeque;

use crate::action::{Action, DropReason};
use crate::log::RaftLog;
use crate::types::{LogIndex, ProposalId, Term};

/// A proposal appended to the log whose fate is not yet known.
#[derive(Clone, Copy, Debug)]
struct Tracked {
    index: LogIndex,
    term: Term,
    id: ProposalId,
}

/// Proposals in index order, from acceptance until committed or lost.
#[derive(Debug, Default)]
pub(crate) struct ProposalTracker {
    tracked: VecDeque<Tracked>,
}

impl ProposalTracker {
    /// Starts tracking a proposal appended at `index` in `term`.
    pub(crate) fn track(&mut self, id: ProposalId, index: LogIndex, term: Term) {
        if let Some(newest) = self.tracked.back() {
            debug_assert!(newest.index < index);
        }
        self.tracked.push_back(Tracked { index, term, id });
    }

    /// Reports every tracked proposal at or below the commit index: committed if its
    /// entry is the one committed, overwritten otherwise.
    pub(crate) fn resolve_committed(&mut self, log: &RaftLog, actions: &mut Vec<Action>) {
        let commit = log.commit_index();
        while let Some(&front) = self.tracked.front() {
            if front.index > commit {
                break;
            }
            self.tracked.pop_front();
            let action = match log.term_at(front.index) {
                Some(term) if term == front.term => Action::ProposalCommitted {
                    id: front.id,
                    index: front.index,
                },
                Some(_) => Action::ProposalDropped {
                    id: front.id,
                    reason: DropReason::Overwritten,
                },
                // Compacted before we looked: its fate is not knowable here.
                None => Action::ProposalDropped {
                    id: front.id,
                    reason: DropReason::Unknown,
                },
            };
            actions.push(action);
        }
    }

    /// Reports as overwritten every tracked proposal at or after `from`, whose entries
    /// a new leader just replaced.
    pub(crate) fn drop_from(
        &mut self,
        from: LogIndex,
        reason: DropReason,
        actions: &mut Vec<Action>,
    ) {
        let keep = self.tracked.partition_point(|t| t.index < from);
        for dropped in self.tracked.drain(keep..) {
            actions.push(Action::ProposalDropped {
                id: dropped.id,
                reason,
            });
        }
    }
}
