//! Quorum arithmetic as pure functions: the value a majority has reached, vote
//! outcomes, and both for joint configurations (thesis §4.3).
//!
//! Each is tested against a simple oracle (sort everything, take the median).

use std::collections::BTreeSet;

use crate::types::{Membership, NodeId};

/// The number of voters that make a majority of `voter_count`.
pub(crate) fn majority(voter_count: usize) -> usize {
    voter_count / 2 + 1
}

/// The largest value that a majority of `voters` has reached, where `value_of` gives
/// each voter's value (a match index, an acknowledged read round).
///
/// An empty set of voters places no constraint and yields `u64::MAX`, so that the
/// absent half of a non-joint configuration never holds the other half back.
pub(crate) fn majority_value(voters: &BTreeSet<NodeId>, value_of: impl Fn(NodeId) -> u64) -> u64 {
    // Clusters are small; keep the common case off the heap.
    const STACK_VOTERS_MAX: usize = 16;
    if voters.is_empty() {
        return u64::MAX;
    }
    let count = voters.len();
    let mut stack = [0u64; STACK_VOTERS_MAX];
    let mut heap = Vec::new();
    let values: &mut [u64] = if count <= STACK_VOTERS_MAX {
        for (slot, &voter) in stack.iter_mut().zip(voters) {
            *slot = value_of(voter);
        }
        &mut stack[..count]
    } else {
        heap.extend(voters.iter().map(|&v| value_of(v)));
        &mut heap
    };
    if count <= STACK_VOTERS_MAX {
        sort_small(values);
    } else {
        values.sort_unstable();
    }
    // Ascending order: the value at `count - majority` is held by a majority.
    let result = values[count - majority(count)];
    debug_assert!(values.iter().filter(|&&v| v >= result).count() >= majority(count));
    result
}

/// Sorts a handful of values: insertion sort beats the general sort at cluster sizes.
fn sort_small(values: &mut [u64]) {
    for i in 1..values.len() {
        let mut j = i;
        while j > 0 && values[j - 1] > values[j] {
            values.swap(j - 1, j);
            j -= 1;
        }
    }
}

/// The largest value that a majority of each half of `membership` has reached.
pub(crate) fn joint_majority_value(
    membership: &Membership,
    value_of: impl Fn(NodeId) -> u64,
) -> u64 {
    let incoming = majority_value(&membership.voters, &value_of);
    let outgoing = majority_value(&membership.voters_outgoing, &value_of);
    incoming.min(outgoing)
}

/// Where a vote stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VoteResult {
    /// A majority granted.
    Won,
    /// Enough voters refused that a majority can no longer grant.
    Lost,
    /// Neither yet.
    Pending,
}

/// The outcome of a vote among `voters`, where `vote_of` tells each voter's answer so
/// far (`None`: not yet answered). An empty set of voters wins.
pub(crate) fn vote_result(
    voters: &BTreeSet<NodeId>,
    vote_of: impl Fn(NodeId) -> Option<bool>,
) -> VoteResult {
    if voters.is_empty() {
        return VoteResult::Won;
    }
    let needed = majority(voters.len());
    let mut granted = 0;
    let mut refused = 0;
    for &voter in voters {
        match vote_of(voter) {
            Some(true) => granted += 1,
            Some(false) => refused += 1,
            None => {}
        }
    }
    if granted >= needed {
        VoteResult::Won
    } else if voters.len() - refused < needed {
        VoteResult::Lost
    } else {
        VoteResult::Pending
    }
}

/// The outcome of a vote in both halves of `membership`: won only when both are won,
/// lost as soon as either is lost.
pub(crate) fn joint_vote_result(
    membership: &Membership,
    vote_of: impl Fn(NodeId) -> Option<bool>,
) -> VoteResult {
    let incoming = vote_result(&membership.voters, &vote_of);
    let outgoing = vote_result(&membership.voters_outgoing, &vote_of);
    match (incoming, outgoing) {
        (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
        (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
        _ => VoteResult::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// The oracle: the largest value v such that at least a majority has >= v.
    fn oracle_majority_value(values: &[u64]) -> u64 {
        let mut candidates: Vec<u64> = values.to_vec();
        candidates.sort_unstable();
        candidates.dedup();
        let needed = values.len() / 2 + 1;
        candidates
            .into_iter()
            .rev()
            .find(|&v| values.iter().filter(|&&x| x >= v).count() >= needed)
            .unwrap_or(0)
    }

    fn voters_with(values: &[u64]) -> (BTreeSet<NodeId>, BTreeMap<NodeId, u64>) {
        let map: BTreeMap<NodeId, u64> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| (NodeId(i as u64 + 1), v))
            .collect();
        (map.keys().copied().collect(), map)
    }

    #[test]
    fn three_voters_commit_the_median() {
        let (voters, map) = voters_with(&[5, 9, 7]);
        assert_eq!(majority_value(&voters, |v| map[&v]), 7);
    }

    #[test]
    fn empty_half_places_no_constraint() {
        assert_eq!(majority_value(&BTreeSet::new(), |_| 3), u64::MAX);
    }

    #[test]
    fn vote_lost_once_majority_impossible() {
        let (voters, _) = voters_with(&[0, 0, 0]);
        let answers = [Some(true), Some(false), Some(false)];
        let result = vote_result(&voters, |v| answers[v.0 as usize - 1]);
        assert_eq!(result, VoteResult::Lost);
    }

    proptest! {
        #[test]
        fn majority_value_matches_oracle(values in proptest::collection::vec(0u64..20, 1..24)) {
            let (voters, map) = voters_with(&values);
            prop_assert_eq!(majority_value(&voters, |v| map[&v]), oracle_majority_value(&values));
        }

        #[test]
        fn joint_value_is_min_of_halves(
            a in proptest::collection::vec(0u64..20, 1..8),
            b in proptest::collection::vec(0u64..20, 0..8),
        ) {
            // Voters of the two halves may overlap; give each node one value.
            let mut values = BTreeMap::new();
            let mut membership = Membership::default();
            for (i, &v) in a.iter().enumerate() {
                values.insert(NodeId(i as u64 + 1), v);
                membership.voters.insert(NodeId(i as u64 + 1));
            }
            for (i, &v) in b.iter().enumerate() {
                let id = NodeId(i as u64 + 4);
                values.entry(id).or_insert(v);
                membership.voters_outgoing.insert(id);
            }
            let of = |ids: &BTreeSet<NodeId>| -> Vec<u64> { ids.iter().map(|id| values[id]).collect() };
            let expected_in = oracle_majority_value(&of(&membership.voters));
            let expected_out = if membership.voters_outgoing.is_empty() {
                u64::MAX
            } else {
                oracle_majority_value(&of(&membership.voters_outgoing))
            };
            prop_assert_eq!(
                joint_majority_value(&membership, |id| values[&id]),
                expected_in.min(expected_out)
            );
        }

        #[test]
        fn vote_result_matches_counting(answers in proptest::collection::vec(proptest::option::of(any::<bool>()), 1..12)) {
            let (voters, _) = voters_with(&vec![0; answers.len()]);
            let result = vote_result(&voters, |v| answers[v.0 as usize - 1]);
            let n = answers.len();
            let granted = answers.iter().filter(|a| **a == Some(true)).count();
            let undecided = answers.iter().filter(|a| a.is_none()).count();
            let expected = if granted > n / 2 {
                VoteResult::Won
            } else if granted + undecided > n / 2 {
                VoteResult::Pending
            } else {
                VoteResult::Lost
            };
            prop_assert_eq!(result, expected);
        }
    }
}
