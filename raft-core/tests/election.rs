//! Terms (Raft §5.1), leader election (§5.2), the election restriction (§5.4.1),
//! PreVote (thesis §9.6), CheckQuorum and leader stickiness (thesis §6.2, §4.2.3).

mod support;

use raft_core::{
    Action, AppendOutcome, Event, IgnoreReason, LogIndex, Message, MessageBody, NodeId, RoleKind,
    Term,
};
use support::*;

fn vote_request(
    from: u64,
    to: u64,
    term: u64,
    last_index: u64,
    last_term: u64,
    pre_vote: bool,
) -> Event {
    Event::Message(Message {
        from: NodeId(from),
        to: NodeId(to),
        term: Term(term),
        body: MessageBody::VoteRequest {
            pre_vote,
            last_log_index: LogIndex(last_index),
            last_log_term: Term(last_term),
            leadership_transfer: false,
        },
    })
}

fn granted_votes(c: &Cluster, from: u64) -> Vec<(u64, bool)> {
    c.in_flight
        .iter()
        .filter(|m| m.from == NodeId(from))
        .filter_map(|m| match m.body {
            MessageBody::VoteResponse { granted, .. } => Some((m.to.0, granted)),
            _ => None,
        })
        .collect()
}

// ---- §5.1 terms ----

#[test]
fn s5_1_newer_term_makes_a_leader_step_down() {
    let mut c = Cluster::new(3);
    c.elect(1);
    let term = c.node(1).term();
    let newer = Message {
        from: NodeId(2),
        to: NodeId(1),
        term: Term(term.0 + 5),
        body: MessageBody::AppendResponse(AppendOutcome::Accepted {
            match_index: LogIndex(0),
        }),
    };
    c.step(1, Event::Message(newer));
    assert_eq!(c.node(1).role(), RoleKind::Follower);
    assert_eq!(c.node(1).term(), Term(term.0 + 5));
    assert_eq!(c.node(1).voted_for(), None);
}

#[test]
fn s5_1_stale_term_message_is_ignored() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.clear_outputs(2);
    let before = c.node(2).hard_state();
    c.step(2, vote_request(3, 2, 0, 99, 0, false));
    assert_eq!(c.node(2).hard_state(), before);
    assert!(c
        .outputs(2)
        .contains(&Action::Ignored(IgnoreReason::StaleTerm)));
}

/// Found by raft-sim (seed 891 with membership changes on, see
/// raft-sim/tests/core_regressions.rs): a voter that never writes to a candidate (the
/// candidate is missing from the configuration the voter knows) must still tell it
/// the newer term, or the candidate campaigns forever in terms the voter ignores.
#[test]
fn s5_1_a_stale_candidate_is_refused_with_the_current_term() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.clear_outputs(2);
    let term = c.node(2).term();
    c.step(2, vote_request(3, 2, 0, 99, 0, false));
    let refusal = c.in_flight.iter().any(|m| {
        m.from == NodeId(2)
            && m.to == NodeId(3)
            && m.term == term
            && m.body
                == MessageBody::VoteResponse {
                    pre_vote: false,
                    granted: false,
                }
    });
    assert!(refusal, "{:?}", c.in_flight);
}

#[test]
fn s5_1_vote_is_durable_before_it_is_sent() {
    let mut c = Cluster::new(3);
    c.auto_persist = false;
    c.step(2, vote_request(1, 2, 1, 0, 0, false));
    assert!(
        granted_votes(&c, 2).is_empty(),
        "the grant waits for the vote to be durable"
    );
    c.persist(2);
    assert_eq!(granted_votes(&c, 2), vec![(1, true)]);
    assert_eq!(
        c.nodes[&NodeId(2)].disk.hard_state.voted_for,
        Some(NodeId(1))
    );
}

// ---- §5.2 leader election ----

#[test]
fn s5_2_follower_times_out_and_is_elected() {
    let mut c = Cluster::new(3);
    c.elect(1);
    assert_eq!(c.node(1).term(), Term(1));
    for n in 2..=3 {
        assert_eq!(c.node(n).leader(), Some(NodeId(1)));
        assert_eq!(c.node(n).role(), RoleKind::Follower);
    }
}

#[test]
fn s5_2_a_node_votes_at_most_once_per_term() {
    let mut c = Cluster::new(3);
    c.step(3, vote_request(1, 3, 5, 0, 0, false));
    c.step(3, vote_request(2, 3, 5, 0, 0, false));
    assert_eq!(granted_votes(&c, 3), vec![(1, true), (2, false)]);
    // Asking again is answered the same way (a lost answer must not lose the vote).
    c.step(3, vote_request(1, 3, 5, 0, 0, false));
    assert_eq!(granted_votes(&c, 3).last(), Some(&(1, true)));
}

#[test]
fn s5_2_candidate_that_hears_a_leader_of_its_term_follows_it() {
    let mut c = Cluster::with_configs(configs_without_prevote(3));
    c.isolate(2);
    c.campaign(2);
    assert_eq!(
        (c.node(2).role(), c.node(2).term()),
        (RoleKind::Candidate, Term(1))
    );
    // Node 1 wins term 1 with node 3's vote while node 2 is cut off.
    c.elect(1);
    assert_eq!(c.node(1).term(), Term(1));
    c.heal();
    c.tick_all();
    c.tick_all();
    assert_eq!(c.node(2).role(), RoleKind::Follower);
    assert_eq!(c.node(2).leader(), Some(NodeId(1)));
}

#[test]
fn s5_2_candidate_without_majority_campaigns_again_in_a_new_term() {
    let mut c = Cluster::with_configs(configs_without_prevote(3));
    c.isolate(1);
    c.campaign(1);
    assert_eq!(c.node(1).role(), RoleKind::Candidate);
    assert_eq!(c.node(1).term(), Term(1));
    c.campaign_again(1);
    assert_eq!(c.node(1).role(), RoleKind::Candidate);
    assert_eq!(c.node(1).term(), Term(2));
}

#[test]
fn s5_2_split_votes_resolve_through_randomized_timeouts() {
    let mut c = Cluster::new(5);
    for _ in 0..200 {
        c.tick_all();
        if c.leader().is_some() {
            break;
        }
    }
    let leader = c.leader().expect("randomized timeouts elect a leader");
    let term = c.node(leader).term();
    for n in 1..=5 {
        assert_eq!(c.node(n).leader(), Some(NodeId(leader)), "node {n}");
        assert_eq!(c.node(n).term(), term);
    }
}

#[test]
fn s5_2_a_denied_vote_request_does_not_restart_the_election_timer() {
    // How many ticks node 3 waits before campaigning, undisturbed.
    let ticks_to_campaign = {
        let mut c = Cluster::new(3);
        (1..=100).find(|_| {
            c.tick(3);
            c.node(3).role() != RoleKind::Follower
        })
    }
    .unwrap();
    // The same node, disturbed just before its timeout by a stale candidate whose
    // newer term it adopts but whose vote it denies.
    let mut c = Cluster::with_logs(&[(&[], 0), (&[], 0), (&[1], 1)]);
    for _ in 0..ticks_to_campaign - 1 {
        c.tick(3);
    }
    c.step(3, vote_request(1, 3, 5, 0, 0, false));
    assert_eq!(granted_votes(&c, 3), vec![(1, false)]);
    c.tick(3);
    assert_ne!(
        c.node(3).role(),
        RoleKind::Follower,
        "the timer kept running"
    );
}

#[test]
fn s5_2_a_new_leader_announces_its_role() {
    let mut c = Cluster::new(3);
    c.elect(1);
    let term = c.node(1).term();
    let roles: Vec<(RoleKind, Term)> = c
        .outputs(1)
        .iter()
        .filter_map(|a| match a {
            Action::RoleChanged { role, term } => Some((*role, *term)),
            _ => None,
        })
        .collect();
    assert_eq!(roles.last(), Some(&(RoleKind::Leader, term)), "{roles:?}");
    assert_eq!(c.leaders.get(&term), Some(&NodeId(1)), "the harness saw it");
}

// ---- §5.4.1 election restriction ----

#[test]
fn s5_4_1_vote_denied_to_a_candidate_with_an_older_last_term() {
    let mut c = Cluster::with_logs(&[(&[1, 1], 2), (&[1, 2], 2), (&[1, 2], 2)]);
    c.step(2, vote_request(1, 2, 3, 5, 1, false));
    assert_eq!(
        granted_votes(&c, 2),
        vec![(1, false)],
        "longer log but older last term"
    );
}

#[test]
fn s5_4_1_vote_denied_to_a_shorter_log_of_the_same_last_term() {
    let mut c = Cluster::with_logs(&[(&[1, 2], 2), (&[1, 2, 2], 2), (&[1], 2)]);
    c.step(2, vote_request(1, 2, 3, 2, 2, false));
    c.step(3, vote_request(1, 3, 3, 2, 2, false));
    assert_eq!(granted_votes(&c, 2), vec![(1, false)]);
    assert_eq!(
        granted_votes(&c, 3),
        vec![(1, true)],
        "an up-to-date log gets the vote"
    );
}

#[test]
fn s5_4_1_only_an_up_to_date_node_can_win() {
    // Node 1 has the committed entry of term 2; nodes 2 and 3 stopped at term 1.
    let mut c = Cluster::with_logs(&[(&[1, 2], 2), (&[1], 2), (&[1, 2], 2)]);
    c.isolate(3);
    c.campaign(2);
    assert_ne!(
        c.node(2).role(),
        RoleKind::Leader,
        "node 1 refuses the stale log"
    );
    c.campaign(1);
    assert_eq!(c.node(1).role(), RoleKind::Leader);
}

// ---- PreVote ----

#[test]
fn prevote_keeps_an_isolated_node_from_inflating_its_term() {
    let mut c = Cluster::new(3);
    c.elect(1);
    let term = c.node(1).term();
    c.isolate(3);
    for _ in 0..100 {
        c.tick(3);
        c.deliver_all();
    }
    assert_eq!(
        c.node(3).term(),
        term,
        "polls fail without changing the term"
    );
    c.heal();
    for _ in 0..5 {
        c.tick_all();
    }
    assert_eq!(
        c.node(1).role(),
        RoleKind::Leader,
        "the rejoining node does not disrupt"
    );
    assert_eq!(c.node(1).term(), term);
}

#[test]
fn prevote_changes_no_term_on_either_side() {
    let mut c = Cluster::new(3);
    c.step(2, vote_request(1, 2, 7, 0, 0, true));
    assert_eq!(granted_votes(&c, 2), vec![(1, true)]);
    assert_eq!(c.node(2).term(), Term(0));
    assert_eq!(c.node(2).voted_for(), None);
}

// ---- CheckQuorum and leader stickiness ----

#[test]
fn check_quorum_leader_without_a_quorum_steps_down() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.isolate(1);
    let timeout = c.node(1).config().election_timeout_ticks_min;
    for _ in 0..2 * timeout {
        c.tick(1);
    }
    assert_eq!(c.node(1).role(), RoleKind::Follower);
    assert_eq!(c.node(1).leader(), None);
}

#[test]
fn check_quorum_leader_with_a_quorum_stays() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.isolate(3);
    for _ in 0..100 {
        c.tick(1);
        c.tick(2);
        c.deliver_all();
    }
    assert_eq!(c.node(1).role(), RoleKind::Leader);
}

#[test]
fn stickiness_follower_with_a_live_leader_ignores_vote_requests() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.clear_outputs(2);
    let term = c.node(2).term();
    c.step(2, vote_request(3, 2, term.0 + 1, 99, term.0, false));
    assert!(c
        .outputs(2)
        .contains(&Action::Ignored(IgnoreReason::LeaderLease)));
    assert_eq!(c.node(2).term(), term, "no term change");
    assert_eq!(c.node(2).leader(), Some(NodeId(1)));
}

#[test]
fn stickiness_ends_when_the_leader_goes_quiet() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.crash(1);
    let timeout_max = c.node(2).config().election_timeout_ticks_max;
    for _ in 0..2 * timeout_max {
        c.tick_all();
    }
    let leader = c.leader().expect("a new leader once the old one is silent");
    assert_ne!(leader, 1);
}

// ---- Campaign (an election on request) ----

#[test]
fn campaign_on_request_elects_the_node_before_any_timeout() {
    let mut c = Cluster::new(3);
    c.step(2, Event::Campaign);
    c.deliver_all();
    assert_eq!(c.node(2).role(), RoleKind::Leader, "no tick was needed");
    assert_eq!(
        c.node(2).term(),
        Term(1),
        "PreVote first, then one real term"
    );
    assert_eq!(c.node(1).leader(), Some(NodeId(2)));
}

#[test]
fn campaign_on_request_goes_through_prevote_and_cannot_unseat_a_live_leader() {
    let mut c = Cluster::new(3);
    c.elect(1);
    let term = c.node(1).term();
    c.step(3, Event::Campaign);
    c.deliver_all();
    assert_eq!(c.node(1).role(), RoleKind::Leader);
    assert_eq!(c.node(3).term(), term, "the poll failed without a new term");
}

#[test]
fn campaign_on_request_is_refused_by_a_leader_and_a_learner() {
    let mut c = Cluster::with_configs(vec![
        with_learner_3(config(1, &[1, 2])),
        with_learner_3(config(2, &[1, 2])),
        with_learner_3(config(3, &[1, 2])),
    ]);
    c.elect(1);
    c.clear_outputs(1);
    c.step(1, Event::Campaign);
    assert_eq!(
        c.outputs(1),
        vec![Action::Ignored(IgnoreReason::AlreadyLeader)]
    );
    c.clear_outputs(3);
    c.step(3, Event::Campaign);
    assert_eq!(c.outputs(3), vec![Action::Ignored(IgnoreReason::NotVoter)]);
    assert_eq!(c.node(3).role(), RoleKind::Follower);
}

// ---- harness helpers local to this file ----

fn with_learner_3(config: raft_core::Config) -> raft_core::Config {
    raft_core::Config {
        initial_learners: [NodeId(3)].into(),
        ..config
    }
}

fn configs_without_prevote(n: u64) -> Vec<raft_core::Config> {
    let voters: Vec<u64> = (1..=n).collect();
    voters
        .iter()
        .map(|&i| {
            let mut config = config(i, &voters);
            config.pre_vote = false;
            config
        })
        .collect()
}

trait CampaignAgain {
    fn campaign_again(&mut self, n: u64);
}

impl CampaignAgain for Cluster {
    /// Ticks a candidate until its election times out once more.
    fn campaign_again(&mut self, n: u64) {
        let term = self.node(n).term();
        let timeout_max = self.node(n).config().election_timeout_ticks_max;
        for _ in 0..timeout_max {
            self.tick(n);
            if self.node(n).term() != term {
                break;
            }
        }
        self.deliver_all();
    }
}

// ---- a candidate's own vote counts once durable ----

/// A single voter with a learner: the voter's elections need no one else's vote.
fn single_voter_with_a_learner() -> Cluster {
    let configs = [1, 2].map(|i| {
        let mut config = config(i, &[1]);
        config.initial_learners.insert(NodeId(2));
        config
    });
    Cluster::with_configs(configs.to_vec())
}

#[test]
fn s5_2_a_single_voter_leads_only_once_its_vote_is_durable() {
    let mut c = single_voter_with_a_learner();
    c.auto_persist = false;
    c.step(1, Event::Campaign);
    assert_eq!(c.node(1).role(), RoleKind::Candidate);
    assert_eq!(c.node(1).last_index(), LogIndex(0), "nothing appended yet");
    c.persist(1);
    assert_eq!(c.node(1).role(), RoleKind::Leader);
    assert_eq!(c.node(1).last_index(), LogIndex(1), "the term's no-op");
}

/// raft-sim `--nodes 1`, seeds 254 and 262: a single voter that led a term on a vote
/// it lost in a crash led the same term again after the restart, and gave the same
/// (index, term) to another entry; its learner kept the first one.
#[test]
fn a_single_voter_never_leads_one_term_twice() {
    let mut c = single_voter_with_a_learner();
    c.elect(1);
    c.propose(1, 1, "a");
    c.tick_all();
    // A restart that loses nothing, then a campaign whose vote never reaches the disk.
    c.crash(1);
    c.restart(1);
    c.auto_persist = false;
    c.step(1, Event::Campaign);
    c.propose(1, 2, "lost");
    for _ in 0..3 {
        c.persist(2);
        c.deliver_all();
    }
    c.crash(1);
    c.restart(1);
    c.auto_persist = true;
    c.step(1, Event::Campaign);
    c.deliver_all();
    assert_eq!(c.node(1).role(), RoleKind::Leader);
    c.propose(1, 3, "kept");
    for _ in 0..3 {
        c.tick_all();
    }
    assert_eq!(c.applied_commands(1), ["a", "kept"]);
    assert_eq!(c.applied_commands(2), ["a", "kept"]);
}

/// raft-sim seed 346 (`--read-lease true --local-readers true --clients 5 --keys 1
/// --partition-every-ms 200 --fault-phase-ms 5000`): a PreVote grant is a vote for the
/// term it was asked about. One held since an earlier poll must not count toward a
/// poll for a later term; it let a node that could not win start a real election,
/// whose vote request raised a follower's term and so deposed a leader that was in
/// contact with a quorum.
#[test]
fn pre_vote_a_grant_from_an_earlier_poll_does_not_count() {
    let mut c = Cluster::new(3);
    // Node 1 polls for term 1; node 2's grant (in term 1) is held back.
    c.step(1, Event::Campaign);
    assert_eq!(c.node(1).role(), RoleKind::PreCandidate);
    let to_2 = c.take_messages(|m| m.to == NodeId(2));
    c.in_flight.clear();
    for message in to_2 {
        c.deliver(message);
    }
    let stale_grant = c.take_messages(|m| m.from == NodeId(2));
    assert!(matches!(
        stale_grant[..],
        [Message {
            term: Term(1),
            body: MessageBody::VoteResponse {
                pre_vote: true,
                granted: true
            },
            ..
        }]
    ));
    c.in_flight.clear();
    // Node 3 leads term 1; node 1 follows it, then polls for term 2.
    c.elect(3);
    assert_eq!(c.node(1).term(), Term(1));
    c.isolate(1);
    c.step(1, Event::Campaign);
    assert_eq!(c.node(1).role(), RoleKind::PreCandidate);
    c.in_flight.clear();
    for message in stale_grant {
        c.step(1, Event::Message(message));
    }
    assert_eq!(
        c.node(1).role(),
        RoleKind::PreCandidate,
        "the grant was for term 1, not the term 2 it polls for"
    );
}
