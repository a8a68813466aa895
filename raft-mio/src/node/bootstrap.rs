//! A new cluster's preferred first leader: the node configured with
//! [`campaign_at_bootstrap`](crate::RaftConfig::campaign_at_bootstrap) campaigns as
//! soon as it is connected to enough voters to win, rather than after a randomized
//! election timeout. Through PreVote, so campaigning early can only cost a failed
//! poll, never a disrupted leader; and only once, and only while no election has
//! started anywhere (the term is still 0).

use raft_core::{Event, Restored, RoleKind, Term};

use super::NodeLoop;

/// Whether the node starts on empty storage: no term, no log, no snapshot.
pub(super) fn is_fresh(restored: &Restored) -> bool {
    restored.snapshot.is_none()
        && restored.entries.is_empty()
        && restored.hard_state.term == Term(0)
}

impl NodeLoop {
    /// Steps `Event::Campaign` once a majority of the voters (this node included)
    /// is reachable; disarms for good once any election has begun.
    pub(super) fn maybe_campaign_at_bootstrap(&mut self) {
        if !self.lifecycle.campaign_armed {
            return;
        }
        if self.core.term() != Term(0) || self.core.role() != RoleKind::Follower {
            self.lifecycle.campaign_armed = false;
            return;
        }
        let voters = &self.core.membership().voters;
        if !voters.contains(&self.core.id()) {
            self.lifecycle.campaign_armed = false;
            return;
        }
        let connected = voters
            .iter()
            .filter(|&&id| self.io.transport.is_connected(id))
            .count();
        if 1 + connected > voters.len() / 2 {
            tracing::info!(node = %self.core.id(), connected, "new cluster: campaigning at once");
            self.lifecycle.campaign_armed = false;
            self.gathered.other_events.push(Event::Campaign);
        }
    }
}
