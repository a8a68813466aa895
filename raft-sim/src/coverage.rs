//! Coverage: counts of what happened in a run, so a run cannot pass vacuously, and a
//! sweep can tell when a fault class was never exercised.

use std::fmt;

macro_rules! coverage {
    ($($(#[$doc:meta])* $field:ident),* $(,)?) => {
        /// What happened in one run (or, summed, in a sweep).
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct Coverage {
            $($(#[$doc])* pub $field: u64,)*
        }

        impl Coverage {
            /// Adds another run's counts.
            pub fn add(&mut self, other: &Coverage) {
                $(self.$field += other.$field;)*
            }

            /// Every counter with its name, in declaration order.
            pub fn fields(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($field), self.$field),)*]
            }
        }
    };
}

coverage! {
    /// Nodes that became pre-candidates.
    pre_campaigns,
    /// Nodes that became candidates.
    campaigns,
    /// Nodes that became leader.
    elections_won,
    /// Leaders that stepped down while alive.
    leader_step_downs,
    /// Partitions started.
    partitions,
    /// Nodes crashed.
    crashes,
    /// Nodes restarted.
    restarts,
    /// Unsynced writes lost in crashes.
    crash_writes_lost,
    /// Unsynced writes a crash happened to keep.
    crash_writes_kept,
    /// Messages offered to the network.
    msgs_sent,
    /// Messages delivered (duplicates included).
    msgs_delivered,
    /// Messages dropped by partitions.
    msgs_dropped_partition,
    /// Messages lost at random.
    msgs_dropped_loss,
    /// Messages delivered twice.
    msgs_duplicated,
    /// Messages delayed by the long tail.
    msgs_delayed_tail,
    /// Messages that arrived at a crashed node.
    msgs_to_crashed,
    /// Fsyncs completed.
    fsyncs,
    /// Log suffixes truncated by a conflicting append.
    log_truncations,
    /// Proposals handed to a node.
    proposals,
    /// Proposals committed.
    proposals_committed,
    /// Proposals dropped (not leader, overwritten, ...).
    proposals_dropped,
    /// Proposals whose entry a new leader overwrote.
    proposals_overwritten,
    /// Reads served.
    reads_ready,
    /// Reads failed.
    reads_failed,
    /// Reads a leader of several voters answered in the step that asked, which only
    /// a lease allows (ReadIndex waits for a heartbeat round).
    reads_from_lease,
    /// Snapshots taken by compaction.
    snapshots_taken,
    /// Snapshots installed from a leader.
    snapshots_installed,
    /// Events the core ignored (with a reason).
    events_ignored,
    /// Membership changes handed to a leader.
    membership_proposed,
    /// Membership changes committed.
    membership_committed,
    /// Membership changes the leader refused or lost (one already pending, not yet
    /// committed an entry of its term, no longer leader, overwritten).
    membership_dropped,
    /// Spares added as learners (committed).
    learners_added,
    /// Learners promoted to voters (committed).
    learners_promoted,
    /// Voters removed (committed).
    voters_removed,
    /// Leaders that removed themselves (committed).
    leaders_removed,
    /// Removed nodes stopped as soon as their removal committed (the others run on,
    /// outside the configuration, until the heal).
    removed_nodes_stopped,
    /// Nodes crashed while receiving a snapshot (between chunks, or between the
    /// request to persist it and the report that it is durable).
    snapshot_install_crashes,
    /// Messages held on a cut link (instead of lost).
    msgs_held,
    /// Held messages released when their link healed (then delivered very late).
    msgs_held_released,
    /// Messages lost because the held queue was full.
    msgs_held_overflow,
    /// Messages delayed by the very late tail (longer than an election timeout).
    msgs_delayed_late,
    /// Messages delivered more than an election timeout (200ms) after they were sent.
    msgs_delivered_late,
    /// AppendEntries delivered to a node already in a newer term.
    stale_appends_delivered,
    /// AppendResponses delivered to a node already in a newer term.
    stale_append_responses_delivered,
    /// AppendResponses delivered to the leader of their own term that answer an
    /// older AppendEntries (their match or rejection is below what it knows).
    old_append_responses_delivered,
    /// Vote requests and answers delivered to a node already in a newer term.
    stale_votes_delivered,
    /// Partitions where one node reaches exactly one other.
    partitions_reach_only_one,
    /// Partitions where some nodes cannot hear the leader (one way).
    partitions_cannot_hear_leader,
    /// Leaders crashed with appends their disk had not synced.
    unsynced_leader_crashes,
    /// Unsynced writes those crashes lost.
    unsynced_leader_writes_lost,
    /// Committed membership changes that changed two voters or more at once.
    two_voter_changes_committed,
    /// Committed changes that took 3 voters to 5 at once.
    voters_three_to_five,
    /// Committed changes that took 5 voters to 3 at once.
    voters_five_to_three,
    /// Leaders deposed while in contact with a quorum of their configuration (a
    /// failure where PreVote and CheckQuorum are both on; counted everywhere).
    leaders_deposed_in_contact,
    /// Client operations that ran inside a stable reign (a leader in contact with a
    /// quorum since before they started).
    client_ops_in_stable_reigns,
    /// Of those, the ones that failed or ended unknown: starved by the client's
    /// routing, since the cluster was available all along.
    client_ops_starved,
}

/// A named counter: what it counts, and how to read it from a [`Coverage`].
pub type NamedCounter = (&'static str, fn(&Coverage) -> u64);

/// The fault classes a sweep must exercise at least once: (name, counter).
pub const FAULT_CLASSES: &[NamedCounter] = &[
    ("partition", |c| c.partitions),
    ("crash", |c| c.crashes),
    ("crash losing unsynced writes", |c| c.crash_writes_lost),
    ("message loss", |c| c.msgs_dropped_loss),
    ("message duplication", |c| c.msgs_duplicated),
    ("long-tail delay", |c| c.msgs_delayed_tail),
    ("leader change", |c| c.elections_won.saturating_sub(1)),
    ("log truncation", |c| c.log_truncations),
    ("proposal overwritten", |c| c.proposals_overwritten),
    ("read failed", |c| c.reads_failed),
    ("membership change", |c| c.membership_committed),
    ("voter removed", |c| c.voters_removed),
    ("crash during snapshot install", |c| {
        c.snapshot_install_crashes
    }),
    ("held message delivered after the heal", |c| {
        c.msgs_held_released
    }),
    ("delivery later than an election timeout", |c| {
        c.msgs_delivered_late
    }),
    ("stale-term AppendEntries delivered", |c| {
        c.stale_appends_delivered
    }),
    ("stale-term AppendResponse delivered", |c| {
        c.stale_append_responses_delivered
    }),
    ("AppendResponse to an older append delivered", |c| {
        c.old_append_responses_delivered
    }),
    ("a node reaching only one other", |c| {
        c.partitions_reach_only_one
    }),
    ("nodes that cannot hear the leader", |c| {
        c.partitions_cannot_hear_leader
    }),
    ("leader crash losing unsynced appends", |c| {
        c.unsynced_leader_writes_lost
    }),
    ("two-voter change committed", |c| {
        c.two_voter_changes_committed
    }),
    ("3 voters to 5 at once", |c| c.voters_three_to_five),
    ("5 voters to 3 at once", |c| c.voters_five_to_three),
];

/// Protocol paths a sweep should see; their absence is reported, not failed (the
/// core may not implement them yet, or the sweep may be too small).
pub const PATHS_EXPECTED: &[NamedCounter] = &[
    ("snapshot taken", |c| c.snapshots_taken),
    ("snapshot installed", |c| c.snapshots_installed),
    ("leader step-down", |c| c.leader_step_downs),
    ("learner promoted", |c| c.learners_promoted),
    ("leader removed", |c| c.leaders_removed),
    ("removed node stopped", |c| c.removed_nodes_stopped),
    ("read served from a lease", |c| c.reads_from_lease),
];

impl Coverage {
    /// The fault classes never exercised.
    pub fn fault_gaps(&self) -> Vec<&'static str> {
        FAULT_CLASSES
            .iter()
            .filter(|(_, count)| count(self) == 0)
            .map(|(name, _)| *name)
            .collect()
    }

    /// The expected protocol paths never seen.
    pub fn path_gaps(&self) -> Vec<&'static str> {
        PATHS_EXPECTED
            .iter()
            .filter(|(_, count)| count(self) == 0)
            .map(|(name, _)| *name)
            .collect()
    }
}

impl fmt::Display for Coverage {
    /// Counters as `name=value`, wrapped a few to a line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const PER_LINE: usize = 6;
        let fields = self.fields();
        for (i, chunk) in fields.chunks(PER_LINE).enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            let line: Vec<String> = chunk.iter().map(|(k, v)| format!("{k}={v}")).collect();
            write!(f, "          {}", line.join(" "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_sums_every_counter() {
        let mut a = Coverage {
            crashes: 1,
            ..Coverage::default()
        };
        a.add(&Coverage {
            crashes: 2,
            reads_ready: 5,
            ..Coverage::default()
        });
        assert_eq!((a.crashes, a.reads_ready), (3, 5));
    }

    #[test]
    fn gaps_name_the_classes_never_seen() {
        let mut c = Coverage::default();
        assert_eq!(c.fault_gaps().len(), FAULT_CLASSES.len());
        c.partitions = 1;
        c.elections_won = 1; // one election is not a leader change
        let gaps = c.fault_gaps();
        assert!(!gaps.contains(&"partition"));
        assert!(gaps.contains(&"leader change"));
    }
}
