//! The key-value state machine: apply committed commands, answer reads, snapshot.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::command::{ClientId, Command, DecodeError, Operation, RequestSeq};

/// The most client sessions a store remembers for duplicate suppression. Past it, the
/// session touched longest ago is forgotten (and a very late retry of its last request
/// would be applied again), which bounds memory however many clients come and go.
pub const SESSIONS_MAX: usize = 4096;

/// What applying a command did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The put is done.
    Put,
    /// The delete is done; whether the key existed before it.
    Delete {
        /// The key held a value.
        existed: bool,
    },
    /// The compare-and-set ran; whether the value matched and was swapped.
    Cas {
        /// The expected value matched, and the new one is in place.
        swapped: bool,
    },
    /// The request is older than the newest one its client has had applied: it had
    /// no effect now, and its first result is no longer known.
    Stale,
}

/// The last request applied for one client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Session {
    seq: RequestSeq,
    outcome: Outcome,
    /// The log index that last touched this session (for eviction by age).
    touched_index: u64,
}

/// The replicated key-value map with its client sessions.
///
/// Deterministic: the same commands at the same indexes give the same state and the
/// same snapshot bytes on every node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvStore {
    map: BTreeMap<String, String>,
    sessions: BTreeMap<ClientId, Session>,
    /// The sessions by `touched_index`, oldest first. Indexes are unique because each
    /// applied command touches exactly one session.
    sessions_by_age: BTreeMap<u64, ClientId>,
    applied_index: u64,
    sessions_max: usize,
}

/// The snapshot format: everything that makes up the state, nothing derived.
#[derive(Serialize, Deserialize)]
struct SnapshotData {
    applied_index: u64,
    map: BTreeMap<String, String>,
    sessions: BTreeMap<ClientId, Session>,
}

impl Default for KvStore {
    fn default() -> Self {
        KvStore::new()
    }
}

impl KvStore {
    /// An empty store that remembers up to [`SESSIONS_MAX`] sessions.
    pub fn new() -> Self {
        KvStore::with_sessions_max(SESSIONS_MAX)
    }

    /// An empty store that remembers up to `sessions_max` sessions (at least one).
    pub fn with_sessions_max(sessions_max: usize) -> Self {
        assert!(
            sessions_max > 0,
            "a store must remember at least one session"
        );
        KvStore {
            map: BTreeMap::new(),
            sessions: BTreeMap::new(),
            sessions_by_age: BTreeMap::new(),
            applied_index: 0,
            sessions_max,
        }
    }

    /// Applies the committed `command` found at log `index` (which must follow the
    /// last applied index). A retry of the client's last request returns that
    /// request's first outcome without applying it again.
    pub fn apply(&mut self, index: u64, command: &Command) -> Outcome {
        self.advance_applied(index);
        let outcome = match self.sessions.get(&command.client) {
            Some(session) if command.seq == session.seq => return session.outcome.clone(),
            Some(session) if command.seq < session.seq => return Outcome::Stale,
            _ => self.execute(&command.op),
        };
        self.remember(command.client, command.seq, outcome.clone(), index);
        outcome
    }

    /// Records that the entry at `index` carried no command (a leader's no-op or a
    /// membership change): the store is unchanged but has applied through `index`.
    pub fn apply_noop(&mut self, index: u64) {
        self.advance_applied(index);
    }

    /// The value of `key`, if any.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    /// The log index of the last entry applied (0 before any).
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// The number of keys held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the store holds no keys.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The number of client sessions remembered.
    pub fn sessions_len(&self) -> usize {
        self.sessions.len()
    }

    /// The whole state as bytes (postcard of the map, the sessions and the applied
    /// index): what a Raft snapshot carries.
    pub fn snapshot(&self) -> Vec<u8> {
        let data = SnapshotData {
            applied_index: self.applied_index,
            map: self.map.clone(),
            sessions: self.sessions.clone(),
        };
        postcard::to_allocvec(&data).expect("a snapshot always encodes")
    }

    /// Replaces the whole state with a snapshot taken by [`KvStore::snapshot`]. On an
    /// error the store is left unchanged.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        let data: SnapshotData = postcard::from_bytes(bytes).map_err(|e| DecodeError {
            what: "snapshot",
            reason: e.to_string(),
        })?;
        let mut sessions_by_age = BTreeMap::new();
        for (client, session) in &data.sessions {
            if sessions_by_age
                .insert(session.touched_index, *client)
                .is_some()
            {
                return Err(DecodeError {
                    what: "snapshot",
                    reason: "two sessions touched at the same index".into(),
                });
            }
        }
        self.map = data.map;
        self.sessions = data.sessions;
        self.sessions_by_age = sessions_by_age;
        self.applied_index = data.applied_index;
        self.evict_oldest_sessions();
        Ok(())
    }

    fn advance_applied(&mut self, index: u64) {
        assert!(
            index > self.applied_index,
            "entries apply in index order: index {index} after {}",
            self.applied_index
        );
        self.applied_index = index;
    }

    fn execute(&mut self, op: &Operation) -> Outcome {
        match op {
            Operation::Put { key, value } => {
                self.map.insert(key.clone(), value.clone());
                Outcome::Put
            }
            Operation::Delete { key } => Outcome::Delete {
                existed: self.map.remove(key).is_some(),
            },
            Operation::Cas { key, expected, new } => {
                let swapped = self.map.get(key) == expected.as_ref();
                if swapped {
                    match new {
                        Some(value) => self.map.insert(key.clone(), value.clone()),
                        None => self.map.remove(key),
                    };
                }
                Outcome::Cas { swapped }
            }
        }
    }

    fn remember(&mut self, client: ClientId, seq: RequestSeq, outcome: Outcome, index: u64) {
        let session = Session {
            seq,
            outcome,
            touched_index: index,
        };
        if let Some(old) = self.sessions.insert(client, session) {
            self.sessions_by_age.remove(&old.touched_index);
        }
        self.sessions_by_age.insert(index, client);
        self.evict_oldest_sessions();
        debug_assert_eq!(self.sessions.len(), self.sessions_by_age.len());
    }

    fn evict_oldest_sessions(&mut self) {
        while self.sessions.len() > self.sessions_max {
            let (_, client) = self
                .sessions_by_age
                .pop_first()
                .expect("sessions_by_age indexes every session");
            self.sessions.remove(&client);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(client: u64, seq: u64, op: Operation) -> Command {
        Command {
            client: ClientId(client),
            seq: RequestSeq(seq),
            op,
        }
    }

    fn put(key: &str, value: &str) -> Operation {
        Operation::Put {
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn put_then_get_sees_the_value() {
        let mut store = KvStore::new();
        assert_eq!(store.apply(1, &command(1, 1, put("a", "x"))), Outcome::Put);
        assert_eq!(store.get("a"), Some("x"));
        assert_eq!(store.applied_index(), 1);
    }

    #[test]
    fn delete_reports_whether_the_key_existed() {
        let mut store = KvStore::new();
        let delete = Operation::Delete { key: "a".into() };
        assert_eq!(
            store.apply(1, &command(1, 1, delete.clone())),
            Outcome::Delete { existed: false }
        );
        store.apply(2, &command(1, 2, put("a", "x")));
        assert_eq!(
            store.apply(3, &command(1, 3, delete)),
            Outcome::Delete { existed: true }
        );
        assert_eq!(store.get("a"), None);
    }

    #[test]
    fn cas_swaps_only_on_a_match() {
        let mut store = KvStore::new();
        let cas = |expected: Option<&str>, new: Option<&str>| Operation::Cas {
            key: "a".into(),
            expected: expected.map(String::from),
            new: new.map(String::from),
        };
        assert_eq!(
            store.apply(1, &command(1, 1, cas(Some("x"), Some("y")))),
            Outcome::Cas { swapped: false }
        );
        assert_eq!(
            store.apply(2, &command(1, 2, cas(None, Some("y")))),
            Outcome::Cas { swapped: true }
        );
        assert_eq!(store.get("a"), Some("y"));
        assert_eq!(
            store.apply(3, &command(1, 3, cas(Some("y"), None))),
            Outcome::Cas { swapped: true }
        );
        assert_eq!(store.get("a"), None);
    }

    #[test]
    fn a_retry_returns_the_first_outcome_without_reapplying() {
        let mut store = KvStore::new();
        let delete = Operation::Delete { key: "a".into() };
        store.apply(1, &command(2, 1, put("a", "x")));
        let first = store.apply(2, &command(1, 5, delete.clone()));
        assert_eq!(first, Outcome::Delete { existed: true });
        store.apply(3, &command(2, 2, put("a", "y")));
        // The retry of client 1's request 5 must not delete client 2's new value.
        assert_eq!(store.apply(4, &command(1, 5, delete)), first);
        assert_eq!(store.get("a"), Some("y"));
    }

    #[test]
    fn an_older_request_is_stale_and_has_no_effect() {
        let mut store = KvStore::new();
        store.apply(1, &command(1, 2, put("a", "new")));
        assert_eq!(
            store.apply(2, &command(1, 1, put("a", "old"))),
            Outcome::Stale
        );
        assert_eq!(store.get("a"), Some("new"));
    }

    #[test]
    fn the_oldest_session_is_evicted_past_the_bound() {
        let mut store = KvStore::with_sessions_max(2);
        store.apply(1, &command(1, 1, put("a", "1")));
        store.apply(2, &command(2, 1, put("a", "2")));
        store.apply(3, &command(1, 2, put("a", "3")));
        store.apply(4, &command(3, 1, put("a", "4")));
        assert_eq!(store.sessions_len(), 2);
        // Client 2 was touched longest ago, so it was forgotten: its retry applies again.
        assert_eq!(store.apply(5, &command(2, 1, put("a", "2"))), Outcome::Put);
        assert_eq!(store.get("a"), Some("2"));
        // Client 3's session survived and suppresses its retry.
        assert_eq!(store.apply(6, &command(3, 1, put("a", "4"))), Outcome::Put);
        assert_eq!(store.get("a"), Some("2"));
        assert_eq!(store.sessions_len(), 2);
    }

    #[test]
    fn snapshot_restore_keeps_map_sessions_and_index() {
        let mut store = KvStore::new();
        store.apply(1, &command(1, 1, put("a", "x")));
        store.apply_noop(2);
        let mut copy = KvStore::new();
        copy.restore(&store.snapshot()).unwrap();
        assert_eq!(copy, store);
        assert_eq!(copy.applied_index(), 2);
        assert_eq!(copy.apply(3, &command(1, 1, put("a", "z"))), Outcome::Put);
        assert_eq!(
            copy.get("a"),
            Some("x"),
            "the restored session suppressed the retry"
        );
    }

    #[test]
    fn a_corrupt_snapshot_leaves_the_store_unchanged() {
        let mut store = KvStore::new();
        store.apply(1, &command(1, 1, put("a", "x")));
        let before = store.clone();
        assert!(store.restore(&[0xff; 3]).is_err());
        assert_eq!(store, before);
    }

    #[test]
    #[should_panic(expected = "entries apply in index order")]
    fn applying_out_of_order_panics() {
        let mut store = KvStore::new();
        store.apply_noop(2);
        store.apply_noop(2);
    }
}
