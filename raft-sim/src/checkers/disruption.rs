//! No disruption (thesis §9.6 and §4.2.3): with PreVote and CheckQuorum both on, a
//! leader in contact with a quorum of its configuration is never deposed.
//!
//! "In contact" is read from the simulated network, from what it actually delivered,
//! not from which links happen to be up (a lossy link that delivers nothing is no
//! contact): node `a` is in contact with `b` at time `t` if, for the whole of
//! `[t - CONTACT_US_MIN, t]`, messages from `a` reached `b` with gaps of at most
//! [`CONTACT_GAP_US_MAX`] between them, each one fresh (in transit at most that
//! long, so that a burst of very late messages over a cut link does not count), and
//! the same from `b` to `a`. A leader is in contact with a quorum if itself and the
//! voters in contact with it both ways form a majority of its configuration (of each
//! half of a joint one).
//!
//! Why that must hold: every follower in contact hears the leader at least every
//! 50ms, so its election timer (at least 10 ticks, 90ms with the worst drift) never
//! expires and its lease never lapses: it ignores every vote request not sent for a
//! leadership transfer. The leader hears from each of them in every CheckQuorum
//! round (10 ticks), so CheckQuorum keeps it. Any candidate needs a quorum, which
//! meets the leader's contact quorum in the leader or in a follower in contact, and
//! both ignore it; PreVote keeps everyone else's terms where they are. Two windows of
//! the longest election timeout (400ms) give every message of an older election or
//! partition time to arrive or be forgotten, so the leader must also have led that
//! long.
//!
//! What legitimately ends such a leader: a crash (not a deposition at all), a
//! leadership transfer it started (it sent `TimeoutNow` in its term), its own
//! removal (it steps down once a configuration without it commits), and a newer
//! term that some node entered before the contact began. The last one is a node
//! that won a PreVote poll while its voters could not hear the leader, then lost
//! them to the leader's lease: it stays a candidate in its newer term, and the
//! leader's first message to reach it draws an answer in that term, which deposes
//! the leader (as in etcd, whose follower answers a stale leader the same way:
//! without it such a node could never rejoin). PreVote and CheckQuorum keep terms
//! from rising during the contact; they do not undo a term that rose before it.
//! Everything else is a disruption. The checker counts them in every world; the
//! world fails a run on one only when PreVote and CheckQuorum are both on.

use std::collections::BTreeMap;

use raft_core::{Membership, NodeId, Term};

use crate::time::SimTime;

/// The longest gap between two fresh deliveries on a link in contact: half the
/// shortest election timeout (10 ticks of 10ms).
pub const CONTACT_GAP_US_MAX: u64 = 50_000;

/// How long contact, and the leader's reign, must have lasted: two of the longest
/// election timeouts (20 ticks of 10ms).
pub const CONTACT_US_MIN: u64 = 400_000;

/// Fresh deliveries on one directed link without a long gap.
#[derive(Clone, Copy, Debug)]
struct Contact {
    since: SimTime,
    last: SimTime,
}

/// A leader's term as the checker follows it.
#[derive(Clone, Debug)]
struct Reign {
    term: Term,
    since: SimTime,
    /// Its configuration at its last step as leader.
    membership: Membership,
    /// It sent `TimeoutNow` in this term.
    handed_over: bool,
}

/// Follows contact on every directed link and every leader's reign.
#[derive(Clone, Debug)]
pub struct DisruptionChecker {
    nodes_count: usize,
    /// `contact[from * n + to]`, index = id - 1.
    contact: Vec<Option<Contact>>,
    reigns: BTreeMap<NodeId, Reign>,
    /// When some node first entered each term, or began a PreVote poll for it.
    term_since: BTreeMap<Term, SimTime>,
}

impl DisruptionChecker {
    /// A checker for nodes `1..=nodes_count`.
    pub fn new(nodes_count: usize) -> Self {
        DisruptionChecker {
            nodes_count,
            contact: vec![None; nodes_count * nodes_count],
            reigns: BTreeMap::new(),
            term_since: BTreeMap::new(),
        }
    }

    /// Some node is in `term` at `now` (call whenever a node's term changes).
    pub fn on_term(&mut self, term: Term, now: SimTime) {
        self.term_since.entry(term).or_insert(now);
    }

    /// Some node began a PreVote poll for `term` at `now`. A poll that wins needs a
    /// grant from a voter of the leader's contact quorum, which ignores polls while in
    /// contact: so the rise of a term won by a poll began with the poll, which may be
    /// before the contact even when the term is entered after it (seed 722 with
    /// `--read-lease true --local-readers true --clients 5 --keys 1
    /// --partition-every-ms 200 --fault-phase-ms 5000`: grants given just before the
    /// contact began arrived just after it).
    pub fn on_poll(&mut self, term: Term, now: SimTime) {
        self.on_term(term, now);
    }

    fn slot(&self, from: NodeId, to: NodeId) -> usize {
        let (f, t) = (from.0 as usize - 1, to.0 as usize - 1);
        debug_assert!(f < self.nodes_count && t < self.nodes_count);
        f * self.nodes_count + t
    }

    /// A message sent at `sent` from `from` reached `to`, running, at `now`.
    pub fn on_delivery(&mut self, from: NodeId, to: NodeId, sent: SimTime, now: SimTime) {
        if now.since_us(sent) > CONTACT_GAP_US_MAX {
            return;
        }
        let slot = self.slot(from, to);
        self.contact[slot] = match self.contact[slot] {
            Some(c) if now.since_us(c.last) <= CONTACT_GAP_US_MAX => Some(Contact {
                since: c.since,
                last: now,
            }),
            _ => Some(Contact {
                since: now,
                last: now,
            }),
        };
    }

    /// After a step of `node` as leader of `term` with `membership` in force.
    pub fn on_leader_step(
        &mut self,
        node: NodeId,
        term: Term,
        membership: &Membership,
        now: SimTime,
    ) {
        match self.reigns.get_mut(&node) {
            Some(reign) if reign.term == term => {
                if &reign.membership != membership {
                    reign.membership = membership.clone();
                }
            }
            _ => {
                let reign = Reign {
                    term,
                    since: now,
                    membership: membership.clone(),
                    handed_over: false,
                };
                self.reigns.insert(node, reign);
            }
        }
    }

    /// `node` sent `TimeoutNow` in `term`: it hands over leadership.
    pub fn on_hand_over(&mut self, node: NodeId, term: Term) {
        if let Some(reign) = self.reigns.get_mut(&node) {
            if reign.term == term {
                reign.handed_over = true;
            }
        }
    }

    /// `node` crashed: its reign ended, and not by deposition.
    pub fn on_crash(&mut self, node: NodeId) {
        self.reigns.remove(&node);
    }

    /// `node`, running, stopped leading at `now`, and is in `term`. Returns a
    /// description if it was deposed while in contact with a quorum, for none of the
    /// legitimate reasons.
    pub fn on_deposed(&mut self, node: NodeId, term: Term, now: SimTime) -> Option<String> {
        let reign = self.reigns.remove(&node)?;
        if reign.handed_over || !reign.membership.is_voter(node) {
            return None;
        }
        let since = self.stable_since(node, &reign, now)?;
        if now.since_us(since) < CONTACT_US_MIN {
            return None;
        }
        let term_risen_before = term > reign.term
            && self
                .term_since
                .get(&term)
                .is_some_and(|entered| *entered < since);
        if term_risen_before {
            return None;
        }
        let in_contact: Vec<String> = self
            .contacts_of(node, now)
            .map(|(m, _)| m.to_string())
            .collect();
        Some(format!(
            "{node}, leader of {} since {}, was deposed at {now} while in contact with [{}] (a quorum of {:?}) since {since}",
            reign.term,
            reign.since,
            in_contact.join(","),
            reign.membership,
        ))
    }

    /// The time since which some running leader has led, and been in contact with a
    /// quorum of its configuration, without a break (None if no leader is now).
    pub fn stable_leader_since(&self, now: SimTime) -> Option<SimTime> {
        self.reigns
            .iter()
            .filter_map(|(node, reign)| self.stable_since(*node, reign, now))
            .min()
    }

    /// Since when `node` has led in `reign` and been in contact with a quorum of its
    /// configuration (of each half of a joint one), if it is now.
    fn stable_since(&self, node: NodeId, reign: &Reign, now: SimTime) -> Option<SimTime> {
        let contacts: Vec<(NodeId, SimTime)> = self.contacts_of(node, now).collect();
        let half_since = |voters: &std::collections::BTreeSet<NodeId>| -> Option<SimTime> {
            let mut times: Vec<SimTime> = contacts
                .iter()
                .filter(|(m, _)| voters.contains(m))
                .map(|(_, since)| *since)
                .collect();
            times.sort_unstable();
            let needed = (voters.len() / 2 + 1).saturating_sub(usize::from(voters.contains(&node)));
            match needed {
                0 => Some(SimTime::ZERO),
                k => times.get(k - 1).copied(),
            }
        };
        let m = &reign.membership;
        let mut since = half_since(&m.voters)?.max(reign.since);
        if !m.voters_outgoing.is_empty() {
            since = since.max(half_since(&m.voters_outgoing)?);
        }
        Some(since)
    }

    /// The nodes in contact with `node` both ways now, each with the time since
    /// which it has been (the later of the two directions).
    fn contacts_of(
        &self,
        node: NodeId,
        now: SimTime,
    ) -> impl Iterator<Item = (NodeId, SimTime)> + '_ {
        (1..=self.nodes_count as u64)
            .map(NodeId)
            .filter_map(move |m| {
                if m == node {
                    return None;
                }
                let out = self.contact_now(node, m, now)?;
                let back = self.contact_now(m, node, now)?;
                Some((m, out.max(back)))
            })
    }

    /// Since when `from` has reached `to` without a long gap, if it does now.
    fn contact_now(&self, from: NodeId, to: NodeId, now: SimTime) -> Option<SimTime> {
        let c = self.contact[self.slot(from, to)]?;
        (now.since_us(c.last) <= CONTACT_GAP_US_MAX).then_some(c.since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t: u64) -> SimTime {
        SimTime(t * 1_000)
    }

    fn three() -> Membership {
        Membership::new([NodeId(1), NodeId(2), NodeId(3)])
    }

    /// Node 1 leads t1 from 0ms; links 1<->2 deliver a fresh message every 20ms
    /// through `until_ms`.
    fn talking(until_ms: u64) -> DisruptionChecker {
        let mut c = DisruptionChecker::new(3);
        c.on_leader_step(NodeId(1), Term(1), &three(), ms(0));
        for t in (0..=until_ms).step_by(20) {
            c.on_delivery(NodeId(1), NodeId(2), ms(t), ms(t).plus_us(1));
            c.on_delivery(NodeId(2), NodeId(1), ms(t), ms(t).plus_us(1));
        }
        c
    }

    #[test]
    fn a_leader_in_contact_with_a_quorum_for_long_enough_is_disrupted_when_deposed() {
        let mut c = talking(600);
        let found = c.on_deposed(NodeId(1), Term(1), ms(600).plus_us(2));
        assert!(found.is_some_and(|d| d.contains("in contact with [n2]")));
    }

    #[test]
    fn a_stable_leader_is_one_in_contact_with_a_quorum_since_it_began_to_lead() {
        let c = talking(600);
        assert_eq!(
            c.stable_leader_since(ms(600).plus_us(2)),
            Some(ms(0).plus_us(1))
        );
        assert_eq!(c.stable_leader_since(ms(800)), None, "the contact lapsed");
    }

    #[test]
    fn a_short_contact_or_a_gap_is_no_contact() {
        let mut c = talking(300);
        assert_eq!(
            c.on_deposed(NodeId(1), Term(1), ms(300).plus_us(2)),
            None,
            "too short"
        );
        let mut c = talking(600);
        // Nothing since 600ms: at 700ms the last delivery is 100ms old.
        assert_eq!(c.on_deposed(NodeId(1), Term(1), ms(700)), None, "a gap");
    }

    #[test]
    fn late_messages_are_no_contact() {
        let mut c = DisruptionChecker::new(3);
        c.on_leader_step(NodeId(1), Term(1), &three(), ms(0));
        for t in (0..=600).step_by(20) {
            c.on_delivery(NodeId(1), NodeId(2), ms(t), ms(t).plus_us(1));
            // Sent 300ms before it arrived: a very late message.
            c.on_delivery(NodeId(2), NodeId(1), SimTime(0), ms(t + 300));
        }
        assert_eq!(c.on_deposed(NodeId(1), Term(1), ms(600).plus_us(2)), None);
    }

    #[test]
    fn a_hand_over_a_removal_and_a_crash_are_legitimate() {
        let mut c = talking(600);
        c.on_hand_over(NodeId(1), Term(1));
        assert_eq!(
            c.on_deposed(NodeId(1), Term(1), ms(600).plus_us(2)),
            None,
            "hand-over"
        );
        let mut c = talking(600);
        let without_1 = Membership::new([NodeId(2), NodeId(3), NodeId(4)]);
        c.on_leader_step(NodeId(1), Term(1), &without_1, ms(590));
        assert_eq!(
            c.on_deposed(NodeId(1), Term(1), ms(600).plus_us(2)),
            None,
            "removed"
        );
        let mut c = talking(600);
        c.on_crash(NodeId(1));
        assert_eq!(
            c.on_deposed(NodeId(1), Term(1), ms(600).plus_us(2)),
            None,
            "crashed"
        );
    }

    #[test]
    fn a_term_that_rose_before_the_contact_may_depose() {
        let mut c = talking(600);
        c.on_term(Term(2), ms(0));
        assert_eq!(c.on_deposed(NodeId(1), Term(2), ms(600).plus_us(2)), None);
        let mut c = talking(600);
        c.on_term(Term(2), ms(500));
        assert!(c
            .on_deposed(NodeId(1), Term(2), ms(600).plus_us(2))
            .is_some());
    }

    #[test]
    fn a_term_whose_poll_began_before_the_contact_may_depose() {
        let mut c = talking(600);
        c.on_poll(Term(2), ms(0));
        c.on_term(Term(2), ms(500));
        assert_eq!(c.on_deposed(NodeId(1), Term(2), ms(600).plus_us(2)), None);
    }

    #[test]
    fn a_joint_configuration_needs_contact_with_both_halves() {
        let mut c = talking(600);
        let joint = Membership {
            voters: [NodeId(1), NodeId(3)].into_iter().collect(),
            voters_outgoing: [NodeId(1), NodeId(2), NodeId(3)].into_iter().collect(),
            learners: Default::default(),
        };
        c.on_leader_step(NodeId(1), Term(1), &joint, ms(590));
        // {1, 2} is a majority of {1, 2, 3} but not of {1, 3}.
        assert_eq!(c.on_deposed(NodeId(1), Term(1), ms(600).plus_us(2)), None);
    }
}
