//! The loop's side of membership changes and members' addresses (see
//! [`crate::members`]): a change request dials the new members and proposes their
//! address record just before the change; applied records and configurations update
//! the directory; a leader publishes what the table lacks; a restored snapshot
//! brings its table; and the transport follows the membership.

use std::collections::BTreeSet;
use std::time::Instant;

use raft_core::{
    DropReason, Entry, EntryPayload, Event, LogIndex, Membership, MembershipChange, ProposalId,
    Restored, RoleKind, Snapshot, Term,
};

use super::NodeLoop;
use crate::bounds::MEMBERS_MAX;
use crate::client::AppendError;
use crate::clock;
use crate::committed::Delivery;
use crate::config::RaftConfig;
use crate::envelope::{decode_entry, encode_record, unwrap_snapshot, Payload, TAG_ADDRS};
use crate::error::{LoopError, StartError};
use crate::members::{AddrTable, Directory};
use crate::reply::Reply;

/// The loop's side of members and addresses.
#[derive(Debug)]
pub(super) struct Members {
    /// Where the members are (see [`crate::members`]).
    pub(super) directory: Directory,
    /// The configuration of the newest membership entry applied (or of the snapshot).
    pub(super) applied_membership: Membership,
    /// The newest term this node has applied an entry of: once a leader has applied
    /// one of its own, its address table reflects every record committed before it.
    pub(super) applied_term: Term,
    /// Address records this node proposed whose fate is not known yet.
    pub(super) records_in_flight: BTreeSet<ProposalId>,
    /// Membership changes proposed here whose fate is not known yet.
    pub(super) changes_in_flight: BTreeSet<ProposalId>,
    /// Whether a leader should check that the address table covers every member.
    pub(super) publish_check_due: bool,
    /// The largest address record proposed (records are commands too).
    pub(super) command_bytes_max: usize,
}

impl Members {
    pub(super) fn new(
        directory: Directory,
        applied_membership: Membership,
        command_bytes_max: usize,
    ) -> Self {
        Members {
            directory,
            applied_membership,
            applied_term: Term(0),
            records_in_flight: BTreeSet::new(),
            changes_in_flight: BTreeSet::new(),
            publish_check_due: false,
            command_bytes_max,
        }
    }
}

/// What a node knows of its members when it starts: the directory (configured
/// addresses, and the table of its snapshot), the membership of the snapshot (or the
/// initial one), and the snapshot's restore for the application, if any.
pub(super) fn restored_directory(
    config: &RaftConfig,
    restored: &Restored,
) -> Result<(Directory, Membership, Option<Delivery>), StartError> {
    // A founding member on empty storage: its configuration is the one every founder
    // was started with, so its addresses are news to no founder.
    let founding =
        !(config.core.initial_voters.is_empty() && config.core.initial_learners.is_empty());
    let fresh = super::bootstrap::is_fresh(restored);
    let mut directory = Directory::new(config.id, config.member_addrs(), founding && fresh);
    let Some(snapshot) = restored.snapshot.as_ref() else {
        let initial = Membership {
            voters: config.core.initial_voters.clone(),
            voters_outgoing: Default::default(),
            learners: config.core.initial_learners.clone(),
        };
        return Ok((directory, initial, None));
    };
    // The snapshot's data is raft-mio's envelope: the address table as of its index,
    // then the application's state.
    let (table, app) = unwrap_snapshot(&snapshot.data).map_err(StartError::Snapshot)?;
    directory.restore(snapshot.meta.last_index, table);
    let restore = Delivery::Restore {
        meta: snapshot.meta.clone(),
        data: app,
    };
    Ok((directory, snapshot.meta.membership.clone(), Some(restore)))
}

impl NodeLoop {
    /// A membership change: the new members' addresses are dialed at once and
    /// proposed as an address record just before the change (see [`crate::members`]).
    pub(super) fn on_change_membership(
        &mut self,
        changes: Vec<MembershipChange>,
        addrs: AddrTable,
        reply: Reply<Result<LogIndex, AppendError>>,
        now: Instant,
    ) {
        let me = self.core.id();
        for (id, member) in &addrs {
            if *id != me {
                self.io.transport.add_peer(*id, member.raft.clone(), now);
            }
            self.members.directory.stage(*id, member.clone());
        }
        let mut members = self.core.membership().members();
        for change in &changes {
            match *change {
                MembershipChange::AddLearner(id) | MembershipChange::AddVoter(id) => {
                    members.insert(id);
                }
                MembershipChange::Remove(id) => {
                    members.remove(&id);
                }
            }
        }
        if members.len() > MEMBERS_MAX {
            // Larger configurations could outgrow the frame bound (see `bounds`).
            tracing::warn!(node = %me, members = members.len(), "refusing a membership change beyond {MEMBERS_MAX} members");
            reply.send(Err(AppendError::Dropped(DropReason::InvalidMembership)));
            self.reconcile_peers();
            return;
        }
        // Before the leader has applied an entry of its term, its table may miss
        // committed records, and what it would publish could undo them; the change
        // is refused then anyway (no configuration entry before the leader commits
        // in its term), and the publishing check covers the rest later.
        if self.members.applied_term == self.core.term() {
            let record = self.members.directory.record_for(&members, &addrs);
            if !record.is_empty() {
                let _ = self.propose_record(record);
            }
        }
        let id = self.requests.next_proposal();
        self.requests.proposals.insert(id, reply);
        self.members.changes_in_flight.insert(id);
        self.gathered
            .other_events
            .push(Event::ChangeMembership { id, changes });
    }

    /// Proposes an address record (a command entry in raft-mio's envelope); its
    /// proposal id, whose outcome the loop follows. A record over `command_bytes_max`
    /// (addresses of absurd length) is refused like a client's command.
    pub(super) fn propose_record(&mut self, record: AddrTable) -> Result<ProposalId, AppendError> {
        debug_assert!(!record.is_empty());
        let command = encode_record(&record);
        if command.len() > self.members.command_bytes_max {
            tracing::error!(node = %self.core.id(), bytes = command.len(), "an address record over command_bytes_max; not published");
            return Err(AppendError::TooLarge {
                bytes: command.len(),
                max: self.members.command_bytes_max,
            });
        }
        let id = self.requests.next_proposal();
        tracing::info!(node = %self.core.id(), members = ?record.keys().collect::<Vec<_>>(), "publishing members' addresses");
        self.members.records_in_flight.insert(id);
        self.gathered.other_events.push(Event::propose(id, command));
        Ok(id)
    }

    /// On a leader that has applied an entry of its term and has no record in
    /// flight: publishes what the address table lacks, if that is news to anyone
    /// (see [`crate::members`]).
    pub(super) fn maybe_publish_addrs(&mut self) {
        if !self.members.publish_check_due || !self.members.records_in_flight.is_empty() {
            return;
        }
        self.members.publish_check_due = false;
        if self.core.role() != RoleKind::Leader || self.members.applied_term != self.core.term() {
            return;
        }
        let members = self.core.membership().members();
        let record = self
            .members
            .directory
            .record_for(&members, &AddrTable::new());
        if self.members.directory.is_news(&record) {
            let _ = self.propose_record(record);
        }
    }

    /// Forgets a decided proposal of the loop's own; whether it was a membership
    /// change.
    pub(super) fn forget_proposal(&mut self, id: ProposalId) -> bool {
        if self.members.records_in_flight.remove(&id) {
            // Committed, it is applied by now; dropped, it must be published again.
            self.members.publish_check_due = true;
        }
        self.members.changes_in_flight.remove(&id)
    }

    /// Applies a configuration or address record to the directory; whether the
    /// transport must follow.
    pub(super) fn apply_to_directory(&mut self, entry: &Entry) -> bool {
        match &entry.payload {
            EntryPayload::Membership(membership) => {
                self.members
                    .directory
                    .apply_membership(entry.index, membership);
                self.members.applied_membership = (**membership).clone();
                true
            }
            EntryPayload::Command(bytes) if bytes.first() == Some(&TAG_ADDRS) => {
                match decode_entry(bytes) {
                    Payload::Record(record) => !self
                        .members
                        .directory
                        .apply_record(entry.index, record)
                        .is_empty(),
                    Payload::Command(_) | Payload::Invalid(_) => {
                        tracing::warn!(node = %self.core.id(), index = %entry.index, "an address record that does not decode; ignored");
                        false
                    }
                }
            }
            EntryPayload::Command(_) | EntryPayload::Noop => false,
        }
    }

    /// A follower installed the leader's snapshot: the application restores its
    /// state, the directory its table.
    pub(super) fn on_restore(&mut self, snapshot: Snapshot) -> Result<(), LoopError> {
        self.deliver_applies();
        let (table, app) = unwrap_snapshot(&snapshot.data).map_err(LoopError::Snapshot)?;
        tracing::info!(
            node = %self.core.id(), last_index = %snapshot.meta.last_index,
            bytes = snapshot.data.len(), "restoring a snapshot from the leader"
        );
        self.members
            .directory
            .restore(snapshot.meta.last_index, table);
        self.members.applied_membership = snapshot.meta.membership.clone();
        self.applied.index = snapshot.meta.last_index;
        self.deliver(Delivery::Restore {
            meta: snapshot.meta,
            data: app,
        });
        self.reconcile_peers();
        self.members.publish_check_due = true;
        Ok(())
    }

    /// Brings the transport in line with the membership: members are heard and
    /// dialed (at their address in the directory, which may have changed); nodes
    /// that are members neither of the newest configuration in the log nor of the
    /// newest one applied are dropped, and their connections closed. A node that is
    /// waiting to be added (it knows no membership yet) keeps its configured peers.
    pub(super) fn reconcile_peers(&mut self) {
        let mut members = self.core.membership().members();
        members.extend(self.members.applied_membership.members());
        if members.is_empty() {
            return;
        }
        let me = self.core.id();
        let now = clock::now();
        self.members.directory.retain_staged(&members);
        for id in members.iter().copied().filter(|id| *id != me) {
            match self.members.directory.get(id) {
                Some(addrs) => self.io.transport.add_peer(id, addrs.raft.clone(), now),
                None => self.io.transport.allow_peer(id),
            }
        }
        for id in self.io.transport.known_peers() {
            if !members.contains(&id) {
                tracing::info!(node = %me, peer = %id, "peer removed from the membership; closing its connections");
                self.io
                    .transport
                    .remove_peer(id, self.io.poll.registry(), now);
            }
        }
    }
}
