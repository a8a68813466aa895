//! Leadership transfer (thesis §3.10): the leader catches the target up, then tells it
//! to campaign at once (TimeoutNow, which skips PreVote and the leader lease); a
//! transfer that does not finish within an election timeout is abandoned and the
//! leader leads on. Proposals are refused meanwhile, so the target can catch up.

use crate::action::{Action, IgnoreReason, TransferFailure};
use crate::message::MessageBody;
use crate::role::leader::LeaderState;
use crate::role::Next;
use crate::shared::Shared;
use crate::types::NodeId;

/// A leadership transfer under way.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Transfer {
    to: NodeId,
    elapsed_ticks: u32,
}

impl LeaderState {
    /// Starts handing leadership to `to`: catch it up, then tell it to campaign.
    pub(crate) fn transfer_leadership(&mut self, shared: &mut Shared, to: NodeId) {
        if to == shared.id {
            shared.out.emit(Action::Ignored(IgnoreReason::Unexpected));
            return;
        }
        if !shared.membership().is_voter(to) || !self.progress.contains_key(&to) {
            let reason = TransferFailure::NotAVoter;
            shared.out.emit(Action::TransferAborted { to, reason });
            return;
        }
        if let Some(current) = self.transfer {
            if current.to == to {
                return;
            }
            self.abort_transfer(shared, TransferFailure::Superseded);
        }
        self.transfer = Some(Transfer {
            to,
            elapsed_ticks: 0,
        });
        self.maybe_send_timeout_now(shared, to);
        self.send_append_to(shared, to, true);
    }

    /// Sends TimeoutNow if `peer` is the transfer target and has our whole log.
    pub(crate) fn maybe_send_timeout_now(&mut self, shared: &mut Shared, peer: NodeId) {
        let is_target = self.transfer.is_some_and(|t| t.to == peer);
        let caught_up = self
            .progress
            .get(&peer)
            .is_some_and(|p| p.match_index == shared.log.last_index());
        if is_target && caught_up {
            self.send_timeout_now(shared, peer);
        }
    }

    fn abort_transfer(&mut self, shared: &mut Shared, reason: TransferFailure) {
        if let Some(transfer) = self.transfer.take() {
            let to = transfer.to;
            shared.out.emit(Action::TransferAborted { to, reason });
        }
    }

    /// Tells `peer` to campaign at once. Its campaign skips every voter's lease, so
    /// this leader's read lease ends here.
    pub(crate) fn send_timeout_now(&mut self, shared: &mut Shared, peer: NodeId) {
        self.lease.revoke();
        shared.send_now(peer, MessageBody::TimeoutNow);
    }

    /// One tick of a transfer under way: abandoned after an election timeout.
    pub(crate) fn tick_transfer(&mut self, shared: &mut Shared) {
        if let Some(transfer) = &mut self.transfer {
            transfer.elapsed_ticks += 1;
            if transfer.elapsed_ticks >= shared.config.election_timeout_ticks_min {
                self.abort_transfer(shared, TransferFailure::Timeout);
            }
        }
    }

    /// Leaving the role ends a transfer: stepping down for the target's campaign is
    /// the transfer working; only a different leader means it failed.
    pub(crate) fn end_transfer(&mut self, shared: &mut Shared, new_leader: Option<NodeId>) {
        if let Some(transfer) = self.transfer.take() {
            if new_leader.is_some_and(|leader| leader != transfer.to) {
                let (to, reason) = (transfer.to, TransferFailure::NotLeader);
                shared.out.emit(Action::TransferAborted { to, reason });
            }
        }
    }

    /// Whether a transfer is under way.
    pub(crate) fn is_transferring(&self) -> bool {
        self.transfer.is_some()
    }
}

impl Shared {
    /// The leader hands over leadership: campaign at once, skipping PreVote.
    pub(crate) fn on_timeout_now(&mut self) -> Next {
        if !self.is_voter() {
            self.out.emit(Action::Ignored(IgnoreReason::Unexpected));
            return Next::Stay;
        }
        Next::Campaign {
            pre_vote: false,
            leadership_transfer: true,
        }
    }
}
