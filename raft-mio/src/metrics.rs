//! A node's counters, for metrics exporters: what the loop counted since the node
//! started (proposals, reads, elections, snapshots), how long its group-commit
//! `fdatasync`s took, and what went to and came from each peer.
//!
//! raft-mio keeps plain numbers and no exporter of its own, so that every shell
//! exports them its own way; [`Client::metrics`](crate::Client::metrics) takes a copy
//! through the loop (kv-example serves it in the Prometheus text format). Every
//! counter only grows while the node runs, and starts at zero with the process.

use std::collections::BTreeMap;
use std::time::Duration;

use raft_core::{Action, DropReason, NodeId, ReadFailure, RoleKind};

/// The upper bounds of the fsync latency buckets, in microseconds: from 50 µs (a
/// write-back cache) to 10 s (a disk that is failing).
pub const FSYNC_BUCKET_BOUNDS_US: &[u64] = &[
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 10_000_000,
];

/// A latency histogram with fixed buckets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LatencyHistogram {
    /// The buckets' upper bounds (inclusive), in microseconds, ascending.
    pub bucket_bounds_us: &'static [u64],
    /// How many observations fell in each bucket (not cumulative): one count per
    /// bound, and a last one for those above the last bound.
    pub bucket_counts: Vec<u64>,
    /// The sum of all observations, in microseconds.
    pub sum_us: u64,
    /// The number of observations.
    pub count: u64,
}

impl LatencyHistogram {
    /// An empty histogram over `bounds_us` (ascending).
    pub fn new(bounds_us: &'static [u64]) -> LatencyHistogram {
        debug_assert!(bounds_us.windows(2).all(|w| w[0] < w[1]));
        LatencyHistogram {
            bucket_bounds_us: bounds_us,
            bucket_counts: vec![0; bounds_us.len() + 1],
            sum_us: 0,
            count: 0,
        }
    }

    /// Counts one observation.
    pub fn observe(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let bucket = self.bucket_bounds_us.partition_point(|bound| *bound < us);
        self.bucket_counts[bucket] += 1;
        self.sum_us = self.sum_us.saturating_add(us);
        self.count += 1;
        debug_assert_eq!(self.bucket_counts.iter().sum::<u64>(), self.count);
    }

    /// Each bound with the number of observations at or below it (cumulative, as
    /// Prometheus histograms count); the total is [`count`](Self::count).
    pub fn cumulative(&self) -> Vec<(Duration, u64)> {
        let mut total = 0;
        self.bucket_bounds_us
            .iter()
            .zip(&self.bucket_counts)
            .map(|(bound, n)| {
                total += n;
                (Duration::from_micros(*bound), total)
            })
            .collect()
    }
}

/// Traffic between this node and one peer, counted in frames (one message each)
/// and their encoded bytes. Sent counts what was queued for the peer; frames the
/// queue dropped later are also counted in
/// [`PeerConnection::dropped_frames`](crate::PeerConnection::dropped_frames).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerTraffic {
    /// Messages queued for the peer.
    pub messages_sent: u64,
    /// Their bytes, frame headers included.
    pub bytes_sent: u64,
    /// Messages received from the peer.
    pub messages_received: u64,
    /// Bytes of frames read from the peer's connections.
    pub bytes_received: u64,
}

/// What a node counted since it started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeMetrics {
    /// Proposals reported committed.
    pub proposals_committed: u64,
    /// Proposals reported dropped, by reason (see [`drop_reason_name`]).
    pub proposals_dropped: BTreeMap<&'static str, u64>,
    /// Read barriers confirmed.
    pub reads_ready: u64,
    /// Read barriers that failed, by reason (see [`read_failure_name`]).
    pub reads_failed: BTreeMap<&'static str, u64>,
    /// Elections this node started (it became a candidate; PreVote polls that did
    /// not lead to one are not counted).
    pub elections_started: u64,
    /// Elections this node won (it became the leader).
    pub elections_won: u64,
    /// Times this node stopped leading.
    pub step_downs: u64,
    /// Snapshots received from a leader and installed.
    pub snapshots_installed: u64,
    /// Snapshots written to disk (the application's compactions and installs).
    pub snapshots_written: u64,
    /// How long each group-commit `fdatasync` of the log took.
    pub fsync_latency: LatencyHistogram,
    /// Traffic with each peer this node has talked to.
    pub peers: BTreeMap<NodeId, PeerTraffic>,
}

impl Default for NodeMetrics {
    fn default() -> Self {
        NodeMetrics {
            proposals_committed: 0,
            proposals_dropped: BTreeMap::new(),
            reads_ready: 0,
            reads_failed: BTreeMap::new(),
            elections_started: 0,
            elections_won: 0,
            step_downs: 0,
            snapshots_installed: 0,
            snapshots_written: 0,
            fsync_latency: LatencyHistogram::new(FSYNC_BUCKET_BOUNDS_US),
            peers: BTreeMap::new(),
        }
    }
}

impl NodeMetrics {
    /// Counts what `action` says (the loop calls it for every action it carries out,
    /// before carrying it out); `role` is the role before the action.
    pub(crate) fn count(&mut self, action: &Action, role: RoleKind) {
        match action {
            Action::ProposalCommitted { .. } => self.proposals_committed += 1,
            Action::ProposalDropped { reason, .. } => {
                *self
                    .proposals_dropped
                    .entry(drop_reason_name(*reason))
                    .or_default() += 1;
            }
            Action::ReadReady { .. } => self.reads_ready += 1,
            Action::ReadFailed { reason, .. } => {
                *self
                    .reads_failed
                    .entry(read_failure_name(*reason))
                    .or_default() += 1;
            }
            Action::RoleChanged { role: new, .. } => {
                if role == RoleKind::Leader && *new != RoleKind::Leader {
                    self.step_downs += 1;
                }
                match new {
                    RoleKind::Candidate => self.elections_started += 1,
                    RoleKind::Leader => self.elections_won += 1,
                    RoleKind::Follower | RoleKind::PreCandidate => {}
                }
            }
            Action::RestoreSnapshot(_) => self.snapshots_installed += 1,
            Action::PersistSnapshot { .. } => self.snapshots_written += 1,
            _ => {}
        }
    }
}

/// The name of a drop reason in metrics (snake case, stable).
pub fn drop_reason_name(reason: DropReason) -> &'static str {
    match reason {
        DropReason::NotLeader { .. } => "not_leader",
        DropReason::Overwritten => "overwritten",
        DropReason::Transferring => "transferring",
        DropReason::Overloaded => "overloaded",
        DropReason::MembershipChangePending => "membership_change_pending",
        DropReason::InvalidMembership => "invalid_membership",
        DropReason::Unknown => "unknown",
    }
}

/// The name of a read failure in metrics (snake case, stable).
pub fn read_failure_name(reason: ReadFailure) -> &'static str {
    match reason {
        ReadFailure::NoLeader => "no_leader",
        ReadFailure::NotLeader => "not_leader",
        ReadFailure::Timeout => "timeout",
        ReadFailure::Overloaded => "overloaded",
    }
}

#[cfg(test)]
mod tests {
    use raft_core::{ProposalId, Term};

    use super::*;

    #[test]
    fn latencies_fall_in_their_buckets() {
        let mut histogram = LatencyHistogram::new(&[100, 1_000]);
        for us in [50, 100, 101, 5_000] {
            histogram.observe(Duration::from_micros(us));
        }
        assert_eq!(histogram.bucket_counts, vec![2, 1, 1]);
        assert_eq!(histogram.count, 4);
        assert_eq!(histogram.sum_us, 5_251);
        assert_eq!(
            histogram.cumulative(),
            vec![
                (Duration::from_micros(100), 2),
                (Duration::from_micros(1_000), 3)
            ]
        );
    }

    #[test]
    fn actions_count_elections_step_downs_and_drops() {
        let mut metrics = NodeMetrics::default();
        let role_changed = |role| Action::RoleChanged {
            role,
            term: Term(2),
        };
        metrics.count(&role_changed(RoleKind::Candidate), RoleKind::PreCandidate);
        metrics.count(&role_changed(RoleKind::Leader), RoleKind::Candidate);
        metrics.count(&role_changed(RoleKind::Follower), RoleKind::Leader);
        let dropped = Action::ProposalDropped {
            id: ProposalId(1),
            reason: DropReason::Overwritten,
        };
        metrics.count(&dropped, RoleKind::Follower);
        metrics.count(&dropped, RoleKind::Follower);
        assert_eq!(metrics.elections_started, 1);
        assert_eq!(metrics.elections_won, 1);
        assert_eq!(metrics.step_downs, 1);
        assert_eq!(metrics.proposals_dropped["overwritten"], 2);
    }
}
