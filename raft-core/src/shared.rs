//! The state every role shares (term, vote, log, membership, timers, outbox) and the
//! operations on it that more than one role uses.

use rand_chacha::ChaCha8Rng;

use crate::action::Action;
use crate::config::Config;
use crate::log::RaftLog;
use crate::membership::MembershipLog;
use crate::message::{Message, MessageBody};
use crate::outbox::Outbox;
use crate::proposals::ProposalTracker;
use crate::read_index::ForwardedReads;
use crate::timer::ElectionTimer;
use crate::types::{Entry, EntryPayload, HardState, LogIndex, Membership, NodeId, Snapshot, Term};

/// Node-wide state, outside of any role.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) id: NodeId,
    pub(crate) config: Config,
    pub(crate) term: Term,
    pub(crate) voted_for: Option<NodeId>,
    /// The leader of `term`, if known.
    pub(crate) leader: Option<NodeId>,
    pub(crate) log: RaftLog,
    pub(crate) memberships: MembershipLog,
    pub(crate) out: Outbox,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) election: ElectionTimer,
    /// Ticks since this node started: the clock of read deadlines.
    pub(crate) now_tick: u64,
    pub(crate) proposals: ProposalTracker,
    pub(crate) forwarded_reads: ForwardedReads,
    /// The newest snapshot, kept to send to followers that need it.
    pub(crate) snapshot: Option<Snapshot>,
    /// This node may not campaign, yet it refused a vote request because its log is
    /// newer than the candidate's, and candidates only ask the voters of their
    /// configuration: a configuration this node has not seen counts it as a voter,
    /// and the node every voter would elect may be this one. It stands at its next
    /// election timeout (see `RaftNode::on_election_tick`).
    pub(crate) needed_as_candidate: bool,
}

impl Shared {
    /// The membership in force.
    pub(crate) fn membership(&self) -> &Membership {
        self.memberships.current()
    }

    /// Builds a message from this node in its current term.
    pub(crate) fn message(&self, to: NodeId, body: MessageBody) -> Message {
        Message {
            from: self.id,
            to,
            term: self.term,
            body,
        }
    }

    /// Sends once everything issued so far is durable.
    pub(crate) fn send_after_persist(&mut self, to: NodeId, body: MessageBody) {
        let message = self.message(to, body);
        self.out.send_after_persist(message);
    }

    /// Sends at once.
    pub(crate) fn send_now(&mut self, to: NodeId, body: MessageBody) {
        let message = self.message(to, body);
        self.out.send_now(message);
    }

    /// Queues the current term and vote for durable storage.
    pub(crate) fn persist_hard_state(&mut self) {
        let hard_state = HardState {
            term: self.term,
            voted_for: self.voted_for,
        };
        self.out
            .persist(|seq| Action::PersistHardState { seq, hard_state });
    }

    /// Moves to a newer term, forgetting the vote and the leader.
    pub(crate) fn enter_term(&mut self, term: Term) {
        debug_assert!(term > self.term, "terms only grow");
        self.term = term;
        self.voted_for = None;
        self.set_leader(None);
        self.persist_hard_state();
    }

    /// Records the vote for `candidate` in the current term.
    pub(crate) fn vote_for(&mut self, candidate: NodeId) {
        debug_assert!(
            self.voted_for.is_none() || self.voted_for == Some(candidate),
            "a node never votes twice in one term"
        );
        if self.voted_for != Some(candidate) {
            self.voted_for = Some(candidate);
            self.persist_hard_state();
        }
    }

    /// Records who leads the current term, telling the shell if that changed.
    pub(crate) fn set_leader(&mut self, leader: Option<NodeId>) {
        if self.leader != leader {
            self.leader = leader;
            self.out.emit(Action::LeaderChanged {
                leader,
                term: self.term,
            });
        }
    }

    /// Whether this node may cast ballots and campaign.
    pub(crate) fn is_voter(&self) -> bool {
        self.membership().is_voter(self.id)
    }

    /// Whether this node may campaign: it votes in the configuration in force, or in
    /// the one in force at its commit index. A node whose log holds an uncommitted
    /// configuration that removes it may still be the only one with the log the
    /// next leader needs, so it must stand until that configuration commits (thesis
    /// §4.2.2, Figure 4.6). It counts votes in the configuration in force, so winning
    /// changes nothing about safety; as leader it commits its removal and steps down.
    pub(crate) fn may_campaign(&self) -> bool {
        self.is_voter()
            || self
                .memberships
                .at(self.log.commit_index())
                .is_voter(self.id)
    }

    /// Writes `entries` to the log (discarding any conflicting suffix from the first
    /// one's index) and asks the shell to make them durable.
    pub(crate) fn append_to_log(&mut self, entries: Vec<Entry>) {
        let Some(first) = entries.first() else { return };
        let first_index = first.index;
        debug_assert!(
            first_index > self.log.commit_index(),
            "committed entries are never replaced"
        );
        debug_assert!(
            first_index <= self.log.last_index().next(),
            "no gap in the log"
        );
        if first_index <= self.log.last_index() {
            // A new leader replaced our suffix. The proposals it carried stay tracked:
            // another node may hold them still, and only the commit decides.
            self.memberships.truncate_from(first_index);
        }
        self.log.truncate_and_append(&entries);
        for entry in &entries {
            if let EntryPayload::Membership(m) = &entry.payload {
                self.memberships.push(entry.index, (**m).clone());
            }
        }
        let seq = self.out.persist(|seq| Action::AppendToLog { seq, entries });
        self.log.write_issued(seq, first_index);
    }

    /// Raises the commit index and hands newly committed entries to the application.
    pub(crate) fn commit_to(&mut self, index: LogIndex) -> bool {
        if !self.log.commit_to(index) {
            return false;
        }
        self.apply_committed();
        true
    }

    /// Hands committed entries to the application, then reports the proposals and
    /// forwarded reads they complete.
    pub(crate) fn apply_committed(&mut self) {
        let entries = self.log.take_unapplied();
        if entries.is_empty() {
            return;
        }
        self.out.emit(Action::Apply(entries));
        self.proposals.resolve_committed(&self.log, &mut self.out);
        self.release_forwarded_reads();
    }

    /// Restarts the election timer without a new draw: the leader was heard from.
    pub(crate) fn heard_from_leader(&mut self) {
        self.election.restart();
        self.needed_as_candidate = false;
    }

    /// Resets the election timer with a fresh random timeout.
    pub(crate) fn reset_election_timer(&mut self) {
        self.election.reset(&mut self.rng);
    }
}

impl Shared {}
