//! Efficiency: what replication costs, with budgets that fail a run. A bug here
//! (backtracking one entry at a time, a hint off by one, a resend storm) costs
//! messages and round trips, never safety, so no safety checker can see it.
//!
//! Two measures:
//! - **Probe round trips per catch-up.** A probe round trip is a rejected
//!   AppendEntries that made the leader send the follower another one (a stale or
//!   duplicate rejection, which the leader ignores, is none). A catch-up is the run
//!   of probe round trips a leader needs, in one term, before the follower accepts
//!   an append (or a snapshot): with the fast-backtracking hint, one per term of the
//!   follower's conflicting suffix, plus one if the follower is behind.
//! - **Replication messages per committed entry**: the AppendEntries and
//!   InstallSnapshot messages and their answers sent in the run, over the entries
//!   committed (the highest index known committed at the end). Heartbeats and votes
//!   are left out: they cost time, not entries, and a world that commits little
//!   while partitions come and go would otherwise look wasteful. Every message per
//!   committed entry is reported too.
//!
//! The budgets come from the distributions measured across the sweep matrix of the
//! README (`raft-sim/matrix.sh`, 18 worlds of 1,000 seeds): the worst seen, with a
//! margin of about two.

use std::collections::BTreeMap;

use raft_core::{MessageBody, NodeId, Term};

/// The most probe round trips one catch-up may take. Measured across the sweep
/// matrix: at most 4 (a follower with entries of several stale terms; 3 outside
/// the worlds with membership changes on every seed). Backtracking one entry at a
/// time takes tens to hundreds.
pub const PROBE_ROUND_TRIPS_PER_CATCH_UP_MAX: u64 = 8;

/// The most replication messages per committed entry a run may send, once it has
/// committed [`COMMITTED_ENTRIES_MIN`] entries. Measured across the sweep matrix:
/// the median run sends 4-17 (by cluster size), the 99th percentile 25-281, the
/// worst 666. The tail is one pattern: one entry per message, a window of 64 in
/// flight, and a network that reorders: an append that overtakes its predecessor is
/// rejected, the leader falls back to probing, and on the next acceptance refills
/// the whole window, resending what was in flight (as etcd's raft does).
pub const REPLICATION_MSGS_PER_COMMITTED_ENTRY_MAX: u64 = 1_500;

/// The fewest committed entries for the messages-per-entry budget to apply (a run
/// that commits almost nothing has too few entries to share the cost).
pub const COMMITTED_ENTRIES_MIN: u64 = 100;

/// Follows the probes of every leader to every follower, and counts replication
/// messages.
#[derive(Clone, Debug, Default)]
pub struct CostTracker {
    /// (leader, follower) to the term and probe round trips of the catch-up under way.
    open: BTreeMap<(NodeId, NodeId), (Term, u64)>,
    /// Catch-ups completed.
    pub catch_ups: u64,
    /// Probe round trips of the catch-ups completed.
    pub round_trips: u64,
    /// The most round trips one catch-up took.
    pub round_trips_max: u64,
    /// AppendEntries, InstallSnapshot and their answers sent.
    pub replication_msgs: u64,
}

impl CostTracker {
    /// A message went out.
    pub fn on_send(&mut self, body: &MessageBody) {
        if matches!(
            body,
            MessageBody::AppendEntries { .. }
                | MessageBody::AppendResponse(_)
                | MessageBody::InstallSnapshot(_)
                | MessageBody::InstallSnapshotResponse { .. }
        ) {
            self.replication_msgs += 1;
        }
    }

    /// `leader`, leading `term`, answered a rejection from `follower` with another
    /// AppendEntries.
    pub fn on_probe(&mut self, leader: NodeId, follower: NodeId, term: Term) {
        let open = self.open.entry((leader, follower)).or_insert((term, 0));
        if open.0 != term {
            *open = (term, 0);
        }
        open.1 += 1;
    }

    /// `leader`, leading `term`, heard `follower` accept an append or a snapshot:
    /// the catch-up under way (if any) is complete.
    pub fn on_accepted(&mut self, leader: NodeId, follower: NodeId, term: Term) {
        let Some((open_term, trips)) = self.open.remove(&(leader, follower)) else {
            return;
        };
        if open_term != term {
            return;
        }
        self.catch_ups += 1;
        self.round_trips += trips;
        self.round_trips_max = self.round_trips_max.max(trips);
    }

    /// `leader` stopped leading (or crashed): its catch-ups under way end unfinished.
    pub fn on_reign_end(&mut self, leader: NodeId) {
        self.open.retain(|(l, _), _| *l != leader);
    }
}

/// What replication cost in one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EfficiencyReport {
    /// Catch-ups completed.
    pub catch_ups: u64,
    /// Their probe round trips.
    pub probe_round_trips: u64,
    /// The most round trips one catch-up took.
    pub probe_round_trips_max: u64,
    /// Messages sent.
    pub msgs_sent: u64,
    /// Replication messages sent (AppendEntries, InstallSnapshot, their answers).
    pub replication_msgs_sent: u64,
    /// Entries committed.
    pub entries_committed: u64,
}

impl EfficiencyReport {
    /// Messages per committed entry (sent messages if nothing committed).
    pub fn msgs_per_committed_entry(&self) -> u64 {
        self.msgs_sent / self.entries_committed.max(1)
    }

    /// Replication messages per committed entry.
    pub fn replication_msgs_per_committed_entry(&self) -> u64 {
        self.replication_msgs_sent / self.entries_committed.max(1)
    }

    /// The budget this run broke, if any.
    pub fn over_budget(&self) -> Option<String> {
        if self.probe_round_trips_max > PROBE_ROUND_TRIPS_PER_CATCH_UP_MAX {
            return Some(format!(
                "a catch-up took {} probe round trips (budget {PROBE_ROUND_TRIPS_PER_CATCH_UP_MAX})",
                self.probe_round_trips_max
            ));
        }
        let per_entry = self.replication_msgs_per_committed_entry();
        if self.entries_committed >= COMMITTED_ENTRIES_MIN
            && per_entry > REPLICATION_MSGS_PER_COMMITTED_ENTRY_MAX
        {
            return Some(format!(
                "{per_entry} replication messages per committed entry ({} messages, {} entries; budget {REPLICATION_MSGS_PER_COMMITTED_ENTRY_MAX})",
                self.replication_msgs_sent, self.entries_committed
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_catch_up_counts_the_probes_of_one_term_until_an_accept() {
        let (l, f) = (NodeId(1), NodeId(2));
        let mut p = CostTracker::default();
        p.on_probe(l, f, Term(3));
        p.on_probe(l, f, Term(3));
        p.on_accepted(l, f, Term(3));
        p.on_accepted(l, f, Term(3)); // nothing open: no catch-up
        assert_eq!((p.catch_ups, p.round_trips, p.round_trips_max), (1, 2, 2));
        p.on_probe(l, f, Term(3));
        p.on_reign_end(l);
        p.on_accepted(l, f, Term(3));
        assert_eq!(p.catch_ups, 1, "an unfinished catch-up is not counted");
    }

    #[test]
    fn budgets_name_what_they_broke() {
        let fine = EfficiencyReport {
            catch_ups: 3,
            probe_round_trips: 4,
            probe_round_trips_max: 2,
            msgs_sent: 10_000,
            replication_msgs_sent: 5_000,
            entries_committed: 1_000,
        };
        assert_eq!(fine.over_budget(), None);
        let probing = EfficiencyReport {
            probe_round_trips_max: PROBE_ROUND_TRIPS_PER_CATCH_UP_MAX + 1,
            ..fine
        };
        assert!(probing.over_budget().unwrap().contains("probe round trips"));
        let chatty = EfficiencyReport {
            replication_msgs_sent: 1_000 * (REPLICATION_MSGS_PER_COMMITTED_ENTRY_MAX + 1),
            ..fine
        };
        assert!(chatty
            .over_budget()
            .unwrap()
            .contains("messages per committed entry"));
        let idle = EfficiencyReport {
            entries_committed: COMMITTED_ENTRIES_MIN - 1,
            ..chatty
        };
        assert_eq!(idle.over_budget(), None, "too few entries to judge");
    }
}
