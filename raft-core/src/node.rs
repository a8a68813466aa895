//! `RaftNode`: construction, `step`, the term prelude, role transitions, accessors
//! and the invariants checked after every step.

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use crate::action::{Action, IgnoreReason};
use crate::config::{Config, NewNodeError, Restored};
use crate::event::{Event, Proposal};
use crate::log::RaftLog;
use crate::membership::MembershipLog;
use crate::message::{Message, MessageBody, ReadFailure};
use crate::outbox::Outbox;
use crate::proposals::ProposalTracker;
use crate::read_index::{ForwardedReads, ReadOrigin};
use crate::role::candidate::CandidateState;
use crate::role::follower::FollowerState;
use crate::role::leader::LeaderState;
use crate::role::{Next, Role};
use crate::shared::Shared;
use crate::timer::ElectionTimer;
use crate::types::{LogIndex, Membership, NodeId, RoleKind, Term};

/// One Raft node: a deterministic state machine driven by [`RaftNode::step`].
#[derive(Debug)]
pub struct RaftNode {
    pub(crate) shared: Shared,
    pub(crate) role: Role,
}

impl RaftNode {
    /// Builds a node from its configuration and what its shell restored from durable
    /// storage (`Restored::default()` for a brand-new node).
    pub fn new(config: Config, restored: Restored) -> Result<RaftNode, NewNodeError> {
        config.validate()?;
        restored.validate()?;
        // Two nodes with the same seed must still draw different timeouts.
        let rng_seed = config.seed ^ config.id.0.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut rng = ChaCha8Rng::seed_from_u64(rng_seed);
        let election = ElectionTimer::new(
            &mut rng,
            config.election_timeout_ticks_min,
            config.election_timeout_ticks_max,
        );
        let (snapshot_index, snapshot_term) = restored
            .snapshot
            .as_ref()
            .map_or((LogIndex(0), Term(0)), |s| {
                (s.meta.last_index, s.meta.last_term)
            });
        let memberships = Self::restored_memberships(&config, &restored, snapshot_index);
        let Restored {
            hard_state,
            snapshot,
            entries,
            applied,
        } = restored;
        let shared = Shared {
            id: config.id,
            term: hard_state.term,
            voted_for: hard_state.voted_for,
            leader: None,
            log: RaftLog::restore(snapshot_index, snapshot_term, entries, applied),
            memberships,
            out: Outbox::default(),
            rng,
            election,
            now_tick: 0,
            proposals: ProposalTracker::default(),
            forwarded_reads: ForwardedReads::default(),
            snapshot,
            needed_as_candidate: false,
            config,
        };
        let node = RaftNode {
            shared,
            role: Role::Follower(FollowerState::default()),
        };
        node.check_invariants();
        Ok(node)
    }

    fn restored_memberships(
        config: &Config,
        restored: &Restored,
        snapshot_index: LogIndex,
    ) -> MembershipLog {
        let base = match &restored.snapshot {
            Some(s) => (snapshot_index, s.meta.membership.clone()),
            None => (
                LogIndex(0),
                Membership {
                    voters: config.initial_voters.clone(),
                    voters_outgoing: Default::default(),
                    learners: config.initial_learners.clone(),
                },
            ),
        };
        let mut memberships = MembershipLog::new(base.0, base.1);
        for entry in &restored.entries {
            if let crate::types::EntryPayload::Membership(m) = &entry.payload {
                memberships.push(entry.index, (**m).clone());
            }
        }
        memberships
    }

    /// Feeds one event and returns what the shell must do, in order.
    #[must_use = "the actions carry messages to send and state to persist"]
    pub fn step(&mut self, event: Event) -> Vec<Action> {
        let mut actions = Vec::new();
        self.step_into(event, &mut actions);
        actions
    }

    /// Like [`step`](Self::step), appending the actions to a buffer the caller reuses
    /// (no allocation per step once the buffer has grown).
    pub fn step_into(&mut self, event: Event, actions: &mut Vec<Action>) {
        self.shared.out.swap_actions(actions);
        self.dispatch(event);
        self.check_invariants();
        self.shared.out.swap_actions(actions);
    }

    fn dispatch(&mut self, event: Event) {
        match event {
            Event::Tick => self.on_tick(),
            Event::Message(message) => self.on_message(message),
            Event::Propose(proposals) => self.on_propose(proposals),
            Event::Read { id } => self.on_read(id),
            Event::Campaign => self.on_campaign(),
            Event::TransferLeadership { to } => self.on_transfer_leadership(to),
            Event::ChangeMembership { id, changes } => self.on_change_membership(id, changes),
            Event::Compact { up_to, data } => self.shared.compact(up_to, data),
            Event::Persisted { through } => self.on_persisted(through),
        }
    }

    fn on_tick(&mut self) {
        self.shared.now_tick += 1;
        let next = match &mut self.role {
            Role::Leader(leader) => leader.on_tick(&mut self.shared),
            _ => self.on_election_tick(),
        };
        self.shared.expire_forwarded_reads();
        self.transition(next);
    }

    fn on_election_tick(&mut self) -> Next {
        if !self.shared.election.tick() {
            return Next::Stay;
        }
        if !self.shared.may_campaign() {
            // Learners (and nodes whose removal committed) do not campaign. But a leader
            // not heard from for a whole election timeout is gone: forget it, so that
            // its lease ends here too. A learner whose promotion it has not seen yet
            // may hold a vote the next leader needs (seed 1969).
            self.shared.set_leader(None);
            if self.shared.needed_as_candidate {
                // ...or be the only node that can lead (seed 5641): stand, counting
                // votes in its own configuration (safe as for a removed leader,
                // thesis §4.2.2); once it leads and commits, it hands over.
                return Next::Campaign {
                    pre_vote: self.shared.config.pre_vote,
                    leadership_transfer: false,
                };
            }
            self.shared.reset_election_timer();
            return match self.role {
                Role::Follower(_) => Next::Stay,
                _ => Next::StepDown,
            };
        }
        Next::Campaign {
            pre_vote: self.shared.config.pre_vote,
            leadership_transfer: false,
        }
    }

    fn on_message(&mut self, message: Message) {
        let Some(message) = self.term_prelude(message) else {
            return;
        };
        let Message {
            from, term, body, ..
        } = message;
        let shared = &mut self.shared;
        let next = match body {
            MessageBody::VoteRequest {
                pre_vote,
                last_log_index,
                last_log_term,
                ..
            } => {
                self.on_vote_request(from, term, pre_vote, last_log_index, last_log_term);
                Next::Stay
            }
            // A granted PreVote carries the term it was asked about: one from an
            // earlier poll, held in the network, is no vote for this one (raft-sim
            // seed 346). Every other answer is in this node's term (the prelude saw
            // to that).
            MessageBody::VoteResponse {
                pre_vote: true,
                granted: true,
            } if term != shared.term.next() => self.ignored(IgnoreReason::StaleTerm),
            MessageBody::VoteResponse { pre_vote, granted } => match &mut self.role {
                Role::PreCandidate(c) | Role::Candidate(c) if c.pre_vote == pre_vote => {
                    c.on_vote_response(shared, from, granted)
                }
                _ => self.ignored(IgnoreReason::Unexpected),
            },
            body if body.is_from_leader() => self.on_leader_message(from, body),
            MessageBody::AppendResponse(outcome) => match &mut self.role {
                Role::Leader(leader) => leader.on_append_response(shared, from, outcome),
                _ => self.ignored(IgnoreReason::Unexpected),
            },
            MessageBody::HeartbeatResponse { read_round } => match &mut self.role {
                Role::Leader(leader) => leader.on_heartbeat_response(shared, from, read_round),
                _ => self.ignored(IgnoreReason::Unexpected),
            },
            MessageBody::InstallSnapshotResponse {
                last_index,
                next_offset,
                done,
            } => match &mut self.role {
                Role::Leader(leader) => {
                    leader.on_snapshot_response(shared, from, last_index, next_offset, done)
                }
                _ => self.ignored(IgnoreReason::Unexpected),
            },
            MessageBody::ReadIndexRequest { id } => match &mut self.role {
                Role::Leader(leader) => {
                    leader.on_read(shared, id, ReadOrigin::Forwarded(from));
                    Next::Stay
                }
                _ => {
                    let result = Err(ReadFailure::NotLeader);
                    shared.send_now(from, MessageBody::ReadIndexResponse { id, result });
                    Next::Stay
                }
            },
            MessageBody::ReadIndexResponse { id, result } => {
                shared.on_read_index_response(id, result);
                Next::Stay
            }
            _ => unreachable!("every leader message is matched by is_from_leader"),
        };
        self.transition(next);
    }

    /// The term prelude, written once for every message kind (Raft §5.1): a newer term
    /// makes this node a follower in it, an older one is answered or dropped.
    /// Returns the message if it should be handled further.
    fn term_prelude(&mut self, message: Message) -> Option<Message> {
        if message.to != self.shared.id {
            self.ignore(IgnoreReason::WrongRecipient);
            return None;
        }
        if message.from == self.shared.id {
            self.ignore(IgnoreReason::FromSelf);
            return None;
        }
        if !message.from.is_valid() {
            self.ignore(IgnoreReason::Malformed("sender id 0 is reserved"));
            return None;
        }
        if message.term == Term::MAX {
            // Reserved so that a campaign can always move to a newer term.
            self.ignore(IgnoreReason::Malformed("term u64::MAX is reserved"));
            return None;
        }
        if message.term > self.shared.term {
            return self.on_newer_term(message);
        }
        if message.term < self.shared.term {
            self.on_stale_term(&message);
            return None;
        }
        Some(message)
    }

    fn on_newer_term(&mut self, message: Message) -> Option<Message> {
        match &message.body {
            MessageBody::VoteRequest {
                pre_vote,
                leadership_transfer,
                ..
            } => {
                if self.in_leader_lease() && !leadership_transfer {
                    // Leader stickiness (thesis §4.2.3): while this node hears from a
                    // live leader, a disruptive candidate gets no hearing at all.
                    self.ignore(IgnoreReason::LeaderLease);
                    return None;
                }
                if !pre_vote {
                    self.become_follower(message.term, None);
                }
            }
            // A granted PreVote carries the term the candidate would campaign in; it
            // changes no term (thesis §9.6).
            MessageBody::VoteResponse {
                pre_vote: true,
                granted: true,
            } => {}
            body => {
                let leader = body.is_from_leader().then_some(message.from);
                self.become_follower(message.term, leader);
            }
        }
        Some(message)
    }

    fn on_stale_term(&mut self, message: &Message) {
        match &message.body {
            // A deposed leader learns of the newer term from the answer and steps down;
            // with PreVote and CheckQuorum it could otherwise never find out.
            body if body.is_from_leader() => {
                let read_round = 0;
                self.shared
                    .send_now(message.from, MessageBody::HeartbeatResponse { read_round });
            }
            // A candidate behind this node's term learns the term from the refusal
            // (Figure 2: "reply false if term < currentTerm"). Without it, a candidate
            // this node never writes to (one missing from the configuration it knows,
            // after a membership change it has not caught up with) keeps campaigning in
            // terms this node ignores, while this node's own campaigns never reach it.
            MessageBody::VoteRequest { pre_vote, .. } => {
                let body = MessageBody::VoteResponse {
                    pre_vote: *pre_vote,
                    granted: false,
                };
                self.shared.send_now(message.from, body);
            }
            _ => {}
        }
        self.ignore(IgnoreReason::StaleTerm);
    }

    /// Whether this node believes a live leader holds the current term.
    fn in_leader_lease(&self) -> bool {
        if !self.shared.config.check_quorum {
            return false;
        }
        let config = &self.shared.config;
        if config.read_lease && self.shared.now_tick < u64::from(config.election_timeout_ticks_min)
        {
            // A node that just started may have acknowledged a leader's heartbeat before
            // it went down, and that leader may still serve reads from its lease: it
            // waits out a lease's worth of its own ticks before it votes.
            return true;
        }
        match self.role {
            Role::Leader(_) => true,
            _ => self.shared.leader.is_some() && self.shared.election.within_lease(),
        }
    }

    /// A message only the leader of our term sends.
    fn on_leader_message(&mut self, from: NodeId, body: MessageBody) -> Next {
        match self.role {
            Role::Leader(_) => {
                // Election safety makes this impossible among correct nodes.
                return self.ignored(IgnoreReason::Malformed("a second leader in this term"));
            }
            Role::PreCandidate(_) | Role::Candidate(_) => {
                self.become_follower(self.shared.term, Some(from))
            }
            Role::Follower(_) => self.shared.set_leader(Some(from)),
        }
        self.shared.heard_from_leader();
        match body {
            MessageBody::AppendEntries {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
            } => {
                self.shared.on_append_entries(
                    from,
                    prev_log_index,
                    prev_log_term,
                    entries,
                    leader_commit,
                );
                Next::Stay
            }
            MessageBody::Heartbeat { commit, read_round } => {
                self.shared.on_heartbeat(from, commit, read_round);
                Next::Stay
            }
            MessageBody::InstallSnapshot(chunk) => {
                let Role::Follower(follower) = &mut self.role else {
                    unreachable!("a leader's message makes this node a follower first");
                };
                follower.on_install_snapshot(&mut self.shared, from, *chunk);
                Next::Stay
            }
            MessageBody::TimeoutNow => self.shared.on_timeout_now(),
            _ => unreachable!("only leader messages reach here"),
        }
    }

    fn on_propose(&mut self, proposals: Vec<Proposal>) {
        match &mut self.role {
            Role::Leader(leader) => leader.propose(&mut self.shared, proposals),
            _ => self.shared.reject_proposals(proposals.iter().map(|p| p.id)),
        }
    }

    fn on_read(&mut self, id: crate::types::ReadId) {
        match &mut self.role {
            Role::Leader(leader) => leader.on_read(&mut self.shared, id, ReadOrigin::Local),
            _ => self.shared.forward_read(id),
        }
    }

    fn on_campaign(&mut self) {
        let refusal = if matches!(self.role, Role::Leader(_)) {
            Some(IgnoreReason::AlreadyLeader)
        } else if !self.shared.may_campaign() {
            Some(IgnoreReason::NotVoter)
        } else {
            None
        };
        if let Some(reason) = refusal {
            self.shared.out.emit(Action::Ignored(reason));
            return;
        }
        self.transition(Next::Campaign {
            pre_vote: self.shared.config.pre_vote,
            leadership_transfer: false,
        });
    }

    fn on_transfer_leadership(&mut self, to: NodeId) {
        match &mut self.role {
            Role::Leader(leader) => leader.transfer_leadership(&mut self.shared, to),
            _ => self.shared.out.emit(Action::TransferAborted {
                to,
                reason: crate::action::TransferFailure::NotLeader,
            }),
        }
    }

    fn on_change_membership(
        &mut self,
        id: crate::types::ProposalId,
        changes: Vec<crate::event::MembershipChange>,
    ) {
        match &mut self.role {
            Role::Leader(leader) => leader.change_membership(&mut self.shared, id, &changes),
            _ => self.shared.reject_proposals([id]),
        }
    }

    fn on_persisted(&mut self, through: crate::types::PersistSeq) {
        if !self.shared.out.persisted(through, self.shared.term) {
            return;
        }
        self.shared.log.writes_persisted(through);
        let next = match &mut self.role {
            // The leader counts itself toward the commit quorum only up to what it has
            // persisted (thesis §10.2.1).
            Role::Leader(leader) => leader.maybe_commit(&mut self.shared),
            Role::Candidate(candidate) => candidate.on_persisted(&self.shared, through),
            _ => Next::Stay,
        };
        self.transition(next);
    }

    /// Reports that an event had no effect, and why.
    pub(crate) fn ignore(&mut self, reason: IgnoreReason) {
        self.shared.out.emit(Action::Ignored(reason));
    }

    /// `ignore`, for handlers that answer with a transition.
    fn ignored(&mut self, reason: IgnoreReason) -> Next {
        self.ignore(reason);
        Next::Stay
    }

    // ---- role transitions ----

    /// Carries out the role change a handler asked for (the common case is none).
    #[inline]
    pub(crate) fn transition(&mut self, next: Next) {
        if next != Next::Stay {
            self.change_role(next);
        }
    }

    fn change_role(&mut self, next: Next) {
        match next {
            Next::Stay => {}
            Next::StepDown => self.become_follower(self.shared.term, None),
            Next::Campaign {
                pre_vote,
                leadership_transfer,
            } => self.campaign(pre_vote, leadership_transfer),
            Next::BecomeLeader => self.become_leader(),
        }
    }

    /// Becomes a follower in `term` (entering it if newer) of `leader`, if known.
    pub(crate) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        let was = self.role.kind();
        if let Role::Leader(state) = &mut self.role {
            state.step_down(&mut self.shared, leader);
        }
        if term > self.shared.term {
            self.shared.enter_term(term);
        }
        // The election timer keeps running: Raft restarts it only on hearing the
        // current leader, granting a vote, or campaigning (Figure 2). Restarting it on
        // every newer term would let stale candidates, whose votes this node denies,
        // keep the one electable node from ever timing out (raft-sim seed 291).
        if !matches!(self.role, Role::Follower(_)) {
            self.role = Role::Follower(FollowerState::default());
        }
        self.shared.set_leader(leader);
        self.announce_role(was);
    }

    fn become_leader(&mut self) {
        debug_assert!(matches!(self.role, Role::Candidate(_)));
        debug_assert_eq!(self.shared.voted_for, Some(self.shared.id));
        let mut leader = LeaderState::new(&self.shared);
        self.shared.set_leader(Some(self.shared.id));
        // Announced before the term's first entry, though the role is set after it.
        self.shared.out.emit(Action::RoleChanged {
            role: RoleKind::Leader,
            term: self.shared.term,
        });
        let next = leader.start_term(&mut self.shared);
        self.role = Role::Leader(Box::new(leader));
        self.transition(next);
    }

    pub(crate) fn become_candidate(&mut self, pre_vote: bool) {
        let was = self.role.kind();
        if !pre_vote {
            let next_term = self.shared.term.next();
            self.shared.enter_term(next_term);
            self.shared.vote_for(self.shared.id);
        }
        self.shared.set_leader(None);
        self.shared.reset_election_timer();
        let id = self.shared.id;
        self.role = if pre_vote {
            Role::PreCandidate(CandidateState::poll(id))
        } else {
            // The term and self-vote just issued are the newest write.
            Role::Candidate(CandidateState::election(id, self.shared.out.last_issued()))
        };
        self.announce_role(was);
    }

    fn announce_role(&mut self, was: RoleKind) {
        let role = self.role.kind();
        if role != was {
            let term = self.shared.term;
            self.shared.out.emit(Action::RoleChanged { role, term });
        }
    }

    // ---- invariants ----

    /// Checks the node's invariants (debug builds only).
    fn check_invariants(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        let shared = &self.shared;
        shared.log.check();
        debug_assert!(
            shared.log.last_term() <= shared.term,
            "no entry from a future term"
        );
        match &self.role {
            Role::Leader(leader) => {
                debug_assert_eq!(shared.leader, Some(shared.id));
                debug_assert_eq!(shared.voted_for, Some(shared.id));
                leader.check(shared);
            }
            Role::Candidate(_) => {
                debug_assert_eq!(shared.voted_for, Some(shared.id));
                debug_assert!(shared.leader.is_none());
            }
            Role::PreCandidate(_) => debug_assert!(shared.leader.is_none()),
            Role::Follower(_) => {
                if let Some(leader) = shared.leader {
                    debug_assert_ne!(leader, shared.id);
                }
            }
        }
    }
}
