//! What the front ends ask of a node, and what they get back: the [`Backend`] trait
//! (implemented over Raft by [`crate::service::KvService`]), request ids for duplicate
//! suppression, and the errors with the words clients see.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kv_model::{ClientId, Operation, RequestSeq};
use serde::Serialize;

use crate::drain::InFlightGuard;
use crate::ticket::Ticket;

/// The identity of one write for duplicate suppression: the client and its sequence
/// number. A retry of a write under the same id is applied at most once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestId {
    /// The client.
    pub client: ClientId,
    /// The client's number for this request (1, 2, 3, ...).
    pub seq: RequestSeq,
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.client.0, self.seq.0)
    }
}

impl RequestId {
    /// Parses `CLIENT:SEQ` (two positive integers).
    pub fn parse(text: &str) -> Option<RequestId> {
        let (client, seq) = text.split_once(':')?;
        let client: u64 = client.parse().ok()?;
        let seq: u64 = seq.parse().ok()?;
        if client == 0 || seq == 0 {
            return None;
        }
        Some(RequestId {
            client: ClientId(client),
            seq: RequestSeq(seq),
        })
    }
}

/// The session of one connection: a fresh client id, and the next sequence number.
/// Writes that do not name their own request id are numbered from it, so a
/// connection's writes are distinct requests and never mistaken for retries.
#[derive(Debug)]
pub struct Session {
    client: ClientId,
    next_seq: u64,
}

impl Session {
    /// A session with a random client id (unique across nodes and restarts with
    /// overwhelming probability: 64 random bits per connection).
    pub fn new() -> Session {
        Session {
            client: ClientId(random_client_id()),
            next_seq: 1,
        }
    }

    /// The id for this connection's next write.
    pub fn next_request(&mut self) -> RequestId {
        let seq = RequestSeq(self.next_seq);
        self.next_seq += 1;
        RequestId {
            client: self.client,
            seq,
        }
    }
}

impl Default for Session {
    fn default() -> Self {
        Session::new()
    }
}

/// A random non-zero 64-bit id. The standard library's `RandomState` is seeded from
/// the operating system's randomness once per process; hashing a per-process counter
/// with it yields distinct, unpredictable ids without another dependency.
fn random_client_id() -> u64 {
    static STATE: std::sync::OnceLock<RandomState> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let state = STATE.get_or_init(RandomState::new);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    state.hash_one((n, std::process::id())).max(1)
}

/// How fresh a read must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consistency {
    /// Linearizable: reflects every write acknowledged before the read started
    /// (ReadIndex: the leader confirms its leadership; a follower asks the leader).
    Linearizable,
    /// This node's state as it is, without a round trip: may miss recent writes, and
    /// on a partitioned node may be arbitrarily old.
    Stale,
}

/// A write that committed and was applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteAck {
    /// The log index it was appended at.
    pub index: u64,
}

/// Where the leader is, as far as a node knows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeaderRef {
    /// The leader's node id.
    pub id: u64,
    /// Its text-protocol address, if known.
    pub client_addr: Option<String>,
    /// Its HTTP address, if known.
    pub http_addr: Option<String>,
}

/// Why a request was not carried out, or why its outcome is not known.
///
/// For a write, every error is one of three kinds, and [`KvError::write_outcome`]
/// says which: not applied (and never will be), applied (it committed), or
/// unknown. Only the unknown ones ask for a retry under the same request id; an
/// answer that says "not applied" is true in every schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvError {
    /// The key holds no value.
    NotFound,
    /// The request reached a node that does not lead, which refused it before
    /// appending anything (a write was not applied); `leader` is the one it knows, if
    /// any.
    NotLeader {
        /// The leader as far as this node knows.
        leader: Option<LeaderRef>,
    },
    /// The request was not carried out, for a passing reason (no leader to confirm a
    /// read, a leader that refused the write or whose index committed another
    /// entry, overload); a write was not applied. Retrying is safe.
    Unavailable(String),
    /// The request cannot be carried out as asked (a membership change that would
    /// leave no voter, an address that is not HOST:PORT); retrying will not help.
    Invalid(String),
    /// The node named by a membership request is not a member.
    NotMember(u64),
    /// The write is larger than the cluster takes (`--command-bytes-max`); it was
    /// not applied.
    TooLarge {
        /// The write's encoded size.
        bytes: usize,
        /// The node's limit.
        max: usize,
    },
    /// No answer in time for a read or a membership change (never a write: see
    /// [`KvError::WriteUnknown`]). Asking again is safe.
    Timeout {
        /// What was waited for.
        what: &'static str,
        /// For how long.
        after: Duration,
    },
    /// The write's fate is unknown: it may or may not take effect. Retrying under the
    /// same request id makes it idempotent.
    WriteUnknown {
        /// The write's request id (the one to retry with).
        id: RequestId,
        /// Why its fate is unknown.
        why: String,
    },
    /// The write committed, so it takes effect on every replica (unless its request
    /// id is older than its client's latest), but this node did not apply it before
    /// answering.
    CommittedNotApplied {
        /// The write's request id.
        id: RequestId,
        /// The log index it committed at.
        index: u64,
        /// Why it was not applied here.
        why: &'static str,
    },
    /// The write's request id is older than its client's latest applied request: it
    /// had no effect.
    StaleRequest(RequestId),
    /// The node is shutting down and did not take the request (a write was not
    /// applied).
    Stopped,
}

/// What became of a write that answered with an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// It was not applied, and never will be.
    NotApplied,
    /// It committed: it takes effect.
    Applied,
    /// Unknown: it may or may not take effect.
    Unknown,
}

impl KvError {
    /// A write that did not commit within `timeout`: its fate is unknown.
    pub fn not_committed_in_time(id: RequestId, timeout: Duration) -> KvError {
        KvError::WriteUnknown {
            id,
            why: format!("it did not commit within {} ms", timeout.as_millis()),
        }
    }

    /// A write that committed at `index` but was not applied here within the request
    /// timeout.
    pub fn not_applied_in_time(id: RequestId, index: u64) -> KvError {
        KvError::CommittedNotApplied {
            id,
            index,
            why: "did not catch up within the request timeout",
        }
    }

    /// What the error says about a write: definitely not applied, applied, or unknown.
    pub fn write_outcome(&self) -> WriteOutcome {
        match self {
            KvError::WriteUnknown { .. } => WriteOutcome::Unknown,
            KvError::CommittedNotApplied { .. } => WriteOutcome::Applied,
            // A timeout is never a write's (those are WriteUnknown); a read or a
            // membership change applies no write.
            KvError::NotFound
            | KvError::NotLeader { .. }
            | KvError::Unavailable(_)
            | KvError::Invalid(_)
            | KvError::NotMember(_)
            | KvError::TooLarge { .. }
            | KvError::Timeout { .. }
            | KvError::StaleRequest(_)
            | KvError::Stopped => WriteOutcome::NotApplied,
        }
    }
}

impl fmt::Display for KvError {
    /// The words after `Error: ` in the text protocol (and the body of HTTP errors).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvError::NotFound => f.write_str("value does not exist"),
            KvError::NotLeader { leader: Some(l) } => match &l.client_addr {
                Some(addr) => write!(f, "Leader is {addr}"),
                None => write!(f, "Leader is node {} (its client address is unknown)", l.id),
            },
            KvError::NotLeader { leader: None } => f.write_str(
                "no leader is known yet; the request was refused and not applied, retry shortly",
            ),
            KvError::Unavailable(reason) | KvError::Invalid(reason) => f.write_str(reason),
            KvError::NotMember(id) => write!(f, "node {id} is not a member"),
            KvError::TooLarge { bytes, max } => write!(
                f,
                "the write is {bytes} bytes encoded, over this node's limit of {max} bytes \
                 (--command-bytes-max); it was not applied"
            ),
            KvError::Timeout { what, after } => write!(
                f,
                "timed out after {} ms waiting for {what}; asking again is safe",
                after.as_millis()
            ),
            KvError::WriteUnknown { id, why } => write!(
                f,
                "the write's fate is unknown ({why}): it may or may not take effect; retry \
                 it with --req {id} (its request id) to make it idempotent"
            ),
            KvError::CommittedNotApplied { id, index, why } => write!(
                f,
                "the write committed at index {index}, so it takes effect (unless request \
                 {id} is older than its client's latest), but this node {why} before \
                 applying it"
            ),
            KvError::StaleRequest(id) => write!(
                f,
                "request {id} is older than its client's latest request; it had no effect"
            ),
            KvError::Stopped => {
                f.write_str("the node is shutting down; the request was refused and not applied")
            }
        }
    }
}

impl std::error::Error for KvError {}

/// A node's view of the cluster, for `status` and `GET /status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatusReport {
    /// This node's id.
    pub node: u64,
    /// `leader`, `follower`, `candidate` or `pre-candidate`.
    pub role: String,
    /// The current term.
    pub term: u64,
    /// The leader this node knows of.
    pub leader: Option<LeaderRef>,
    /// The highest log index known committed.
    pub commit_index: u64,
    /// The highest log index the key-value store has applied.
    pub applied_index: u64,
    /// The last index in this node's log.
    pub last_index: u64,
    /// The last index this node has made durable (fsynced); at most `last_index`.
    pub persisted_index: u64,
    /// The index of the newest snapshot (0: none).
    pub snapshot_index: u64,
    /// The number of keys in the store.
    pub keys: usize,
    /// The other members.
    pub peers: Vec<PeerReport>,
    /// The membership in force, with every member's addresses.
    pub membership: MembershipReport,
}

/// What `GET /metrics` reports: the node's state and raft-mio's counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsReport {
    /// The node's view of the cluster (term, role, indexes, peers, keys).
    pub status: StatusReport,
    /// What raft-mio counted since the node started.
    pub raft: raft_mio::NodeMetrics,
}

/// The members of the cluster and where they serve.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MembershipReport {
    /// The voters (of the incoming configuration while a change is under way).
    pub voters: Vec<u64>,
    /// The voters of the outgoing configuration while a voter change is under way
    /// (empty otherwise).
    pub voters_outgoing: Vec<u64>,
    /// The learners: members that receive the log but do not vote.
    pub learners: Vec<u64>,
    /// Every member with its addresses, as far as this node knows them.
    pub members: Vec<MemberReport>,
}

impl MembershipReport {
    /// `voters=1,2,3 learners=4` (a `-` for none), as the text protocol shows it.
    pub fn to_words(&self) -> String {
        let list = |ids: &[u64]| -> String {
            if ids.is_empty() {
                return "-".into();
            }
            let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
            ids.join(",")
        };
        let mut words = format!(
            "voters={} learners={}",
            list(&self.voters),
            list(&self.learners)
        );
        if !self.voters_outgoing.is_empty() {
            words.push_str(&format!(" leaving={}", list(&self.voters_outgoing)));
        }
        words
    }
}

/// One member in a [`MembershipReport`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MemberReport {
    /// Its node id.
    pub id: u64,
    /// `voter` or `learner`.
    pub role: String,
    /// Its raft address, if known.
    pub raft_addr: Option<String>,
    /// Its text-protocol address, if known.
    pub client_addr: Option<String>,
    /// Its HTTP address, if known.
    pub http_addr: Option<String>,
}

/// A node to add to the cluster: its id and where it serves. It must be running,
/// started with `--join`, before it is added.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct NewNode {
    /// Its node id (positive, not a member yet).
    pub id: u64,
    /// Where its raft peers reach it.
    pub raft_addr: String,
    /// Where clients reach its text protocol.
    pub client_addr: String,
    /// Where clients reach its HTTP front end.
    pub http_addr: String,
}

impl NewNode {
    /// Checks the id and that each address is HOST:PORT.
    pub fn validate(&self) -> Result<(), String> {
        if self.id == 0 {
            return Err("node id 0 is reserved; ids start at 1".into());
        }
        let addrs = [
            ("raft_addr", &self.raft_addr),
            ("client_addr", &self.client_addr),
            ("http_addr", &self.http_addr),
        ];
        for (what, addr) in addrs {
            if crate::addrs::split_host_port(addr).is_none() {
                return Err(format!("{what} `{addr}` is not HOST:PORT"));
            }
        }
        Ok(())
    }
}

/// One peer in a [`StatusReport`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PeerReport {
    /// Its node id.
    pub id: u64,
    /// Its raft address.
    pub raft_addr: String,
    /// Its text-protocol address, if known.
    pub client_addr: Option<String>,
    /// Its HTTP address, if known.
    pub http_addr: Option<String>,
    /// Whether this node's connection to it is up.
    pub connected: bool,
    /// On a leader: the highest index known replicated on it.
    pub match_index: Option<u64>,
}

impl StatusReport {
    /// The one-line form the text protocol answers `status` with.
    pub fn to_line(&self) -> String {
        let leader = self
            .leader
            .as_ref()
            .map_or_else(|| "none".to_string(), |l| l.id.to_string());
        let connected: Vec<String> = self
            .peers
            .iter()
            .map(|p| format!("{}{}", p.id, if p.connected { "+" } else { "-" }))
            .collect();
        format!(
            "node={} role={} term={} leader={leader} commit={} applied={} keys={} peers={} {}",
            self.node,
            self.role,
            self.term,
            self.commit_index,
            self.applied_index,
            self.keys,
            connected.join(","),
            self.membership.to_words()
        )
    }
}

/// What the text and HTTP front ends need from a node. Implemented over Raft by
/// [`crate::service::KvService`]; the front ends' tests implement it in memory.
pub trait Backend: Send + Sync + 'static {
    /// Replicates `op` under `id`; answers once it is committed and applied.
    fn write(&self, id: RequestId, op: Operation) -> Result<WriteAck, KvError>;
    /// Reads `key`.
    fn get(&self, key: &str, consistency: Consistency) -> Result<String, KvError>;
    /// Starts a write without blocking the caller (an event-loop front end):
    /// `ticket` hears when it commits ([`Ticket::committed`]) and gets the answer
    /// [`write`](Self::write) would give ([`Ticket::written`]), except that the
    /// caller keeps the request timeout. By default it calls `write` at once.
    fn start_write(&self, id: RequestId, op: Operation, ticket: Ticket) {
        ticket.written(self.write(id, op));
    }
    /// Asks for a linearizable read barrier without blocking the caller: once
    /// `ticket` hears `Ok` ([`Ticket::barrier`]), every read that started before
    /// this call may be answered with [`Consistency::Stale`] on this node, as
    /// [`Consistency::Linearizable`] would have. One barrier serves a whole batch of
    /// reads. The caller keeps the request timeout.
    fn start_read_barrier(&self, ticket: Ticket);
    /// How long a request may wait for commit or for this node to catch up.
    fn request_timeout(&self) -> Duration {
        Duration::from_secs(5)
    }
    /// The node's view of the cluster.
    fn status(&self) -> Result<StatusReport, KvError>;
    /// The node's state and counters, for `GET /metrics`.
    fn metrics(&self) -> Result<MetricsReport, KvError>;
    /// Snapshots the store now, so that the log before it can be dropped; the index
    /// the snapshot covers.
    fn snapshot(&self) -> Result<u64, KvError>;
    /// Adds `node` (running, started with `--join`): as a learner, then, once it has
    /// caught up with the leader's log, as a voter. Only the leader does it.
    fn add_node(&self, node: &NewNode) -> Result<MembershipReport, KvError>;
    /// Removes node `id` from the cluster (a voter or a learner, the leader too: it
    /// hands over leadership once the removal commits). Only the leader does it.
    fn remove_node(&self, id: u64) -> Result<MembershipReport, KvError>;
    /// Hands leadership to voter `id`; answers once it leads. Only the leader does
    /// it.
    fn transfer_leader(&self, id: u64) -> Result<(), KvError>;
    /// Counts a request as in flight until the guard is dropped, after its answer is
    /// written, so that a stopping node can let the answers out (see
    /// [`crate::drain`]). By default nothing is counted.
    fn begin_request(&self) -> Option<InFlightGuard> {
        None
    }
}

/// The most bytes in a key or value.
pub const KEY_OR_VALUE_BYTES_MAX: usize = 16 * 1024;

/// Checks a key or value: non-empty, without whitespace or control characters, and
/// at most [`KEY_OR_VALUE_BYTES_MAX`] bytes. `what` is `"key"` or `"value"`.
pub fn check_word(what: &str, word: &str) -> Result<(), String> {
    if word.is_empty() {
        return Err(format!("the {what} is empty"));
    }
    if word.len() > KEY_OR_VALUE_BYTES_MAX {
        return Err(format!(
            "the {what} is longer than {KEY_OR_VALUE_BYTES_MAX} bytes"
        ));
    }
    if word.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "the {what} contains whitespace or a control character"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_parse_and_print_the_same() {
        let id = RequestId::parse("7:3").unwrap();
        assert_eq!(id.client, ClientId(7));
        assert_eq!(id.seq, RequestSeq(3));
        assert_eq!(id.to_string(), "7:3");
        for bad in ["7", "7:", ":3", "0:1", "1:0", "a:b", "1:2:3"] {
            assert_eq!(RequestId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn sessions_number_their_writes_and_differ_from_each_other() {
        let mut a = Session::new();
        let mut b = Session::new();
        let (a1, a2, b1) = (a.next_request(), a.next_request(), b.next_request());
        assert_eq!(a1.client, a2.client);
        assert_eq!((a1.seq.0, a2.seq.0), (1, 2));
        assert_ne!(a1.client, b1.client);
    }

    #[test]
    fn the_misdirected_write_error_is_the_leaders_client_address() {
        let leader = LeaderRef {
            id: 1,
            client_addr: Some("127.0.0.1:8001".into()),
            http_addr: None,
        };
        let err = KvError::NotLeader {
            leader: Some(leader),
        };
        assert_eq!(err.to_string(), "Leader is 127.0.0.1:8001");
        assert_eq!(KvError::NotFound.to_string(), "value does not exist");
    }

    #[test]
    fn words_must_be_non_empty_and_without_whitespace() {
        assert!(check_word("key", "a/b:c").is_ok());
        assert!(check_word("key", "").unwrap_err().contains("empty"));
        assert!(check_word("value", "a b")
            .unwrap_err()
            .contains("whitespace"));
        assert!(check_word("value", "a\u{7}").is_err());
        assert!(check_word("value", &"x".repeat(KEY_OR_VALUE_BYTES_MAX + 1)).is_err());
    }
}
