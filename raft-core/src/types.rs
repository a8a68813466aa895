//! The protocol's vocabulary: identifier newtypes, log entries, hard state.
//!
//! Every protocol integer is a newtype so that a term can never be passed where an
//! index is expected. All of them are fixed-width (`u64`) because they are persisted
//! and sent on the wire.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

id_newtype!(
    /// The identity of a cluster member. Zero is reserved and never a valid node.
    NodeId,
    "n"
);
id_newtype!(
    /// A Raft term (§5.1). Terms only grow.
    Term,
    "t"
);
id_newtype!(
    /// A position in the replicated log. The first entry has index 1; index 0 is the
    /// empty prefix before it.
    LogIndex,
    "i"
);
id_newtype!(
    /// The caller's name for a proposal; the core reports what became of it under this id.
    ProposalId,
    "p"
);
id_newtype!(
    /// The caller's name for a linearizable read request.
    ReadId,
    "r"
);
id_newtype!(
    /// The sequence number of a persistence action. The shell makes persistence actions
    /// durable in order and reports the highest one done with `Event::Persisted`.
    PersistSeq,
    "s"
);

impl NodeId {
    /// Whether this id may name a node (zero is reserved).
    pub fn is_valid(self) -> bool {
        self.0 != 0
    }
}

impl LogIndex {
    /// The index before this one, saturating at zero.
    pub fn prev(self) -> LogIndex {
        LogIndex(self.0.saturating_sub(1))
    }

    /// The index after this one.
    pub fn next(self) -> LogIndex {
        LogIndex(self.0.saturating_add(1))
    }
}

impl Term {
    /// The largest term, reserved: no message may carry it, so that a node can always
    /// campaign in a newer term.
    pub const MAX: Term = Term(u64::MAX);

    /// The term after this one.
    pub fn next(self) -> Term {
        Term(self.0.saturating_add(1))
    }
}

/// Immutable, cheaply cloneable bytes: an entry's command, a snapshot chunk.
///
/// Cloning shares the buffer, so replicating an entry to many followers (and keeping
/// it in the log, and handing it to the application) never copies its payload. On the
/// wire it is a length-prefixed byte string.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SharedBytes(Arc<[u8]>);

impl SharedBytes {
    /// Copies `bytes` into a new shared buffer.
    pub fn copy_from_slice(bytes: &[u8]) -> Self {
        SharedBytes(Arc::from(bytes))
    }

    /// The number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Deref for SharedBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for SharedBytes {
    fn from(bytes: Vec<u8>) -> Self {
        SharedBytes(Arc::from(bytes))
    }
}

impl From<&[u8]> for SharedBytes {
    fn from(bytes: &[u8]) -> Self {
        SharedBytes::copy_from_slice(bytes)
    }
}

impl From<&str> for SharedBytes {
    fn from(text: &str) -> Self {
        SharedBytes::copy_from_slice(text.as_bytes())
    }
}

impl fmt::Debug for SharedBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Short payloads print as text when they are text, which keeps traces readable.
        const SHOWN_BYTES_MAX: usize = 32;
        let shown = &self.0[..self.0.len().min(SHOWN_BYTES_MAX)];
        let more = if self.0.len() > SHOWN_BYTES_MAX {
            ".."
        } else {
            ""
        };
        match std::str::from_utf8(shown) {
            Ok(text) => write!(f, "{text:?}{more}"),
            Err(_) => write!(f, "{}B{:02x?}{more}", self.0.len(), shown),
        }
    }
}

impl Serialize for SharedBytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for SharedBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;
        impl<'de> serde::de::Visitor<'de> for BytesVisitor {
            type Value = SharedBytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<SharedBytes, E> {
                Ok(SharedBytes::copy_from_slice(v))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<SharedBytes, E> {
                Ok(SharedBytes::from(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<SharedBytes, A::Error> {
                // Self-describing formats (JSON) send bytes as a sequence of numbers.
                let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(byte) = seq.next_element::<u8>()? {
                    bytes.push(byte);
                }
                Ok(SharedBytes::from(bytes))
            }
        }
        deserializer.deserialize_byte_buf(BytesVisitor)
    }
}

/// The members of the cluster: who votes and who only receives the log.
///
/// While a joint configuration is in force (`voters_outgoing` non-empty), every
/// decision needs a majority of `voters` and, separately, of `voters_outgoing`
/// (Raft thesis §4.3).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The voters of the (incoming) configuration.
    pub voters: BTreeSet<NodeId>,
    /// The voters of the outgoing configuration while joint; empty otherwise.
    pub voters_outgoing: BTreeSet<NodeId>,
    /// Members that receive the log but neither vote nor count toward quorums.
    pub learners: BTreeSet<NodeId>,
}

impl Membership {
    /// A simple (non-joint) configuration of `voters` and no learners.
    pub fn new(voters: impl IntoIterator<Item = NodeId>) -> Self {
        Membership {
            voters: voters.into_iter().collect(),
            ..Membership::default()
        }
    }

    /// Whether a joint configuration is in force.
    pub fn is_joint(&self) -> bool {
        !self.voters_outgoing.is_empty()
    }

    /// Whether `id` votes in either half of the configuration.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.voters_outgoing.contains(&id)
    }

    /// Whether `id` is a learner.
    pub fn is_learner(&self, id: NodeId) -> bool {
        self.learners.contains(&id)
    }

    /// Whether `id` is a member at all (voter in either half, or learner).
    pub fn contains(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.is_learner(id)
    }

    /// Every member, voters and learners, in id order, without duplicates.
    pub fn members(&self) -> BTreeSet<NodeId> {
        let mut all = self.voters.clone();
        all.extend(self.voters_outgoing.iter().copied());
        all.extend(self.learners.iter().copied());
        all
    }
}

/// What an entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryPayload {
    /// The empty entry a new leader appends at the start of its term (Raft §8), so
    /// that it can commit entries of earlier terms and serve reads.
    Noop,
    /// An application command, opaque to the core.
    Command(SharedBytes),
    /// A new cluster configuration; it takes effect as soon as it is in the log.
    /// Boxed so that the common entry stays small.
    Membership(Box<Membership>),
}

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The term of the leader that created the entry.
    pub term: Term,
    /// The entry's position in the log.
    pub index: LogIndex,
    /// What the entry carries.
    pub payload: EntryPayload,
}

impl Entry {
    /// An estimate of the entry's encoded size, used by the byte bounds of flow
    /// control (inflight window, message batches, uncommitted proposals).
    pub fn size_bytes(&self) -> u64 {
        // Term and index as varints plus a tag: a small fixed overhead.
        const ENTRY_OVERHEAD_BYTES: u64 = 12;
        let payload = match &self.payload {
            EntryPayload::Noop => 0,
            EntryPayload::Command(bytes) => bytes.len() as u64,
            EntryPayload::Membership(m) => 8 * m.members().len() as u64,
        };
        ENTRY_OVERHEAD_BYTES + payload
    }
}

/// The state every node must make durable before it speaks (Raft Figure 2):
/// the current term and the vote cast in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: Term,
    /// The candidate this node voted for in `term`, if any.
    pub voted_for: Option<NodeId>,
}

/// The description of a snapshot: the log prefix it replaces and the membership in
/// force at its last entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// The index of the last entry the snapshot covers.
    pub last_index: LogIndex,
    /// The term of that entry.
    pub last_term: Term,
    /// The membership in force at `last_index`.
    pub membership: Membership,
}

/// A snapshot: its description and the application's serialized state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// What the snapshot covers.
    pub meta: SnapshotMeta,
    /// The application's state as of `meta.last_index`, opaque to the core.
    pub data: SharedBytes,
}

/// The role a node plays in its current term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RoleKind {
    /// Follows a leader (or waits for one). Learners follow, except one whose log is
    /// newer than that of a candidate that needed its vote: it stands, and if it
    /// wins, it commits an entry of its term and hands over to a voter.
    Follower,
    /// Polls the voters with PreVote before starting a real election.
    PreCandidate,
    /// Campaigns for votes in a new term.
    Candidate,
    /// Leads the current term.
    Leader,
}

impl fmt::Display for RoleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            RoleKind::Follower => "follower",
            RoleKind::PreCandidate => "pre-candidate",
            RoleKind::Candidate => "candidate",
            RoleKind::Leader => "leader",
        };
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_bytes_clone_shares_the_buffer() {
        let a = SharedBytes::from(vec![1u8; 64]);
        let b = a.clone();
        assert_eq!(a.as_ptr(), b.as_ptr());
    }

    #[test]
    fn membership_joint_counts_both_halves() {
        let mut m = Membership::new([NodeId(1), NodeId(2)]);
        assert!(!m.is_joint());
        m.voters_outgoing = [NodeId(3)].into_iter().collect();
        assert!(m.is_joint());
        assert!(m.is_voter(NodeId(3)));
        assert_eq!(m.members().len(), 3);
    }
}
