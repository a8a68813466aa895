//! An in-memory [`Backend`] for the front ends' tests: a `KvStore` without Raft, that
//! either leads (applies writes at increasing indexes) or follows (redirects them).

use std::sync::Mutex;

use kv_model::{Command, KvStore, Operation, Outcome};

use crate::api::{Backend, Consistency, KvError, LeaderRef, RequestId, StatusReport, WriteAck};

/// A single-process store that plays leader or follower.
#[derive(Debug)]
pub struct MemoryBackend {
    store: Mutex<KvStore>,
    /// `None`: this node leads. `Some`: writes are redirected to this leader.
    leader: Option<LeaderRef>,
}

impl MemoryBackend {
    /// A backend that leads.
    pub fn leader() -> MemoryBackend {
        MemoryBackend {
            store: Mutex::new(KvStore::new()),
            leader: None,
        }
    }

    /// A backend that follows `leader`.
    pub fn follower_of(leader: LeaderRef) -> MemoryBackend {
        MemoryBackend {
            store: Mutex::new(KvStore::new()),
            leader: Some(leader),
        }
    }
}

impl Backend for MemoryBackend {
    fn write(&self, id: RequestId, op: Operation) -> Result<WriteAck, KvError> {
        if let Some(leader) = &self.leader {
            return Err(KvError::NotLeader {
                leader: Some(leader.clone()),
            });
        }
        let mut store = self.store.lock().unwrap();
        let index = store.applied_index() + 1;
        let command = Command {
            client: id.client,
            seq: id.seq,
            op,
        };
        match store.apply(index, &command) {
            Outcome::Stale => Err(KvError::StaleRequest(id)),
            _ => Ok(WriteAck { index }),
        }
    }

    fn get(&self, key: &str, _consistency: Consistency) -> Result<String, KvError> {
        let store = self.store.lock().unwrap();
        store.get(key).map(str::to_string).ok_or(KvError::NotFound)
    }

    fn snapshot(&self) -> Result<u64, KvError> {
        Ok(self.store.lock().unwrap().applied_index())
    }

    fn status(&self) -> Result<StatusReport, KvError> {
        let store = self.store.lock().unwrap();
        Ok(StatusReport {
            node: 1,
            role: if self.leader.is_none() {
                "leader"
            } else {
                "follower"
            }
            .into(),
            term: 1,
            leader: self.leader.clone(),
            commit_index: store.applied_index(),
            applied_index: store.applied_index(),
            last_index: store.applied_index(),
            snapshot_index: 0,
            keys: store.len(),
            peers: Vec::new(),
        })
    }
}
