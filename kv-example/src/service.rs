//! The key-value service over Raft: writes through the log, linearizable reads
//! through ReadIndex, both answered from the [`Replica`] once it has applied what the
//! answer depends on; membership changes through [`crate::membership`]. Where other
//! members serve (for `Leader is ADDR` and redirects) comes from raft-mio's
//! replicated address table.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kv_model::{Command, Operation, Outcome};
use raft_core::{DropReason, LogIndex, ReadFailure};
use raft_mio::{AppendError, Client, ReadError};

use crate::addrs::{APP_CLIENT, APP_HTTP};
use crate::api::{
    Backend, Consistency, KvError, MembershipReport, NewNode, PeerReport, RequestId, StatusReport,
    WriteAck,
};
use crate::leadership::{self, LEADERSHIP_TRANSFER_TIMEOUT};
use crate::membership::{self, leader_ref, membership_report};
use crate::replica::{Replica, WaitError};

/// A node's key-value service: the raft-mio client and the replica it applies into.
#[derive(Debug)]
pub struct KvService {
    client: Client<Command>,
    replica: Arc<Replica>,
    /// How long a request may wait for commit or for the replica to catch up.
    request_timeout: Duration,
    /// How long adding or removing a node may take.
    membership_timeout: Duration,
}

impl KvService {
    /// The service of a started node.
    pub fn new(
        client: Client<Command>,
        replica: Arc<Replica>,
        request_timeout: Duration,
    ) -> KvService {
        assert!(
            !request_timeout.is_zero(),
            "a request timeout must be positive"
        );
        KvService {
            client,
            replica,
            request_timeout,
            membership_timeout: membership::MEMBERSHIP_CHANGE_TIMEOUT.max(request_timeout),
        }
    }

    /// The raft-mio client (to shut the node down).
    pub fn client(&self) -> &Client<Command> {
        &self.client
    }

    fn append_error(&self, error: AppendError) -> KvError {
        match error {
            AppendError::NotLeader(hint) => KvError::NotLeader {
                leader: hint.as_ref().map(leader_ref),
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
    fn add_node(&self, node: &NewNode) -> Result<MembershipReport, KvError> {
        membership::add_node(&self.client, node, self.membership_timeout)
    }

    fn remove_node(&self, id: u64) -> Result<MembershipReport, KvError> {
        membership::remove_node(&self.client, id, self.membership_timeout)
    }

    fn transfer_leader(&self, id: u64) -> Result<(), KvError> {
        leadership::transfer_leader(&self.client, id, LEADERSHIP_TRANSFER_TIMEOUT)
    }

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
                let addrs = status.members.get(&peer.id);
                let app = |name: &str| addrs.and_then(|a| a.app(name)).map(str::to_string);
                PeerReport {
                    id: peer.id.0,
                    raft_addr: peer.addr.clone(),
                    client_addr: app(APP_CLIENT),
                    http_addr: app(APP_HTTP),
                    connected: peer.connected,
                    match_index: status.replication.get(&peer.id).map(|p| p.match_index.0),
                }
            })
            .collect();
        Ok(StatusReport {
            node: status.id.0,
            role: status.role.to_string(),
            term: status.term.0,
            leader: status.leader.as_ref().map(leader_ref),
            commit_index: status.commit_index.0,
            applied_index,
            last_index: status.last_index.0,
            snapshot_index: status.snapshot_index.0,
            keys: self.replica.len(),
            peers,
            membership: membership_report(&status),
        })
    }
}
