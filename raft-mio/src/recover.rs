//! Recovery from a lost quorum: make a node the founder of a new cluster whose
//! members are given, from what its own data directory holds (like etcd's
//! `--force-new-cluster` or hashicorp raft's `RecoverCluster`).
//!
//! ## What it does
//! With the node stopped, [`force_new_membership`] writes two things into its data
//! directory, each durable before the next:
//! 1. the hard state of a new term `T + 1` with no vote, where `T` is the newest term
//!    the node knows (its hard state's, or its last entry's);
//! 2. one configuration entry at the end of its log (index `L + 1`, term `T + 1`)
//!    naming the new voters.
//!
//! Raft uses the newest configuration in a log whether or not it has committed, so
//! on its next start the node counts votes and commits against the new members only.
//! With itself as the only voter it elects itself at once (term `T + 2`), appends its
//! no-op and commits it, which commits everything before it: its whole log, the
//! configuration entry included. No invariant of raft-core is bent: terms never
//! decrease along the log, the entry's term is the hard state's, and the log is
//! extended, never rewritten. The term bump keeps every term the new cluster uses
//! above every term in this log.
//!
//! ## Why it is only as safe as its warning says
//! It trades safety for availability, on purpose:
//! - **Committed writes can be lost**: an entry committed on a majority that did not
//!   include this node is gone. Recover the survivor with the highest last log term,
//!   then the highest last index ([`inspect`] shows both).
//! - **Writes that never committed can commit**: every entry of this log, acknowledged
//!   or not, becomes committed (a write whose client was told "unknown" may appear).
//! - **The old members must never come back with their data**: their logs hold a
//!   different history. Wipe them and add them as new nodes (started with
//!   `--join`, as learners, then voters). Members removed by the new configuration
//!   are refused at the handshake, but an old node that kept its data and is added
//!   back under its id would corrupt the new cluster.
//! - **Recover one node only**: with several given voters, start the others with
//!   empty data directories (not `--join`: they must be able to vote for this one),
//!   so that their logs come from this node. Recovering two survivors each from
//!   their own log would give two entries with the same index and term but
//!   different histories.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use raft_core::{
    Action, Entry, EntryPayload, HardState, LogIndex, Membership, NodeId, PersistSeq, Restored,
    Term,
};

use crate::storage::{Storage, StorageError, StorageOptions};

/// What a data directory holds, as far as recovery cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogSummary {
    /// The node's hard state (term and vote).
    pub hard_state: HardState,
    /// The index of the last entry (or of the snapshot, if the log after it is empty).
    pub last_index: LogIndex,
    /// The term of that entry.
    pub last_term: Term,
    /// The index of the newest snapshot (0: none).
    pub snapshot_index: LogIndex,
    /// The newest configuration in the log or the snapshot (`None`: the node only ever
    /// had the one it was started with, which its data does not record).
    pub membership: Option<Membership>,
}

/// What [`force_new_membership`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// The data directory as it was.
    pub before: LogSummary,
    /// The new term written to the hard state.
    pub term: Term,
    /// The index of the configuration entry appended.
    pub index: LogIndex,
    /// The new configuration.
    pub membership: Membership,
}

/// Why recovery refused or failed.
#[derive(Debug)]
pub enum RecoverError {
    /// No voters were given.
    NoVoters,
    /// More members than a configuration may have.
    TooManyMembers(usize),
    /// The data directory could not be opened (it is in use: stop the node first), or
    /// written.
    Storage(StorageError),
    /// The directory holds no Raft state: there is nothing to recover.
    Empty,
}

impl fmt::Display for RecoverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecoverError::NoVoters => f.write_str("the new configuration needs at least one voter"),
            RecoverError::TooManyMembers(n) => write!(
                f,
                "{n} voters are more than a configuration may have ({})",
                crate::bounds::MEMBERS_MAX
            ),
            RecoverError::Storage(e) => e.fmt(f),
            RecoverError::Empty => f.write_str(
                "the data directory holds no Raft state (no log, snapshot or term): nothing \
                 to recover",
            ),
        }
    }
}

impl std::error::Error for RecoverError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RecoverError::Storage(e) => Some(e),
            _ => None,
        }
    }
}

/// Reads what `data_dir` holds (the node must be stopped: the directory is locked).
pub fn inspect(data_dir: &Path) -> Result<LogSummary, RecoverError> {
    let (_storage, restored) =
        Storage::open(data_dir, StorageOptions::default()).map_err(RecoverError::Storage)?;
    Ok(summarize(&restored))
}

fn summarize(restored: &Restored) -> LogSummary {
    let snapshot_meta = restored.snapshot.as_ref().map(|s| &s.meta);
    let snapshot_index = snapshot_meta.map_or(LogIndex(0), |m| m.last_index);
    let (last_index, last_term) = match restored.entries.last() {
        Some(entry) => (entry.index, entry.term),
        None => snapshot_meta.map_or((LogIndex(0), Term(0)), |m| (m.last_index, m.last_term)),
    };
    let in_log = restored
        .entries
        .iter()
        .rev()
        .find_map(|e| match &e.payload {
            EntryPayload::Membership(m) => Some((**m).clone()),
            _ => None,
        });
    LogSummary {
        hard_state: restored.hard_state,
        last_index,
        last_term,
        snapshot_index,
        membership: in_log.or_else(|| snapshot_meta.map(|m| m.membership.clone())),
    }
}

/// Makes the stopped node whose data is in `data_dir` the founder of a new cluster
/// whose voters are `voters` (usually just itself); see the module docs for what it
/// does and what it costs. Run it on one surviving node only.
pub fn force_new_membership(
    data_dir: &Path,
    voters: &BTreeSet<NodeId>,
) -> Result<Recovery, RecoverError> {
    if voters.is_empty() {
        return Err(RecoverError::NoVoters);
    }
    if voters.len() > crate::bounds::MEMBERS_MAX {
        return Err(RecoverError::TooManyMembers(voters.len()));
    }
    let (mut storage, restored) =
        Storage::open(data_dir, StorageOptions::default()).map_err(RecoverError::Storage)?;
    let before = summarize(&restored);
    if before.last_index == LogIndex(0) && before.hard_state.term == Term(0) {
        return Err(RecoverError::Empty);
    }
    let term = Term(before.hard_state.term.0.max(before.last_term.0) + 1);
    let index = before.last_index.next();
    let membership = Membership::new(voters.iter().copied());
    // The term first: a crash between the two writes leaves a harmless term bump, and
    // never an entry from a term after the hard state's.
    let hard_state = HardState {
        term,
        voted_for: None,
    };
    let entry = Entry {
        term,
        index,
        payload: EntryPayload::Membership(Box::new(membership.clone())),
    };
    let writes = [
        Action::PersistHardState {
            seq: PersistSeq(1),
            hard_state,
        },
        Action::AppendToLog {
            seq: PersistSeq(2),
            entries: vec![entry],
        },
    ];
    for write in &writes {
        storage.write(write).map_err(RecoverError::Storage)?;
        storage.sync().map_err(RecoverError::Storage)?;
    }
    debug_assert_eq!(storage.last_index(), index);
    tracing::warn!(
        data_dir = %data_dir.display(), %term, %index, voters = ?voters,
        "forced a new configuration: this node's log is now the whole history of a new cluster"
    );
    Ok(Recovery {
        before,
        term,
        index,
        membership,
    })
}

#[cfg(test)]
mod tests {
    use raft_core::{Config, RaftNode, RoleKind};

    use super::*;

    fn command(index: u64, term: u64) -> Entry {
        Entry {
            term: Term(term),
            index: LogIndex(index),
            payload: EntryPayload::Command(vec![index as u8].into()),
        }
    }

    /// A node of a lost three-node cluster, with three commands in its log.
    fn survivor(dir: &Path) {
        let (mut storage, _) = Storage::open(dir, StorageOptions::default()).unwrap();
        let three = Membership::new([NodeId(1), NodeId(2), NodeId(3)]);
        let entries = vec![
            Entry {
                term: Term(2),
                index: LogIndex(1),
                payload: EntryPayload::Membership(Box::new(three)),
            },
            command(2, 2),
            command(3, 2),
            command(4, 3),
        ];
        let hard_state = HardState {
            term: Term(5),
            voted_for: Some(NodeId(2)),
        };
        for write in [
            Action::PersistHardState {
                seq: PersistSeq(1),
                hard_state,
            },
            Action::AppendToLog {
                seq: PersistSeq(2),
                entries,
            },
        ] {
            storage.write(&write).unwrap();
        }
        storage.sync().unwrap();
    }

    #[test]
    fn a_survivor_forced_to_a_single_voter_elects_itself_and_commits_its_whole_log() {
        let dir = tempfile::tempdir().unwrap();
        survivor(dir.path());
        let voters: BTreeSet<NodeId> = [NodeId(1)].into();
        let recovery = force_new_membership(dir.path(), &voters).unwrap();
        assert_eq!(recovery.before.last_index, LogIndex(4));
        assert_eq!(recovery.before.membership.unwrap().voters.len(), 3);
        assert_eq!(recovery.term, Term(6), "above the hard state's term 5");
        assert_eq!(recovery.index, LogIndex(5));

        let (_storage, restored) = Storage::open(dir.path(), StorageOptions::default()).unwrap();
        restored
            .validate()
            .expect("what recovery wrote is consistent");
        assert_eq!(summarize(&restored).membership.unwrap().voters, voters);
        let config = Config::new(NodeId(1), [NodeId(1), NodeId(2), NodeId(3)]);
        let mut node = RaftNode::new(config, restored).unwrap();
        let mut committed = LogIndex(0);
        for _ in 0..200 {
            for action in node.step(Event::Tick) {
                persist_at_once(&mut node, action, &mut committed);
            }
            if committed >= LogIndex(6) {
                break;
            }
        }
        assert_eq!(node.role(), RoleKind::Leader);
        assert!(
            committed >= LogIndex(6),
            "its no-op at 6 commits the whole log"
        );
    }

    use raft_core::Event;

    /// Carries out one action of a lone node: persistence is durable at once.
    fn persist_at_once(node: &mut RaftNode, action: Action, committed: &mut LogIndex) {
        match action {
            Action::PersistHardState { seq, .. } | Action::AppendToLog { seq, .. } => {
                for next in node.step(Event::Persisted { through: seq }) {
                    persist_at_once(node, next, committed);
                }
            }
            Action::Apply(entries) => {
                *committed = entries.last().map_or(*committed, |e| e.index);
            }
            _ => {}
        }
    }

    #[test]
    fn recovery_refuses_an_empty_directory_and_no_voters() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            force_new_membership(dir.path(), &BTreeSet::new()),
            Err(RecoverError::NoVoters)
        ));
        let voters = [NodeId(1)].into();
        assert!(matches!(
            force_new_membership(dir.path(), &voters),
            Err(RecoverError::Empty)
        ));
    }

    #[test]
    fn a_running_node_is_not_recovered_under_it() {
        let dir = tempfile::tempdir().unwrap();
        survivor(dir.path());
        let _running = Storage::open(dir.path(), StorageOptions::default()).unwrap();
        let err = force_new_membership(dir.path(), &[NodeId(1)].into()).unwrap_err();
        assert!(err.to_string().contains("in use"), "{err}");
    }
}
