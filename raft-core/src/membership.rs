//! Membership changes (thesis §4): the membership in force at every index of the log
//! (a configuration takes effect as soon as its entry is in the log, thesis §4.1, so
//! truncating the entry reverts it), and the leader's side of a change: joint
//! consensus for voter changes (§4.3), leaving the joint configuration once it
//! commits, tracking removed members until they learn of their removal, and stepping
//! down when removed.

use crate::action::{Action, DropReason};
use crate::event::MembershipChange;
use crate::message::MessageBody;
use crate::progress::Progress;
use crate::role::leader::LeaderState;
use crate::role::Next;
use crate::shared::Shared;
use crate::types::{Entry, EntryPayload, LogIndex, Membership, ProposalId};

/// The configurations of the log since the snapshot, oldest first. The first one is
/// the base (from the snapshot, or the initial configuration at index 0) and is never
/// removed by truncation.
#[derive(Clone, Debug)]
pub(crate) struct MembershipLog {
    history: Vec<(LogIndex, Membership)>,
}

impl MembershipLog {
    /// A history holding only `base`, in force from `index`.
    pub(crate) fn new(index: LogIndex, base: Membership) -> Self {
        MembershipLog {
            history: vec![(index, base)],
        }
    }

    /// The membership in force now (the newest in the log).
    pub(crate) fn current(&self) -> &Membership {
        &self.history.last().expect("the base is never removed").1
    }

    /// The index of the entry that set the current membership.
    pub(crate) fn current_index(&self) -> LogIndex {
        self.history.last().expect("the base is never removed").0
    }

    /// The membership in force at `index`.
    pub(crate) fn at(&self, index: LogIndex) -> &Membership {
        let position = self.history.partition_point(|(i, _)| *i <= index);
        &self.history[position.saturating_sub(1)].1
    }

    /// A configuration entry was appended at `index`.
    pub(crate) fn push(&mut self, index: LogIndex, membership: Membership) {
        debug_assert!(index > self.current_index());
        self.history.push((index, membership));
    }

    /// The log was truncated from `from`: configurations at or after it are gone.
    /// Returns whether the current membership changed.
    pub(crate) fn truncate_from(&mut self, from: LogIndex) -> bool {
        let before = self.history.len();
        while self.history.len() > 1 && self.current_index() >= from {
            self.history.pop();
        }
        self.history.len() != before
    }

    /// The log was compacted through `up_to`: the configuration in force there
    /// becomes the base.
    pub(crate) fn compact(&mut self, up_to: LogIndex) {
        let position = self.history.partition_point(|(i, _)| *i <= up_to);
        let drop = position.saturating_sub(1);
        self.history.drain(..drop);
    }
}

impl LeaderState {
    /// Appends the configuration entry for `changes`: a joint configuration when the
    /// voters change, a simple one when only learners do.
    pub(crate) fn change_membership(
        &mut self,
        shared: &mut Shared,
        id: ProposalId,
        changes: &[MembershipChange],
    ) {
        let drop = |shared: &mut Shared, reason| {
            shared.out.emit(Action::ProposalDropped { id, reason });
        };
        if self.transfer.is_some() {
            return drop(shared, DropReason::Transferring);
        }
        let commit = shared.log.commit_index();
        let change_pending =
            shared.memberships.current_index() > commit || shared.membership().is_joint();
        // The rule that fixes the single-server change bug (Ongaro, 2015): no
        // configuration entry before an entry of this term has committed.
        if change_pending || commit < self.term_start_index {
            return drop(shared, DropReason::MembershipChangePending);
        }
        let Some(target) = target_membership(shared.membership(), changes) else {
            return drop(shared, DropReason::InvalidMembership);
        };
        let entry = Entry {
            term: shared.term,
            index: shared.log.last_index().next(),
            payload: EntryPayload::Membership(Box::new(target)),
        };
        let (index, term) = (entry.index, entry.term);
        shared.proposals.track(id, index, term);
        self.append(shared, vec![entry]);
        shared
            .out
            .emit(Action::ProposalAccepted { id, index, term });
        self.sync_progress(shared);
        self.broadcast_append(shared);
    }

    /// After a commit: leave a committed joint configuration, stop tracking members
    /// whose removal committed, and step down if this node was removed.
    pub(crate) fn after_membership_commit(&mut self, shared: &mut Shared) -> Next {
        let current_index = shared.memberships.current_index();
        if current_index > shared.log.commit_index() || current_index == self.membership_acted_index
        {
            return Next::Stay;
        }
        self.membership_acted_index = current_index;
        self.sync_progress(shared);
        let membership = shared.membership().clone();
        if membership.is_joint() {
            let leave = Membership {
                voters: membership.voters.clone(),
                voters_outgoing: Default::default(),
                learners: membership
                    .learners
                    .difference(&membership.voters)
                    .copied()
                    .collect(),
            };
            let entry = Entry {
                term: shared.term,
                index: shared.log.last_index().next(),
                payload: EntryPayload::Membership(Box::new(leave)),
            };
            self.append(shared, vec![entry]);
            self.sync_progress(shared);
            self.broadcast_append(shared);
            return Next::Stay;
        }
        if !membership.is_voter(shared.id) && shared.config.step_down_when_removed {
            // Hand over to the most caught-up voter so the cluster need not wait for an
            // election timeout.
            let last = shared.log.last_index();
            let successor = self
                .progress
                .iter()
                .filter(|(id, p)| membership.is_voter(**id) && p.match_index == last)
                .map(|(id, _)| *id)
                .next();
            if let Some(successor) = successor {
                self.send_timeout_now(shared, successor);
            }
            return Next::StepDown;
        }
        Next::Stay
    }

    /// Tracks the members of the current configuration and of the committed one (so
    /// a removed member still receives the entry that removes it), and a removed
    /// member until it holds the newest configuration entry. Then it gets one last
    /// heartbeat carrying the commit index: a removed node that never learns that
    /// its removal committed keeps campaigning, as it must while the removal may
    /// still be undone (thesis §4.2.2), and without PreVote or CheckQuorum its
    /// campaigns would disrupt the cluster. Removed members are few (each was a
    /// member once), and a new leader tracks none of them.
    pub(crate) fn sync_progress(&mut self, shared: &mut Shared) {
        let mut members = shared.membership().members();
        members.extend(shared.memberships.at(shared.log.commit_index()).members());
        members.remove(&shared.id);
        let commit = shared.log.commit_index();
        let config_index = shared.memberships.current_index();
        let mut released = Vec::new();
        self.progress.retain(|id, progress| {
            let departing = progress.match_index < config_index;
            if !members.contains(id) && !departing {
                released.push((*id, commit.min(progress.match_index)));
            }
            members.contains(id) || departing
        });
        for (id, commit) in released {
            let read_round = 0;
            shared.send_now(id, MessageBody::Heartbeat { commit, read_round });
        }
        let next_index = shared.log.last_index().next();
        for id in members {
            self.progress
                .entry(id)
                .or_insert_with(|| Progress::new(next_index));
        }
    }
}

/// The membership `changes` lead to from `current` (which is not joint): joint if
/// the voters change. None if the result is not a valid configuration.
fn target_membership(current: &Membership, changes: &[MembershipChange]) -> Option<Membership> {
    debug_assert!(!current.is_joint());
    let mut voters = current.voters.clone();
    let mut learners = current.learners.clone();
    for change in changes {
        match *change {
            MembershipChange::AddLearner(id) => {
                voters.remove(&id);
                learners.insert(id);
            }
            MembershipChange::AddVoter(id) => {
                learners.remove(&id);
                voters.insert(id);
            }
            MembershipChange::Remove(id) => {
                voters.remove(&id);
                learners.remove(&id);
            }
        }
    }
    if voters.is_empty() || voters.iter().chain(&learners).any(|id| !id.is_valid()) {
        return None;
    }
    let voters_outgoing = if voters == current.voters {
        Default::default()
    } else {
        current.voters.clone()
    };
    Some(Membership {
        voters,
        voters_outgoing,
        learners,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::NodeId;

    #[test]
    fn truncation_reverts_to_the_previous_configuration() {
        let a = Membership::new([NodeId(1)]);
        let b = Membership::new([NodeId(1), NodeId(2)]);
        let mut log = MembershipLog::new(LogIndex(0), a.clone());
        log.push(LogIndex(5), b.clone());
        assert_eq!(log.at(LogIndex(4)), &a);
        assert_eq!(log.at(LogIndex(5)), &b);
        assert!(log.truncate_from(LogIndex(5)));
        assert_eq!(log.current(), &a);
        assert!(!log.truncate_from(LogIndex(0)), "the base stays");
    }

    #[test]
    fn compaction_keeps_the_configuration_in_force() {
        let a = Membership::new([NodeId(1)]);
        let b = Membership::new([NodeId(2)]);
        let mut log = MembershipLog::new(LogIndex(0), a);
        log.push(LogIndex(3), b.clone());
        log.compact(LogIndex(7));
        assert_eq!(log.current(), &b);
        assert_eq!(log.at(LogIndex(8)), &b);
    }
}
