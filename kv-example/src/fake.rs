//! An in-memory [`Backend`] for the front ends' tests: a `KvStore` without Raft, that
//! either leads (applies writes at increasing indexes, changes its membership at
//! once) or follows (redirects them).

use std::sync::Mutex;

use kv_model::{Command, KvStore, Operation, Outcome};

use crate::api::{
    Backend, Consistency, KvError, LeaderRef, MemberReport, MembershipReport, MetricsReport,
    NewNode, RequestId, StatusReport, WriteAck,
};
use crate::ticket::Ticket;

/// A single-process store that plays leader or follower.
#[derive(Debug)]
pub struct MemoryBackend {
    store: Mutex<KvStore>,
    /// The voters (node 1 and whoever was added).
    members: Mutex<Vec<NewNode>>,
    /// `None`: this node leads. `Some`: writes are redirected to this leader.
    leader: Option<LeaderRef>,
}

impl MemoryBackend {
    /// A backend that leads.
    pub fn leader() -> MemoryBackend {
        MemoryBackend {
            store: Mutex::new(KvStore::new()),
            members: Mutex::new(vec![NewNode {
                id: 1,
                raft_addr: "127.0.0.1:7001".into(),
                client_addr: "127.0.0.1:8001".into(),
                http_addr: "127.0.0.1:9001".into(),
            }]),
            leader: None,
        }
    }

    /// A backend that follows node 1 at `127.0.0.1:8001` (and, `with_http`, at
    /// `127.0.0.1:9001` over HTTP).
    pub fn follower_of_node_1(with_http: bool) -> MemoryBackend {
        MemoryBackend::follower_of(LeaderRef {
            id: 1,
            client_addr: Some("127.0.0.1:8001".into()),
            http_addr: with_http.then(|| "127.0.0.1:9001".into()),
        })
    }

    /// A backend that follows `leader`.
    pub fn follower_of(leader: LeaderRef) -> MemoryBackend {
        MemoryBackend {
            store: Mutex::new(KvStore::new()),
            members: Mutex::new(vec![NewNode {
                id: 1,
                raft_addr: "127.0.0.1:7001".into(),
                client_addr: "127.0.0.1:8001".into(),
                http_addr: "127.0.0.1:9001".into(),
            }]),
            leader: Some(leader),
        }
    }
}

impl Backend for MemoryBackend {
    fn start_read_barrier(&self, ticket: Ticket) {
        // One store, no replicas: every read sees every write before it.
        ticket.barrier(Ok(()));
    }

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

    fn add_node(&self, node: &NewNode) -> Result<MembershipReport, KvError> {
        self.check_leader()?;
        node.validate().map_err(KvError::Invalid)?;
        let mut members = self.members.lock().unwrap();
        members.retain(|m| m.id != node.id);
        members.push(node.clone());
        Ok(report(&members))
    }

    fn remove_node(&self, id: u64) -> Result<MembershipReport, KvError> {
        self.check_leader()?;
        let mut members = self.members.lock().unwrap();
        if !members.iter().any(|m| m.id == id) {
            return Err(KvError::NotMember(id));
        }
        members.retain(|m| m.id != id);
        Ok(report(&members))
    }

    fn snapshot(&self) -> Result<u64, KvError> {
        Ok(self.store.lock().unwrap().applied_index())
    }

    fn transfer_leader(&self, id: u64) -> Result<(), KvError> {
        self.check_leader()?;
        let members = self.members.lock().unwrap();
        if !members.iter().any(|m| m.id == id) {
            return Err(KvError::NotMember(id));
        }
        Ok(())
    }

    fn metrics(&self) -> Result<MetricsReport, KvError> {
        let raft = raft_mio::NodeMetrics {
            proposals_committed: self.store.lock().unwrap().applied_index(),
            ..Default::default()
        };
        Ok(MetricsReport {
            status: self.status()?,
            raft,
        })
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
            persisted_index: store.applied_index(),
            snapshot_index: 0,
            keys: store.len(),
            peers: Vec::new(),
            membership: report(&self.members.lock().unwrap()),
        })
    }
}

impl MemoryBackend {
    fn check_leader(&self) -> Result<(), KvError> {
        match &self.leader {
            None => Ok(()),
            Some(leader) => Err(KvError::NotLeader {
                leader: Some(leader.clone()),
            }),
        }
    }
}

fn report(members: &[NewNode]) -> MembershipReport {
    let mut voters: Vec<u64> = members.iter().map(|m| m.id).collect();
    voters.sort_unstable();
    MembershipReport {
        voters,
        members: members
            .iter()
            .map(|m| MemberReport {
                id: m.id,
                role: "voter".into(),
                raft_addr: Some(m.raft_addr.clone()),
                client_addr: Some(m.client_addr.clone()),
                http_addr: Some(m.http_addr.clone()),
            })
            .collect(),
        ..MembershipReport::default()
    }
}
