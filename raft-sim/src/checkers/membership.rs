//! Membership changes stay safe (Raft thesis §4): every node agrees on the
//! configuration committed at each index, a node's active configuration is the newest
//! one in its log (thesis §4.1: a configuration takes effect when its entry is
//! appended, not when it commits), a leader never holds more than one uncommitted
//! configuration, and a leader appends no configuration before an entry of its own
//! term has committed (the fix of Ongaro's 2015 single-server-change bug).
//!
//! The checker keeps its own copy of where each node's log holds configuration
//! entries, fed by the persistence actions (appends, snapshots), so that it checks
//! the core's bookkeeping instead of trusting it; each observation costs what it
//! changed, never the log's length.

use std::collections::BTreeMap;

use raft_core::{Entry, EntryPayload, LogIndex, Membership, NodeId, Term};

use super::{Violation, ViolationKind};

/// One node's configurations as its log holds them.
#[derive(Clone, Debug, Default)]
struct NodeConfigs {
    /// The configuration in force before the first entry of `in_log`: the snapshot's,
    /// or the node's initial one.
    base: Membership,
    /// The configuration entries of the in-memory log, by index.
    in_log: BTreeMap<LogIndex, Membership>,
    /// The commit index last observed in this lifetime.
    commit_index: LogIndex,
}

impl NodeConfigs {
    fn active(&self) -> &Membership {
        self.in_log.values().next_back().unwrap_or(&self.base)
    }
}

/// Every node's configurations and the one committed history.
#[derive(Clone, Debug)]
pub struct MembershipChecker {
    nodes: Vec<NodeConfigs>,
    /// The configuration the cluster started with.
    initial: Membership,
    /// Configuration entries known committed, by index.
    committed: BTreeMap<LogIndex, Membership>,
}

fn membership_of(entry: &Entry) -> Option<&Membership> {
    match &entry.payload {
        EntryPayload::Membership(m) => Some(m),
        _ => None,
    }
}

impl MembershipChecker {
    /// A checker for nodes `1..=nodes_count` of a cluster that starts with `initial`.
    pub fn new(nodes_count: usize, initial: Membership) -> Self {
        MembershipChecker {
            nodes: vec![NodeConfigs::default(); nodes_count],
            initial,
            committed: BTreeMap::new(),
        }
    }

    fn node(&mut self, node: NodeId) -> &mut NodeConfigs {
        &mut self.nodes[node.0 as usize - 1]
    }

    /// The newest configuration known committed, with the index of its entry (0 for
    /// the initial configuration).
    pub fn committed_latest(&self) -> (LogIndex, &Membership) {
        self.committed
            .iter()
            .next_back()
            .map_or((LogIndex(0), &self.initial), |(i, m)| (*i, m))
    }

    /// A node (re)started with `base` in force before `entries` (its restored log)
    /// and `commit_index` restored.
    pub fn on_restart<'a>(
        &mut self,
        node: NodeId,
        base: Membership,
        entries: impl IntoIterator<Item = &'a Entry>,
        commit_index: LogIndex,
    ) {
        let in_log = entries
            .into_iter()
            .filter_map(|e| membership_of(e).map(|m| (e.index, m.clone())))
            .collect();
        *self.node(node) = NodeConfigs {
            base,
            in_log,
            commit_index,
        };
    }

    /// `node` appended `entries` (replacing any suffix from the first one's index).
    /// If it leads `leader_term`, a configuration entry of that term needs an entry of
    /// the term committed first: `commit_term` is the term at its commit index.
    pub fn on_append(
        &mut self,
        node: NodeId,
        entries: &[Entry],
        leader_term: Option<Term>,
        commit_index: LogIndex,
        commit_term: Option<Term>,
    ) -> Result<(), Violation> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let configs = self.node(node);
        configs.in_log.split_off(&first.index);
        for entry in entries {
            if let Some(m) = membership_of(entry) {
                let previous = configs.in_log.values().next_back().unwrap_or(&configs.base);
                if let Err(why) = check_transition(previous, m) {
                    return Err(Violation::at_node(
                        ViolationKind::Membership,
                        node,
                        format!("the configuration at {} {why}", entry.index),
                    ));
                }
                configs.in_log.insert(entry.index, m.clone());
                if leader_term == Some(entry.term) && commit_term != Some(entry.term) {
                    return Err(Violation::at_node(
                        ViolationKind::Membership,
                        node,
                        format!(
                            "the leader of {} appended a configuration at {} before committing an entry of its term (commit {commit_index})",
                            entry.term, entry.index
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// `node` persisted a snapshot through `last_index` holding `membership`; with
    /// `discard_log` it replaced the whole log (an install from the leader).
    pub fn on_snapshot(
        &mut self,
        node: NodeId,
        last_index: LogIndex,
        membership: &Membership,
        discard_log: bool,
    ) -> Result<(), Violation> {
        let (_, committed) = self.committed_at(last_index);
        let committed = committed.clone();
        let configs = self.node(node);
        if discard_log {
            configs.in_log.clear();
        } else {
            let in_force = configs
                .in_log
                .range(..=last_index)
                .next_back()
                .map_or(&configs.base, |(_, m)| m);
            // A node that joined a running cluster knows no configuration before the
            // first configuration entry it holds (the initial one lives in each
            // member's Config, not in the log; no real configuration is without
            // voters). A snapshot it installs from the leader there, keeping its
            // suffix, brings the configuration it lacked (seed 766 with
            // `--check-quorum false --partition-every-ms 100`): its own log has
            // nothing to say, and the committed history below is the check.
            let known = !in_force.voters.is_empty();
            if known && in_force != membership {
                return Err(Violation::at_node(
                    ViolationKind::Membership,
                    node,
                    format!("a snapshot through {last_index} records {membership:?}, but the log has {in_force:?} in force there"),
                ));
            }
            configs.in_log = configs.in_log.split_off(&last_index.next());
        }
        configs.base = membership.clone();
        if *membership != committed {
            return Err(Violation::at_node(
                ViolationKind::Membership,
                node,
                format!("a snapshot through {last_index} records {membership:?}, but {committed:?} was committed in force there"),
            ));
        }
        Ok(())
    }

    fn committed_at(&self, index: LogIndex) -> (LogIndex, &Membership) {
        self.committed
            .range(..=index)
            .next_back()
            .map_or((LogIndex(0), &self.initial), |(i, m)| (*i, m))
    }

    /// After a step: `node`'s commit index is `commit_index`; every configuration
    /// entry it holds up to there is committed and must agree with what other nodes
    /// committed at the same index.
    pub fn observe_commit(
        &mut self,
        node: NodeId,
        commit_index: LogIndex,
    ) -> Result<(), Violation> {
        let configs = &mut self.nodes[node.0 as usize - 1];
        let old = std::mem::replace(&mut configs.commit_index, commit_index);
        if commit_index <= old {
            return Ok(());
        }
        for (index, m) in configs.in_log.range(old.next()..=commit_index) {
            match self.committed.get(index) {
                Some(known) if known != m => {
                    return Err(Violation::at_node(
                        ViolationKind::Membership,
                        node,
                        format!("committed {m:?} at {index}, but {known:?} was committed there"),
                    ));
                }
                Some(_) => {}
                None => {
                    self.committed.insert(*index, m.clone());
                }
            }
        }
        Ok(())
    }

    /// After a step: the core's active configuration must be the newest in the log
    /// the checker saw it build; a leader holds at most one configuration past
    /// `committed_index` (the highest index known committed anywhere).
    pub fn check_node(
        &self,
        node: NodeId,
        active: &Membership,
        leads: bool,
        committed_index: LogIndex,
    ) -> Result<(), Violation> {
        let configs = &self.nodes[node.0 as usize - 1];
        if configs.active() != active {
            return Err(Violation::at_node(
                ViolationKind::Membership,
                node,
                format!(
                    "the active configuration is {active:?}, but the newest in its log is {:?}",
                    configs.active()
                ),
            ));
        }
        if leads {
            let uncommitted = configs.in_log.range(committed_index.next()..).count();
            if uncommitted > 1 {
                return Err(Violation::at_node(
                    ViolationKind::Membership,
                    node,
                    format!("the leader holds {uncommitted} uncommitted configurations past {committed_index}"),
                ));
            }
        }
        Ok(())
    }
}

/// Whether a configuration may follow `previous` in a log (thesis §4.3): voters
/// change one server at a time, or through a joint configuration whose outgoing half
/// is the previous voters, which is left for its incoming half. A node that joined
/// empty knows no configuration before the first it receives (no voters): anything
/// may follow that.
fn check_transition(previous: &Membership, next: &Membership) -> Result<(), String> {
    if previous.voters.is_empty() {
        return Ok(());
    }
    match (previous.is_joint(), next.is_joint()) {
        (false, false) => {
            let changed = previous.voters.symmetric_difference(&next.voters).count();
            if changed > 1 {
                return Err(format!(
                    "changes {changed} voters at once without a joint configuration ({:?} to {:?})",
                    previous.voters, next.voters
                ));
            }
        }
        (false, true) if next.voters_outgoing != previous.voters => {
            return Err(format!(
                "enters a joint configuration whose outgoing half {:?} is not the voters {:?}",
                next.voters_outgoing, previous.voters
            ));
        }
        (true, false) if next.voters != previous.voters => {
            return Err(format!(
                "leaves the joint configuration for {:?}, not its incoming half {:?}",
                next.voters, previous.voters
            ));
        }
        (true, true) => {
            return Err(format!(
                "follows the joint configuration {previous:?} with another, {next:?}"
            ));
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(index: u64, term: u64, voters: &[u64]) -> Entry {
        Entry {
            term: Term(term),
            index: LogIndex(index),
            payload: EntryPayload::Membership(Box::new(members(voters))),
        }
    }

    fn members(voters: &[u64]) -> Membership {
        Membership::new(voters.iter().map(|v| NodeId(*v)))
    }

    fn noop(index: u64, term: u64) -> Entry {
        Entry {
            term: Term(term),
            index: LogIndex(index),
            payload: EntryPayload::Noop,
        }
    }

    fn checker() -> MembershipChecker {
        MembershipChecker::new(3, members(&[1, 2, 3]))
    }

    #[test]
    fn the_active_configuration_follows_appends_and_truncations() {
        let mut c = checker();
        let (n1, initial) = (NodeId(1), members(&[1, 2, 3]));
        c.on_restart(n1, initial.clone(), [], LogIndex(0));
        let entries = [noop(1, 1), config(2, 1, &[1, 2])];
        c.on_append(n1, &entries, None, LogIndex(0), None).unwrap();
        assert!(c
            .check_node(n1, &members(&[1, 2]), false, LogIndex(0))
            .is_ok());
        assert!(c.check_node(n1, &initial, false, LogIndex(0)).is_err());
        c.on_append(n1, &[noop(2, 2)], None, LogIndex(0), None)
            .unwrap();
        assert!(
            c.check_node(n1, &initial, false, LogIndex(0)).is_ok(),
            "truncation reverts"
        );
    }

    #[test]
    fn two_configurations_committed_at_one_index_are_caught() {
        let mut c = checker();
        let initial = members(&[1, 2, 3]);
        for n in [NodeId(1), NodeId(2)] {
            c.on_restart(n, initial.clone(), [], LogIndex(0));
        }
        c.on_append(NodeId(1), &[config(1, 1, &[1, 2])], None, LogIndex(0), None)
            .unwrap();
        c.on_append(NodeId(2), &[config(1, 2, &[2, 3])], None, LogIndex(0), None)
            .unwrap();
        c.observe_commit(NodeId(1), LogIndex(1)).unwrap();
        assert_eq!(c.committed_latest().1, &members(&[1, 2]));
        let err = c.observe_commit(NodeId(2), LogIndex(1)).unwrap_err();
        assert_eq!(err.kind, ViolationKind::Membership);
    }

    #[test]
    fn a_leader_may_not_append_a_configuration_before_committing_its_term() {
        let mut c = checker();
        let n1 = NodeId(1);
        c.on_restart(n1, members(&[1, 2, 3]), [], LogIndex(0));
        let early = c.on_append(
            n1,
            &[noop(1, 2), config(2, 2, &[1, 2])],
            Some(Term(2)),
            LogIndex(0),
            Some(Term(0)),
        );
        assert!(early.is_err());
        let late = c.on_append(
            n1,
            &[config(2, 2, &[1, 2])],
            Some(Term(2)),
            LogIndex(1),
            Some(Term(2)),
        );
        assert!(late.is_ok());
    }

    #[test]
    fn a_leader_with_two_uncommitted_configurations_is_caught() {
        let mut c = checker();
        let n1 = NodeId(1);
        c.on_restart(n1, members(&[1, 2, 3]), [], LogIndex(0));
        let entries = [config(1, 1, &[1, 2]), config(2, 1, &[1])];
        c.on_append(n1, &entries, None, LogIndex(0), None).unwrap();
        assert!(c.check_node(n1, &members(&[1]), true, LogIndex(1)).is_ok());
        assert!(c.check_node(n1, &members(&[1]), true, LogIndex(0)).is_err());
    }

    #[test]
    fn a_snapshot_must_record_the_configuration_in_force() {
        let mut c = checker();
        let n1 = NodeId(1);
        c.on_restart(n1, members(&[1, 2, 3]), [], LogIndex(0));
        c.on_append(
            n1,
            &[config(1, 1, &[1, 2]), noop(2, 1)],
            None,
            LogIndex(0),
            None,
        )
        .unwrap();
        c.observe_commit(n1, LogIndex(2)).unwrap();
        assert!(c
            .on_snapshot(n1, LogIndex(2), &members(&[1, 2, 3]), false)
            .is_err());
        assert!(c
            .on_snapshot(n1, LogIndex(2), &members(&[1, 2]), false)
            .is_ok());
        assert!(c
            .check_node(n1, &members(&[1, 2]), false, LogIndex(2))
            .is_ok());
    }

    #[test]
    fn voters_change_one_at_a_time_or_through_a_joint_configuration() {
        let set = |ids: &[u64]| ids.iter().map(|i| NodeId(*i)).collect();
        let plain = |ids: &[u64]| Membership {
            voters: set(ids),
            voters_outgoing: Default::default(),
            learners: Default::default(),
        };
        let joint = |new: &[u64], old: &[u64]| Membership {
            voters: set(new),
            voters_outgoing: set(old),
            learners: Default::default(),
        };
        let (abc, abd) = (plain(&[1, 2, 3]), plain(&[1, 2, 4]));
        assert!(
            check_transition(&abc, &plain(&[1, 2, 3, 4])).is_ok(),
            "one added"
        );
        assert!(
            check_transition(&abc, &abd).is_err(),
            "one replaced: two changed"
        );
        assert!(check_transition(&abc, &joint(&[1, 2, 4], &[1, 2, 3])).is_ok());
        assert!(check_transition(&abc, &joint(&[1, 2, 4], &[1, 2])).is_err());
        assert!(check_transition(&joint(&[1, 2, 4], &[1, 2, 3]), &abd).is_ok());
        assert!(check_transition(&joint(&[1, 2, 4], &[1, 2, 3]), &abc).is_err());
        assert!(
            check_transition(&plain(&[]), &abd).is_ok(),
            "a node that joined empty"
        );
    }

    /// A checker of nodes 1 and 2 (the initial voters) and joiner 3, which started
    /// knowing no configuration: node 1 committed `noop, noop, config(1, 2, 3)`, and
    /// the joiner holds the same three entries.
    fn joiner_holding_three_entries() -> MembershipChecker {
        let mut c = MembershipChecker::new(3, members(&[1, 2]));
        c.on_restart(NodeId(1), members(&[1, 2]), [], LogIndex(0));
        c.on_restart(NodeId(3), Membership::default(), [], LogIndex(0));
        let log = [noop(1, 1), noop(2, 1), config(3, 1, &[1, 2, 3])];
        for node in [NodeId(1), NodeId(3)] {
            c.on_append(node, &log, None, LogIndex(0), None).unwrap();
        }
        c.observe_commit(NodeId(1), LogIndex(3)).unwrap();
        c
    }

    #[test]
    fn a_joiner_learns_the_configuration_before_its_first_entry_from_a_snapshot() {
        // The leader compacted through 2 and sends that snapshot; the joiner keeps 3.
        let mut c = joiner_holding_three_entries();
        assert!(c
            .on_snapshot(NodeId(3), LogIndex(2), &members(&[1, 2]), false)
            .is_ok());
        // What it records must still be what was committed in force there.
        let mut c = joiner_holding_three_entries();
        assert!(c
            .on_snapshot(NodeId(3), LogIndex(2), &members(&[1, 2, 3]), false)
            .is_err());
    }
}
