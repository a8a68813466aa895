//! The key-value service over Raft: writes through the log, linearizable reads
//! through ReadIndex, both answered from the [`Replica`] once it has applied what the
//! answer depends on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kv_model::{Command, Operation, Outcome};
use raft_core::{DropReason, LogIndex, NodeId, ReadFailure};
use raft_mio::{AppendError, Client, LeaderHint, ReadError};

use crate::addrs::Directory;
use crate::api::{
    Backend, Consistency, KvError, LeaderRef, PeerReport, RequestId, StatusReport, WriteAck,
};
use crate::replica::{Replica, WaitError};

/// A node's key-value service: the raft-mio client, the replica it applies into, and
/// the directory of client addresses for redirects.
#[derive(Debug)]
pub struct KvService {
    client: Client<Command>,
    replica: Arc<Replica>,
    directory: Arc<Directory>,
    /// How long a request may wait for commit or for the replica to catch up.
    request_timeout: Duration,
}

impl KvService {
    /// The service of a started node.
    pub fn new(
        client: Client<Command>,
        replica: Arc<Replica>,
        directory: Arc<Directory>,
        request_timeout: Duration,
    ) -> KvService {
        assert!(
            !request_timeout.is_zero(),
            "a request timeout must be positive"
        );
        KvService {
            client,
            replica,
            directory,
            request_timeout,
        }
    }

    /// The raft-mio client (to shut the node down).
    pub fn client(&self) -> &Client<Command> {
        &self.client
    }

    fn leader_ref(&self, id: NodeId) -> LeaderRef {
        let addrs = self.directory.get(id);
        LeaderRef {
            id: id.0,
            client_addr: addrs.map(|a| a.client.clone()),
            http_addr: addrs.map(|a| a.http.clone()),
        }
    }

    fn append_error(&self, error: AppendError) -> KvError {
        match error {
            AppendError::NotLeader(hint) => KvError::NotLeader {
                leader: hint.map(|LeaderHint { id, .. }| self.leader_ref(id)),
            },
            AppendError::Dropped(DropReason::Overwritten) => KvError::Unavailable(
                "the leader changed before the write committed; it was not applied, retry".into(),
            ),
            AppendError::Dropped(DropReason::Transferring) => KvError::Unavailable(
                "leadership is moving to another node; the write was not applied, retry".into(),
            ),
            AppendError::Dropped(DropReason::Overloaded) => KvError::Unavailable(
                "the leader is overloaded; the write was not applied, retry".into(),
            ),
            AppendError::Dropped(other) => KvError::Unavailable(format!(
                "the write's fate is unknown ({other:?}); retry it with the same --req"
            )),
            AppendError::Encode(e) => KvError::Unavailable(format!("cannot encode the write: {e}")),
            AppendError::Shutdown => KvError::Stopped,
        }
    }

    fn wait_error(&self, error: WaitError, what: &'static str) -> KvError {
        match error {
            WaitError::Timeout => KvError::Timeout {
                what,
                after: self.request_timeout,
            },
            WaitError::Stopped => KvError::Stopped,
        }
    }
}

impl Backend for KvService {
    fn snapshot(&self) -> Result<u64, KvError> {
        let (index, data) = self.replica.snapshot();
        if index == 0 {
            return Err(KvError::Unavailable(
                "nothing is applied yet; there is nothing to snapshot".into(),
            ));
        }
        // raft-mio ignores a snapshot that is not newer than the one it has.
        self.client
            .compact(LogIndex(index), data)
            .map_err(|_| KvError::Stopped)?;
        Ok(index)
    }

    fn write(&self, id: RequestId, op: Operation) -> Result<WriteAck, KvError> {
        let deadline = Instant::now() + self.request_timeout;
        let command = Command {
            client: id.client,
            seq: id.seq,
            op,
        };
        let proposal = self
            .client
            .submit(&command)
            .map_err(|e| self.append_error(e))?;
        let index = match proposal.wait_timeout(self.request_timeout) {
            None => {
                return Err(KvError::Timeout {
                    what: "the write to commit",
                    after: self.request_timeout,
                })
            }
            Some(result) => result.map_err(|e| self.append_error(e))?,
        };
        // Committed; the answer waits until this replica has applied it, so that a
        // read of this node right after the answer sees it.
        let outcome = self
            .replica
            .wait_outcome(index.0, deadline)
            .map_err(|e| self.wait_error(e, "the committed write to be applied"))?;
        if outcome == Some(Outcome::Stale) {
            return Err(KvError::StaleRequest(id));
        }
        Ok(WriteAck { index: index.0 })
    }

    fn get(&self, key: &str, consistency: Consistency) -> Result<String, KvError> {
        if consistency == Consistency::Linearizable {
            let deadline = Instant::now() + self.request_timeout;
            let barrier = self.client.read_index().map_err(|e| match e {
                ReadError::Failed(ReadFailure::NoLeader | ReadFailure::NotLeader) => {
                    KvError::Unavailable(
                        "no leader to confirm a linearizable read; retry shortly \
                         (or use get --stale)"
                            .into(),
                    )
                }
                ReadError::Failed(reason) => KvError::Unavailable(format!(
                    "the leader could not confirm a linearizable read ({reason:?}); retry"
                )),
                ReadError::Shutdown => KvError::Stopped,
            })?;
            self.replica
                .wait_applied(barrier.0, deadline)
                .map_err(|e| self.wait_error(e, "this node to catch up for a read"))?;
        }
        self.replica.get(key).ok_or(KvError::NotFound)
    }

    fn status(&self) -> Result<StatusReport, KvError> {
        // Read the applied index first: it is then at most the commit index read after.
        let applied_index = self.replica.applied_index();
        let status = self.client.status().map_err(|_| KvError::Stopped)?;
        let peers = status
            .peers
            .iter()
            .map(|peer| {
                let addrs = self.directory.get(peer.id);
                PeerReport {
                    id: peer.id.0,
                    raft_addr: peer.addr.clone(),
                    client_addr: addrs.map(|a| a.client.clone()),
                    http_addr: addrs.map(|a| a.http.clone()),
                    connected: peer.connected,
                    match_index: status.replication.get(&peer.id).map(|p| p.match_index.0),
                }
            })
            .collect();
        Ok(StatusReport {
            node: status.id.0,
            role: status.role.to_string(),
            term: status.term.0,
            leader: status.leader.map(|hint| self.leader_ref(hint.id)),
            commit_index: status.commit_index.0,
            applied_index,
            last_index: status.last_index.0,
            snapshot_index: status.snapshot_index.0,
            keys: self.replica.len(),
            peers,
        })
    }
}
