//! Failing seeds the simulator found in raft-core, one named test each. A test stays
//! `#[ignore]`d with the bug's description until the core is fixed; then the ignore
//! goes and the test guards the fix. Every bug below is fixed (the first two seeds
//! were found against the core as it first landed, the next ones once membership
//! changes joined the swarm, then some in pinned worlds: one voter, and frequent
//! partitions without CheckQuorum; the last one once messages held on cut links
//! joined them).
//!
//! The worlds of a seed change when the simulator's do (issue 9 added held and very
//! late messages, partial connectivity, aimed crashes, small clusters, and a client
//! that routes differently), so a seed found before a change may no longer replay
//! its schedule. Where raft-core has a scripted test of the same schedule, which does
//! not depend on the simulator's draws, the description names it.

use raft_sim::params::{Pins, SimParams};
use raft_sim::run::{run, Verdict};
use raft_sim::world::RunOptions;

/// Runs `seed` in the world `pins` leaves it, which must pass every check.
fn assert_seed_passes(seed: u64, pins: &Pins) {
    let report = run(&SimParams::draw(seed, pins), RunOptions::default());
    assert_eq!(report.verdict, Verdict::Pass, "{report}");
}

/// The world of a failing seed with every fault pinned off: the smallest world that
/// still fails.
fn calm_three_nodes_compacting_every(entries: u64) -> Pins {
    Pins {
        nodes: Some(3),
        compact_every: Some(entries),
        partitions: Some(false),
        crashes: Some(false),
        loss_percent: Some(0.0),
        duplicate_percent: Some(0.0),
        minority_stays_down: Some(false),
        ..Pins::default()
    }
}

/// Fixed in raft-core `LeaderState::check`, which now skips the check once the term's
/// first entry is inside the snapshot.
///
/// Seed 4: the leader n3 of term 1 applies i5 and compacts through it (137.668ms).
/// `LeaderState::check` (raft-core/src/role/leader.rs:447) then asserts
/// `log.term_at(term_start_index) == Some(term)`, but the term's first entry (i1, the
/// leader's no-op) is now inside the snapshot, so `term_at` is None and every debug
/// build of a leader that compacts past the start of its term panics. Release builds
/// are unaffected (the assertion is the only problem: the index is committed).
#[test]
fn a_leader_may_compact_past_the_first_entry_of_its_term() {
    assert_seed_passes(4, &calm_three_nodes_compacting_every(5));
}

/// Fixed in raft-core 96be7bc ("stepping down to a newer term no longer restarts the
/// election timer"), which cites seed 291 of the swarm as it was drawn before the
/// aimed faults existed; 3666 is the same bug in today's worlds.
///
/// Seed 3666 (7 nodes, PreVote off, CheckQuorum on; n1, n2 and n4 kept down after
/// the heal, so all four live nodes must vote for the winner): n5 (i440@t8), n6
/// (i420@t6) and n7 (i420@t5) campaign again and again with logs behind n3's, which
/// denies them. But each time, n3 steps down to the new term and `become_follower`
/// resets its election timer (raft-core/src/node.rs: on_newer_term ->
/// become_follower -> reset_election_timer), although it grants nothing. Raft's
/// Figure 2 restarts the timer only on hearing the current leader or granting a vote.
/// So the stale candidates keep restarting the timer of the only electable node, n3
/// rarely times out first (3 campaigns in 3 s), and 37 terms pass without a leader:
/// no leader within 300 ticks of the heal. With the reset skipped when the vote is
/// denied, the same seed elects a leader 2 ticks after the heal. PreVote masks it
/// (stale candidates never get past the poll), so about one seed in 6,000 fails.
#[test]
fn stale_candidates_do_not_starve_the_only_electable_node() {
    assert_seed_passes(3666, &Pins::default());
}

/// Fixed in raft-core `on_stale_term`, which now refuses a stale VoteRequest with the
/// current term (as Figure 2 says) instead of ignoring it.
///
/// Seed 891 with membership changes on (3 nodes and a spare, PreVote off): n4 joins
/// as a learner, is promoted, and n3 is removed, so the committed configuration is
/// {n1, n2, n4}; n1 lags at i22 and still knows only {n1, n2, n3}. The heal keeps n2
/// down. n1 campaigns in terms 8, 9, 10... but writes only to n2 and n3, which are
/// down; n4 campaigns in terms 2, 3, 4... and n1 silently ignores each stale request.
/// n4 never learns the newer term, n1 can never win: no leader within 300 ticks of
/// the heal. With the refusal, n4 adopts n1's term and wins the next election.
#[test]
fn a_candidate_outside_a_voters_known_configuration_learns_the_newer_term() {
    assert_seed_passes(891, &membership_on());
}

/// Fixed in raft-core: a node may campaign while it votes in the configuration in
/// force at its commit index, even if a newer, uncommitted one in its log removes it
/// (thesis §4.2.2, Figure 4.6).
///
/// Seed 4300 (3 nodes and 2 spares, membership changes every ~139ms): n4 joins and
/// is promoted, so the voters are {n1, n2, n3, n4}; then the leader n2 removes
/// itself. The joint configuration {n1, n3, n4} / {n1, n2, n3, n4} commits at i119,
/// n2 appends the final {n1, n3, n4} at i123 and more entries through i125, and a
/// partition cuts it off before they reach anyone. After the heal n1 stays down. n3
/// (log through i120) needs three votes of the old half, so n2's; n2 refuses (its log
/// is longer) and never campaigns, because the newest configuration in its log says
/// it is no voter. n4 lags far behind. No leader within 300 ticks of the heal. With
/// the fix n2 campaigns, wins in {n1, n3, n4} with n3 and n4, commits its removal and
/// hands over.
#[test]
fn a_node_removed_by_an_uncommitted_configuration_may_still_lead() {
    assert_seed_passes(4300, &Pins::default());
}

/// Fixed in raft-core `Shared::compact`, which now refuses to compact where the node
/// knows no configuration in force.
///
/// Seed 6958 with membership changes on: the spare n4 is added as a learner and
/// receives the log from i1. The configuration in force before the entry that added
/// it is the initial {n1, n2, n3}, which lives in the members' `Config`, not in the
/// log, so n4's own history starts empty. At 916.795ms n4 compacts through i28,
/// before that entry, and its snapshot records a membership with no voters: the
/// membership checker reports that {n1, n2, n3} was committed in force there, and a
/// restart from that disk would fail (`Restored::validate` refuses a snapshot
/// without voters).
#[test]
fn a_joining_node_does_not_snapshot_an_unknown_configuration() {
    assert_seed_passes(6958, &membership_on());
}

fn membership_on() -> Pins {
    Pins {
        membership_changes: Some(true),
        ..Pins::default()
    }
}

/// Fixed in raft-core `on_election_tick`: a node that may not campaign (a learner)
/// now forgets a leader it has not heard from for an election timeout, as a follower
/// that campaigns does, so the lease that leader granted ends.
///
/// Seed 1969 with membership changes on (5 voters, PreVote and CheckQuorum on), once
/// removed nodes were left running after the heal: n6, a learner whose promotion
/// (the joint configuration {1,2,4,6} / {1,2,4}) had not reached it, still named n1,
/// kept down since the heal, as its leader. Its timer restarted every timeout without
/// a campaign, so `within_lease` held for the first 10 ticks of every 10-20 tick
/// cycle, and it answered `Ignored(LeaderLease)` to nearly every vote request. n2
/// needed its vote in the joint configuration's new half, and got its poll but not
/// its vote: no leader within 300 ticks of the heal.
#[test]
fn a_learner_that_lost_its_leader_answers_vote_requests() {
    assert_seed_passes(1969, &membership_on());
}

/// Fixed in raft-core: a node that may not campaign but refused a vote request
/// because its log is newer than the candidate's (candidates ask only the voters of
/// their configuration, so some configuration it has not seen counts it as one)
/// stands at its next election timeout, counting votes in its own configuration
/// (safe, as for a removed leader, thesis §4.2.2); once it leads and its term's
/// first entry commits, it hands leadership to a caught-up voter and steps down.
///
/// Seed 5641 (7 voters at the start, PreVote and CheckQuorum on, one entry per
/// message): at the heal the committed configuration is voters {4,7,9}, learner 8,
/// and n7 stays down (a minority of every configuration any node holds). n4 (last
/// entry i175@t10) holds its own uncommitted promotion of n8, the joint {4,7,8,9} /
/// {4,7,9}, so it needs n8's vote. n8 holds i174@t11, the no-op of n7's term 11,
/// sent while n7 counted it as a voter; so n8's log is the newest, and it rightly
/// refuses n4 (and n9, i173@t10, cannot win over n4's log). The one node every voter
/// would elect was n8, a learner in its own log, which never campaigned: no leader
/// within 300 ticks of the heal, and none for as long as n7 stays down. Now n8 leads
/// t12, commits with n4 and n9, and hands over to n4.
#[test]
fn a_learner_with_the_newest_entry_does_not_block_elections() {
    assert_seed_passes(5641, &membership_on());
}

/// The pinned world of seeds 965 and 766: no CheckQuorum, a partition every ~100 ms.
fn frequent_partitions_without_check_quorum() -> Pins {
    Pins {
        check_quorum: Some(false),
        partition_every_ms: Some(100),
        ..Pins::default()
    }
}

/// Fixed in raft-core `ProposalTracker`: a proposal's fate is reported only once its
/// index commits (test `a_proposal_truncated_on_its_proposer_but_kept_elsewhere_commits`
/// in raft-core/tests/replication.rs scripts the same schedule).
///
/// Seed 965 (5 nodes, PreVote and CheckQuorum off): a leader's entry reaches one
/// other node before a partition; a new leader's entry replaces it on the proposer,
/// which reported `ProposalDropped { Overwritten }` at that truncation. But the node
/// that kept the entry was elected later and committed it. The client had been told
/// the write failed, so the history had a write that both failed and took effect:
/// a linearizability violation on key k1 at 2731.667ms.
#[test]
fn a_truncated_proposal_is_not_reported_lost_while_another_node_holds_it() {
    assert_seed_passes(965, &frequent_partitions_without_check_quorum());
}

/// A checker bug, fixed in raft-sim's membership checker: the core was right.
///
/// Seed 766: the spare n4 joins as a learner, knowing no configuration (the initial
/// one lives in the members' `Config`). It receives i1..=i46 (i46 adds it), then
/// installs the leader's snapshot through i45, keeping i46. The snapshot rightly
/// records the initial {n1, n2, n3} in force at i45; the checker compared it with
/// n4's own view there, which is empty, and reported a violation. The checker now
/// compares only where the node knows a configuration, and always against the
/// committed history.
#[test]
fn a_joiner_may_install_a_snapshot_from_before_its_first_configuration_entry() {
    assert_seed_passes(766, &frequent_partitions_without_check_quorum());
}

/// One voter, the rest at the swarm's draw.
fn one_voter() -> Pins {
    Pins {
        nodes: Some(1),
        ..Pins::default()
    }
}

/// Fixed in raft-core `CandidateState`: a candidate's own vote counts only once the
/// hard state that carries it is durable (raft-core/tests/election.rs
/// `a_single_voter_never_leads_one_term_twice` scripts it).
///
/// Seeds 254 and 262 with `--nodes 1`: the single voter won its election the moment
/// it became a candidate, and appended before its term and vote were on disk. A
/// crash lost them; after the restart it led the same term again and gave the same
/// (index, term) to other entries. The log-matching checker remembers every
/// (index, term) any node ever wrote, and failed on n1 at i60@t3 (seed 254) and
/// i2@t1 (seed 262). Nothing had committed on those entries, but a learner fed
/// during the first leadership would have kept them for good.
#[test]
fn a_single_voter_does_not_lead_on_a_vote_it_may_lose() {
    assert_seed_passes(254, &one_voter());
    assert_seed_passes(262, &one_voter());
}

/// Fixed in raft-core `Outbox::persisted`: a held reply of an older term is dropped
/// when its write becomes durable (found with held messages and frequent partitions).
///
/// Seed 2277 with `--check-quorum false --partition-every-ms 100`: n3 follows n2,
/// leader of t5, and appends i20 (s7) and i21 (s8) from it; each acknowledgement
/// (`Accepted { match_index: 20 }`, `... 21`) waits in the outbox for its write.
/// Before the disk syncs s8, n4's AppendEntries of t6 arrives: n3 enters t6 (s9) and
/// replaces i20 with n4's no-op (s10), truncating i21. The next fsync covers s8..=s10
/// together, and at `Persisted { through: s10 }` the core releases the t5
/// acknowledgement of i21, which the disk no longer holds and never held durably
/// (it ends at i20@t6). n2 still leads t5 (no CheckQuorum) and may count n3 toward
/// committing i21@t5. The durability checker reported it at 1983.192ms: "acknowledged
/// i21 (the leader holds None there) while the disk holds None there and ends at
/// i20". Within one term a node truncates nothing it acknowledged (only a new
/// leader, with a new term, makes it truncate), so the core now drops held replies
/// of a term it has left.
#[test]
fn a_held_acknowledgement_is_not_released_after_a_truncation_made_it_false() {
    assert_seed_passes(2277, &frequent_partitions_without_check_quorum());
}

/// The world of seeds 346 and 722: lease reads, local readers, a partition every
/// ~200 ms over a 5 s fault phase, five clients on one key.
fn leases_and_local_readers() -> Pins {
    Pins {
        read_lease: Some(true),
        local_readers: Some(true),
        clients: Some(5),
        keys: Some(1),
        partition_every_ms: Some(200),
        fault_phase_ms: Some(5_000),
        ..Pins::default()
    }
}

/// Fixed in raft-core's handling of `VoteResponse` (scripted as
/// `pre_vote_a_grant_from_an_earlier_poll_does_not_count` in raft-core/tests/election.rs).
///
/// Seed 346: n4 polled for t2, and n3's grant of n4's earlier poll for t1, held in the
/// network, arrived with n4's current term t1; the prelude passed it and the poll
/// counted it. n4 won, n2 voted for it and entered t2, and at 602.301ms n2's answer in
/// t2 deposed n1, leader of t1 and in contact with a quorum since 148.528ms.
///
/// Seed 722 is the checker's mistake in the same world: n5's poll for t9 won with
/// grants given just before the leader's contact began, and n5 entered t9 0.2ms after
/// it; a term's rise now dates from its first poll.
#[test]
fn a_pre_vote_grant_counts_only_for_the_poll_it_answers() {
    assert_seed_passes(346, &leases_and_local_readers());
    assert_seed_passes(722, &leases_and_local_readers());
}
