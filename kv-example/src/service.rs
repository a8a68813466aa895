//! The key-value service over Raft: writes through the log, linearizable reads
//! through ReadIndex, both answered from the [`Replica`] once it has applied what the
//! answer depends on; membership changes through [`crate::membership`]. Where other
//! members serve (for `Leader is ADDR` and redirects) comes from raft-mio's
//! replicated address table.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kv_model::{Command, Operation, Outcome};
use raft_core::{DropReason, LogIndex, ReadFailure};
use raft_mio::{AppendError, Client, ReadError, UnknownFate};

use crate::addrs::{APP_CLIENT, APP_HTTP};
use crate::api::{
    Backend, Consistency, KvError, MembershipReport, MetricsReport, NewNode, PeerReport, RequestId,
    StatusReport, WriteAck,
};
use crate::drain::{InFlight, InFlightGuard};
use crate::leadership::{self, LEADERSHIP_TRANSFER_TIMEOUT};
use crate::membership::{self, leader_ref, membership_report};
use crate::replica::{Replica, WaitError};
use crate::ticket::Ticket;

/// A node's key-value service: the raft-mio client and the replica it applies into.
#[derive(Debug)]
pub struct KvService {
    client: Client<Command>,
    replica: Arc<Replica>,
    /// How long a request may wait for commit or for the replica to catch up.
    request_timeout: Duration,
    /// How long adding or removing a node may take.
    membership_timeout: Duration,
    /// Requests being served (see [`crate::drain`]).
    in_flight: InFlight,
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
            in_flight: InFlight::new(),
        }
    }

    /// The requests being served now, so that a stopping node can wait for their
    /// answers to go out.
    pub fn in_flight(&self) -> &InFlight {
        &self.in_flight
    }

    /// The raft-mio client (to shut the node down).
    pub fn client(&self) -> &Client<Command> {
        &self.client
    }

    /// The error for a wait on the replica after the write committed at `index`.
    fn wait_error(&self, error: WaitError, what: &'static str) -> KvError {
        match error {
            WaitError::Timeout => KvError::Timeout {
                what,
                after: self.request_timeout,
            },
            WaitError::Stopped => KvError::Stopped,
            WaitError::Overloaded => KvError::Unavailable(OVERLOADED.into()),
        }
    }
}

/// What a client is told when this node has too many requests waiting.
const OVERLOADED: &str = "this node has too many requests waiting; retry";

/// The error for a wait on the replica after the write committed at `index`.
fn apply_wait_error(error: WaitError, id: RequestId, index: u64) -> KvError {
    let why = match error {
        WaitError::Timeout => return KvError::not_applied_in_time(id, index),
        WaitError::Stopped => "is shutting down",
        WaitError::Overloaded => "had too many requests waiting",
    };
    KvError::CommittedNotApplied { id, index, why }
}

/// The answer to a write whose command was applied here with `outcome`.
fn write_answer(id: RequestId, index: u64, outcome: Option<Outcome>) -> Result<WriteAck, KvError> {
    if outcome == Some(Outcome::Stale) {
        return Err(KvError::StaleRequest(id));
    }
    Ok(WriteAck { index })
}

/// What a client is told about a read barrier raft-mio could not give.
fn read_error(error: ReadError) -> KvError {
    match error {
        ReadError::Failed(ReadFailure::NoLeader | ReadFailure::NotLeader) => KvError::Unavailable(
            "no leader to confirm a linearizable read; retry shortly (or use get --stale)".into(),
        ),
        ReadError::Failed(reason) => KvError::Unavailable(format!(
            "the leader could not confirm a linearizable read ({reason:?}); retry"
        )),
        ReadError::Shutdown => KvError::Stopped,
    }
}

/// What a client is told about a write raft-mio did not commit (`id` is the write's
/// request id). Only raft-mio's unknown fates become [`KvError::WriteUnknown`]; every
/// other answer says the write was not applied, which raft-mio guarantees for them
/// (see `raft_mio::AppendError`).
pub fn write_error(id: RequestId, error: AppendError) -> KvError {
    let not_applied =
        |why: &str| KvError::Unavailable(format!("{why}; the write was not applied, retry"));
    match error {
        AppendError::NotLeader(hint) => KvError::NotLeader {
            leader: hint.as_ref().map(leader_ref),
        },
        AppendError::Dropped(DropReason::Overwritten) => {
            not_applied("the leader changed and another entry committed at the write's index")
        }
        AppendError::Dropped(DropReason::Transferring) => {
            not_applied("leadership is moving to another node")
        }
        AppendError::Dropped(DropReason::Overloaded) => not_applied("the leader is overloaded"),
        AppendError::Dropped(reason) => not_applied(&format!("the leader refused it ({reason:?})")),
        AppendError::TooLarge { bytes, max } => KvError::TooLarge { bytes, max },
        AppendError::Encode(e) => not_applied(&format!("cannot encode the write: {e}")),
        AppendError::Shutdown => KvError::Stopped,
        AppendError::Unknown(UnknownFate::NodeStopped) => KvError::WriteUnknown {
            id,
            why: "this node stopped while the write was in flight".into(),
        },
        AppendError::Unknown(UnknownFate::Compacted) => KvError::WriteUnknown {
            id,
            why: "a snapshot replaced this node's log before it could tell".into(),
        },
    }
}

impl Backend for KvService {
    fn begin_request(&self) -> Option<InFlightGuard> {
        Some(self.in_flight.begin())
    }

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
            .map_err(|e| write_error(id, e))?;
        let index = match proposal.wait_timeout(self.request_timeout) {
            None => return Err(KvError::not_committed_in_time(id, self.request_timeout)),
            Some(result) => result.map_err(|e| write_error(id, e))?,
        };
        // Committed; the answer waits until this replica has applied it, so that a
        // read of this node right after the answer sees it.
        let outcome = self
            .replica
            .wait_outcome(index.0, deadline)
            .map_err(|e| apply_wait_error(e, id, index.0))?;
        write_answer(id, index.0, outcome)
    }

    fn start_write(&self, id: RequestId, op: Operation, ticket: Ticket) {
        let command = Command {
            client: id.client,
            seq: id.seq,
            op,
        };
        let replica = Arc::clone(&self.replica);
        // Runs on raft-mio's loop: it only hands the index on. The answer waits until
        // this replica has applied the write (on the applier's thread), as in `write`.
        self.client
            .submit_then(&command, move |result| match result {
                Ok(index) => {
                    ticket.committed(index.0);
                    replica.when_applied(index.0, move |applied| {
                        let answer = applied.map_err(|e| apply_wait_error(e, id, index.0));
                        ticket
                            .written(answer.and_then(|outcome| write_answer(id, index.0, outcome)));
                    });
                }
                Err(e) => ticket.written(Err(write_error(id, e))),
            });
    }

    fn start_read_barrier(&self, ticket: Ticket) {
        let replica = Arc::clone(&self.replica);
        self.client.read_index_then(move |result| match result {
            Ok(index) => replica.when_applied(index.0, move |applied| {
                ticket.barrier(applied.map(drop).map_err(|e| match e {
                    WaitError::Overloaded => KvError::Unavailable(OVERLOADED.into()),
                    WaitError::Stopped | WaitError::Timeout => KvError::Stopped,
                }));
            }),
            Err(e) => ticket.barrier(Err(read_error(e))),
        });
    }

    fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    fn get(&self, key: &str, consistency: Consistency) -> Result<String, KvError> {
        if consistency == Consistency::Linearizable {
            let deadline = Instant::now() + self.request_timeout;
            let barrier = self.client.read_index().map_err(read_error)?;
            self.replica
                .wait_applied(barrier.0, deadline)
                .map_err(|e| self.wait_error(e, "this node to catch up for a read"))?;
        }
        self.replica.get(key).ok_or(KvError::NotFound)
    }

    fn metrics(&self) -> Result<MetricsReport, KvError> {
        let status = self.status()?;
        let raft = self.client.metrics().map_err(|_| KvError::Stopped)?;
        Ok(MetricsReport { status, raft })
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
            persisted_index: status.persisted_index.0,
            snapshot_index: status.snapshot_index.0,
            keys: self.replica.len(),
            peers,
            membership: membership_report(&status),
        })
    }
}

#[cfg(test)]
mod tests {
    use kv_model::{ClientId, RequestSeq};
    use raft_core::NodeId;
    use raft_mio::LeaderHint;

    use super::*;
    use crate::api::WriteOutcome;

    /// Every answer raft-mio can give for a write, through kv-example's mapping:
    /// raft-mio's unknown fates (and only those) are unknown to the client and name
    /// the request id to retry with; every other answer says the write was not
    /// applied (or names the leader, which refused it before appending).
    #[test]
    fn only_unknown_fates_ask_for_a_retry_and_the_rest_say_not_applied() {
        let id = RequestId {
            client: ClientId(7),
            seq: RequestSeq(3),
        };
        let hint = LeaderHint {
            id: NodeId(2),
            addr: Some("h2:7002".into()),
            app_addrs: [(APP_CLIENT.to_string(), "h2:8002".to_string())].into(),
        };
        let mut errors = vec![
            AppendError::NotLeader(Some(hint)),
            AppendError::NotLeader(None),
            AppendError::TooLarge { bytes: 9, max: 8 },
            AppendError::Encode("no".into()),
            AppendError::Shutdown,
            AppendError::Unknown(UnknownFate::NodeStopped),
            AppendError::Unknown(UnknownFate::Compacted),
        ];
        for reason in [
            DropReason::Overwritten,
            DropReason::Transferring,
            DropReason::Overloaded,
            DropReason::MembershipChangePending,
            DropReason::InvalidMembership,
        ] {
            errors.push(AppendError::Dropped(reason));
        }
        for error in errors {
            let unknown = error.is_unknown();
            let answer = write_error(id, error.clone());
            let text = answer.to_string();
            if unknown {
                assert_eq!(answer.write_outcome(), WriteOutcome::Unknown, "{error:?}");
                assert!(text.contains("fate is unknown"), "{text}");
                assert!(text.contains("--req 7:3"), "{text}");
            } else {
                assert_eq!(
                    answer.write_outcome(),
                    WriteOutcome::NotApplied,
                    "{error:?}"
                );
                assert!(
                    text.contains("not applied") || text.starts_with("Leader is "),
                    "{error:?}: {text}"
                );
                assert!(!text.contains("unknown"), "{text}");
            }
        }
    }
}
