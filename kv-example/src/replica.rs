//! This node's copy of the key-value store, applied from raft-mio's committed stream.
//!
//! One applier thread owns the committed stream and applies every item to a
//! [`KvStore`] under a mutex; front-end threads read the store and wait on a condition
//! variable for the applied index to reach the index they need (a write's own index,
//! or a read's ReadIndex barrier). Every `snapshot_every_entries` applied entries the
//! applier hands the store's snapshot to raft-mio, which bounds the log.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use kv_model::{Command, KvStore, Outcome};
use raft_core::LogIndex;
use raft_mio::{Client, Committed, CommittedStream};

/// How many recent write outcomes are remembered for the threads waiting on them.
/// A waiter is at most a request timeout behind, so this only needs to cover the
/// writes applied within one timeout.
pub const OUTCOMES_MAX: usize = 1 << 16;

/// The most committed items applied under one lock (bounds the time front ends
/// wait for the lock behind a long catch-up).
pub const APPLY_BATCH_MAX: usize = 1024;

/// The most waiters registered with [`Replica::when_applied`] at once; beyond it a
/// waiter is answered [`WaitError::Overloaded`] at once. Front ends bound the
/// requests they have in flight well below it.
pub const WAITERS_MAX: usize = 1 << 20;

/// What [`Replica::when_applied`] calls once the store has applied the index it waits
/// for: the outcome of the command there (see [`Replica::wait_outcome`]), or why the
/// wait ended.
pub type AppliedWaiter = Box<dyn FnOnce(Result<Option<Outcome>, WaitError>) + Send>;

/// Why a wait for the applied index ended without reaching it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitError {
    /// The deadline passed.
    Timeout,
    /// The committed stream ended: the node is stopping.
    Stopped,
    /// Too many waiters already ([`WAITERS_MAX`]).
    Overloaded,
}

struct State {
    store: KvStore,
    /// Outcomes of recent commands by log index, oldest first.
    outcomes: VecDeque<(u64, Outcome)>,
    /// Entries applied since the last snapshot was handed to raft-mio.
    since_snapshot: u64,
    stopped: bool,
    /// Waiters of [`Replica::when_applied`] by the index they wait for.
    waiters: BTreeMap<u64, Vec<AppliedWaiter>>,
    /// The number of waiters in `waiters`.
    waiters_count: usize,
}

impl std::fmt::Debug for AppliedWaiters<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} waiters", self.0)
    }
}

/// How `State` shows its waiters in debug output (closures have no `Debug`).
struct AppliedWaiters<'a>(&'a usize);

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("applied_index", &self.store.applied_index())
            .field("keys", &self.store.len())
            .field("since_snapshot", &self.since_snapshot)
            .field("stopped", &self.stopped)
            .field("waiters", &AppliedWaiters(&self.waiters_count))
            .finish()
    }
}

impl State {
    /// The outcome of the command applied at `index`, if it is still remembered.
    fn outcome_at(&self, index: u64) -> Option<Outcome> {
        let found = self.outcomes.binary_search_by_key(&index, |(i, _)| *i);
        found.ok().map(|at| self.outcomes[at].1.clone())
    }

    /// Takes the waiters whose index has been applied, with their outcomes.
    fn take_ready_waiters(&mut self) -> Vec<(AppliedWaiter, Option<Outcome>)> {
        let applied = self.store.applied_index();
        if self
            .waiters
            .first_key_value()
            .is_none_or(|(i, _)| *i > applied)
        {
            return Vec::new();
        }
        let later = self.waiters.split_off(&(applied + 1));
        let ready = std::mem::replace(&mut self.waiters, later);
        let mut calls = Vec::new();
        for (index, waiters) in ready {
            let outcome = self.outcome_at(index);
            calls.extend(waiters.into_iter().map(|w| (w, outcome.clone())));
        }
        self.waiters_count -= calls.len();
        calls
    }

    fn apply(&mut self, item: Committed<Command>) -> Result<(), String> {
        match item {
            Committed::Command { index, command, .. } => {
                let outcome = self.store.apply(index.0, &command);
                if self.outcomes.len() >= OUTCOMES_MAX {
                    self.outcomes.pop_front();
                }
                self.outcomes.push_back((index.0, outcome));
                self.since_snapshot += 1;
            }
            Committed::Noop { index, .. }
            | Committed::Membership { index, .. }
            | Committed::Addresses { index, .. } => {
                self.store.apply_noop(index.0);
                self.since_snapshot += 1;
            }
            Committed::Undecodable { index, error, .. } => {
                // Every replica sees the same bytes and skips them alike.
                tracing::warn!(%index, %error, "skipping a committed entry that does not decode");
                self.store.apply_noop(index.0);
                self.since_snapshot += 1;
            }
            Committed::Restore { meta, data } => {
                self.store
                    .restore(&data)
                    .map_err(|e| format!("snapshot at {}: {e}", meta.last_index))?;
                self.outcomes.clear();
                self.since_snapshot = 0;
                tracing::info!(last_index = %meta.last_index, keys = self.store.len(), "restored a snapshot");
            }
        }
        Ok(())
    }
}

/// The store and the applied index, shared by the applier and the front ends.
#[derive(Debug)]
pub struct Replica {
    state: Mutex<State>,
    applied: Condvar,
}

impl Default for Replica {
    fn default() -> Self {
        Replica::new()
    }
}

impl Replica {
    /// An empty replica (raft-mio replays the log, or a snapshot, into it).
    pub fn new() -> Replica {
        Replica {
            state: Mutex::new(State {
                store: KvStore::new(),
                outcomes: VecDeque::new(),
                since_snapshot: 0,
                stopped: false,
                waiters: BTreeMap::new(),
                waiters_count: 0,
            }),
            applied: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the store consistent (KvStore
        // mutates after its checks), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies one item of the committed stream. An error means the replica cannot go
    /// on (a snapshot that does not decode): the node must stop.
    pub fn apply(&self, item: Committed<Command>) -> Result<(), String> {
        self.apply_all(std::iter::once(item))
    }

    /// Applies items of the committed stream under one lock, then wakes the waiters
    /// once: a batch of commits costs each waiting request one wake-up, not one per
    /// entry.
    pub fn apply_all(
        &self,
        items: impl IntoIterator<Item = Committed<Command>>,
    ) -> Result<(), String> {
        let mut state = self.lock();
        let mut result = Ok(());
        for item in items {
            result = state.apply(item);
            if result.is_err() {
                break;
            }
        }
        let ready = state.take_ready_waiters();
        drop(state);
        self.applied.notify_all();
        // Called without the lock: a waiter may read the store.
        for (waiter, outcome) in ready {
            waiter(Ok(outcome));
        }
        result
    }

    /// Marks the replica stopped and wakes every waiter.
    pub fn stop(&self) {
        let mut state = self.lock();
        state.stopped = true;
        let waiters = std::mem::take(&mut state.waiters);
        state.waiters_count = 0;
        drop(state);
        self.applied.notify_all();
        for waiter in waiters.into_values().flatten() {
            waiter(Err(WaitError::Stopped));
        }
    }

    /// Calls `then` once the store has applied `index` (at once, on this thread, if
    /// it has), with the outcome of the command there; or with why it never will
    /// (the node stops). Otherwise `then` runs on the applier's thread, so it must be
    /// quick: hand the answer to the front end's loop. The event-loop form of
    /// [`wait_outcome`](Self::wait_outcome), without a deadline: the caller keeps its
    /// own.
    pub fn when_applied(
        &self,
        index: u64,
        then: impl FnOnce(Result<Option<Outcome>, WaitError>) + Send + 'static,
    ) {
        let mut state = self.lock();
        if state.store.applied_index() >= index {
            let outcome = state.outcome_at(index);
            drop(state);
            return then(Ok(outcome));
        }
        if state.stopped {
            drop(state);
            return then(Err(WaitError::Stopped));
        }
        if state.waiters_count >= WAITERS_MAX {
            drop(state);
            return then(Err(WaitError::Overloaded));
        }
        state.waiters.entry(index).or_default().push(Box::new(then));
        state.waiters_count += 1;
    }

    /// The index of the last entry applied.
    pub fn applied_index(&self) -> u64 {
        self.lock().store.applied_index()
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.lock().store.len()
    }

    /// Whether the store holds no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of `key` in the applied state.
    pub fn get(&self, key: &str) -> Option<String> {
        self.lock().store.get(key).map(str::to_string)
    }

    /// Waits until the store has applied `index`, or `deadline` passes.
    pub fn wait_applied(&self, index: u64, deadline: Instant) -> Result<(), WaitError> {
        self.wait(index, deadline).map(drop)
    }

    /// Waits until the store has applied `index`, then returns the outcome of the
    /// command there (`None` if it is no longer remembered or came with a snapshot).
    pub fn wait_outcome(
        &self,
        index: u64,
        deadline: Instant,
    ) -> Result<Option<Outcome>, WaitError> {
        Ok(self.wait(index, deadline)?.outcome_at(index))
    }

    fn wait(&self, index: u64, deadline: Instant) -> Result<MutexGuard<'_, State>, WaitError> {
        let mut state = self.lock();
        loop {
            if state.store.applied_index() >= index {
                return Ok(state);
            }
            if state.stopped {
                return Err(WaitError::Stopped);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(WaitError::Timeout);
            }
            state = self
                .applied
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// If `every` entries were applied since the last snapshot, the store's snapshot
    /// and the index it covers (and the count starts again).
    fn due_snapshot(&self, every: u64) -> Option<(u64, Vec<u8>)> {
        let mut state = self.lock();
        if every == 0 || state.since_snapshot < every {
            return None;
        }
        state.since_snapshot = 0;
        Some((state.store.applied_index(), state.store.snapshot()))
    }

    /// The store's snapshot and the index it covers, now.
    pub fn snapshot(&self) -> (u64, Vec<u8>) {
        let mut state = self.lock();
        state.since_snapshot = 0;
        (state.store.applied_index(), state.store.snapshot())
    }
}

/// Starts the applier thread: it applies the committed stream to `replica` until the
/// node stops, and every `snapshot_every_entries` entries (0: never) hands raft-mio a
/// snapshot so that the log before it can be dropped. The thread ends with an error
/// if the replica cannot apply the stream (the node must then stop).
pub fn spawn_applier(
    mut committed: CommittedStream<Command>,
    replica: Arc<Replica>,
    client: Client<Command>,
    snapshot_every_entries: u64,
) -> std::io::Result<JoinHandle<Result<(), String>>> {
    std::thread::Builder::new()
        .name("kv-applier".into())
        .spawn(move || {
            let mut result = Ok(());
            while let Ok(first) = committed.recv() {
                // Take whatever else is ready too, up to a bound, and apply it at once.
                let mut batch = vec![first];
                while batch.len() < APPLY_BATCH_MAX {
                    match committed.try_recv() {
                        Ok(item) => batch.push(item),
                        Err(_) => break,
                    }
                }
                if let Err(e) = replica.apply_all(batch) {
                    tracing::error!("cannot apply the committed stream: {e}; stopping");
                    result = Err(format!("cannot apply the committed stream: {e}"));
                    break;
                }
                if let Some((index, data)) = replica.due_snapshot(snapshot_every_entries) {
                    tracing::info!(%index, bytes = data.len(), "taking a snapshot");
                    if client.compact(LogIndex(index), data).is_err() {
                        break;
                    }
                }
            }
            replica.stop();
            result
        })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kv_model::{ClientId, Operation, RequestSeq};
    use raft_core::Term;

    use super::*;

    fn put(index: u64, client: u64, seq: u64, key: &str, value: &str) -> Committed<Command> {
        Committed::Command {
            index: LogIndex(index),
            term: Term(1),
            command: Command {
                client: ClientId(client),
                seq: RequestSeq(seq),
                op: Operation::Put {
                    key: key.into(),
                    value: value.into(),
                },
            },
        }
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[test]
    fn a_waiter_sees_the_outcome_of_its_index() {
        let replica = Arc::new(Replica::new());
        let waiter = {
            let replica = Arc::clone(&replica);
            std::thread::spawn(move || replica.wait_outcome(2, soon()))
        };
        replica
            .apply(Committed::Noop {
                index: LogIndex(1),
                term: Term(1),
            })
            .unwrap();
        replica.apply(put(2, 7, 1, "k", "v")).unwrap();
        assert_eq!(waiter.join().unwrap(), Ok(Some(Outcome::Put)));
        assert_eq!(replica.get("k").as_deref(), Some("v"));
        assert_eq!(replica.applied_index(), 2);
    }

    #[test]
    fn a_retried_request_applies_once_and_an_older_one_is_stale() {
        let replica = Replica::new();
        replica.apply(put(1, 7, 1, "k", "first")).unwrap();
        replica.apply(put(2, 7, 2, "k", "second")).unwrap();
        replica.apply(put(3, 7, 1, "k", "first")).unwrap();
        assert_eq!(replica.get("k").as_deref(), Some("second"));
        assert_eq!(replica.wait_outcome(3, soon()), Ok(Some(Outcome::Stale)));
    }

    #[test]
    fn a_waiter_is_called_once_its_index_is_applied_or_the_replica_stops() {
        let replica = Replica::new();
        let (tx, rx) = std::sync::mpsc::channel();
        for index in [2, 1, 2, 3] {
            let tx = tx.clone();
            replica.when_applied(index, move |r| tx.send((index, r)).unwrap());
        }
        assert!(rx.try_recv().is_err(), "nothing is applied yet");
        replica.apply(put(1, 7, 1, "k", "a")).unwrap();
        assert_eq!(rx.try_recv().unwrap(), (1, Ok(Some(Outcome::Put))));
        replica.apply(put(2, 7, 2, "k", "b")).unwrap();
        assert_eq!(rx.try_recv().unwrap(), (2, Ok(Some(Outcome::Put))));
        assert_eq!(rx.try_recv().unwrap(), (2, Ok(Some(Outcome::Put))));
        assert!(rx.try_recv().is_err(), "index 3 is not applied");
        let now = {
            let tx = tx.clone();
            move |r| tx.send((1, r)).unwrap()
        };
        replica.when_applied(1, now);
        assert_eq!(
            rx.try_recv().unwrap(),
            (1, Ok(Some(Outcome::Put))),
            "applied: at once"
        );
        replica.stop();
        assert_eq!(rx.try_recv().unwrap(), (3, Err(WaitError::Stopped)));
        replica.when_applied(9, move |r| tx.send((9, r)).unwrap());
        assert_eq!(rx.try_recv().unwrap(), (9, Err(WaitError::Stopped)));
    }

    #[test]
    fn waits_end_at_the_deadline_or_when_stopped() {
        let replica = Replica::new();
        assert_eq!(
            replica.wait_applied(1, Instant::now()),
            Err(WaitError::Timeout)
        );
        replica.stop();
        assert_eq!(replica.wait_applied(1, soon()), Err(WaitError::Stopped));
    }

    #[test]
    fn a_snapshot_replaces_the_state() {
        let source = Replica::new();
        source.apply(put(1, 7, 1, "a", "1")).unwrap();
        source.apply(put(2, 7, 2, "b", "2")).unwrap();
        let (index, data) = source.snapshot();
        assert_eq!(index, 2);
        let target = Replica::new();
        target.apply(put(1, 9, 1, "stale", "x")).unwrap();
        let meta = raft_core::SnapshotMeta {
            last_index: LogIndex(2),
            last_term: Term(1),
            ..Default::default()
        };
        target
            .apply(Committed::Restore {
                meta,
                data: data.into(),
            })
            .unwrap();
        assert_eq!(target.get("stale"), None);
        assert_eq!(target.get("b").as_deref(), Some("2"));
        assert_eq!(target.applied_index(), 2);
        let garbage = Committed::Restore {
            meta: raft_core::SnapshotMeta::default(),
            data: vec![0xff; 3].into(),
        };
        assert!(target.apply(garbage).is_err());
    }

    #[test]
    fn snapshots_fall_due_every_n_entries() {
        let replica = Replica::new();
        for i in 1..=5 {
            replica.apply(put(i, 7, i, "k", "v")).unwrap();
        }
        assert_eq!(replica.due_snapshot(0), None);
        assert_eq!(replica.due_snapshot(6), None);
        assert_eq!(replica.due_snapshot(5).map(|(i, _)| i), Some(5));
        assert_eq!(replica.due_snapshot(5), None, "the count starts again");
    }
}
