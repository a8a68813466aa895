//! The membership in force at every index of the log: a configuration takes effect as
//! soon as its entry is in the log (thesis §4.1), so truncating the entry reverts it.

use crate::types::{LogIndex, Membership};

/// The configurations of the log since the snapshot, oldest first. The first one is
/// the base (from the snapshot, or the initial configuration at index 0) and is never
/// removed by truncation.
#[derive(Clone, Debug)]
pub(crate) struct MembershipLog {
    history: Vec<(LogIndex, Membership)>,
}

impl MembershipLog {
    /// A history holding only `base`, in force from `index`.
    pub(crate) fn new(index: LogIndex, base: Membership) -> Self {
        MembershipLog {
            history: vec![(index, base)],
        }
    }

    /// The membership in force now (the newest in the log).
    pub(crate) fn current(&self) -> &Membership {
        &self.history.last().expect("the base is never removed").1
    }

    /// The index of the entry that set the current membership.
    pub(crate) fn current_index(&self) -> LogIndex {
        self.history.last().expect("the base is never removed").0
    }

    /// The membership in force at `index`.
    pub(crate) fn at(&self, index: LogIndex) -> &Membership {
        let position = self.history.partition_point(|(i, _)| *i <= index);
        &self.history[position.saturating_sub(1)].1
    }

    /// A configuration entry was appended at `index`.
    pub(crate) fn push(&mut self, index: LogIndex, membership: Membership) {
        debug_assert!(index > self.current_index());
        self.history.push((index, membership));
    }

    /// The log was truncated from `from`: configurations at or after it are gone.
    /// Returns whether the current membership changed.
    pub(crate) fn truncate_from(&mut self, from: LogIndex) -> bool {
        let before = self.history.len();
        while self.history.len() > 1 && self.current_index() >= from {
            self.history.pop();
        }
        self.history.len() != before
    }

    /// The log was compacted through `up_to`: the configuration in force there
    /// becomes the base.
    pub(crate) fn compact(&mut self, up_to: LogIndex) {
        let position = self.history.partition_point(|(i, _)| *i <= up_to);
        let drop = position.saturating_sub(1);
        self.history.drain(..drop);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::NodeId;

    #[test]
    fn truncation_reverts_to_the_previous_configuration() {
        let a = Membership::new([NodeId(1)]);
        let b = Membership::new([NodeId(1), NodeId(2)]);
        let mut log = MembershipLog::new(LogIndex(0), a.clone());
        log.push(LogIndex(5), b.clone());
        assert_eq!(log.at(LogIndex(4)), &a);
        assert_eq!(log.at(LogIndex(5)), &b);
        assert!(log.truncate_from(LogIndex(5)));
        assert_eq!(log.current(), &a);
        assert!(!log.truncate_from(LogIndex(0)), "the base stays");
    }

    #[test]
    fn compaction_keeps_the_configuration_in_force() {
        let a = Membership::new([NodeId(1)]);
        let b = Membership::new([NodeId(2)]);
        let mut log = MembershipLog::new(LogIndex(0), a);
        log.push(LogIndex(3), b.clone());
        log.compact(LogIndex(7));
        assert_eq!(log.current(), &b);
        assert_eq!(log.at(LogIndex(8)), &b);
    }
}
