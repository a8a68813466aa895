//! The configuration of a raft-mio node: who it is, where its peers are, where its data
//! lives, and the bounds of its queues.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

// One error type for a field out of range, whichever layer checks it: the shell's
// fields are named as they are here (`tick_interval`), the core's as in
// `raft_core::Config` (they reach callers through `StartError::Core`).
pub use raft_core::ConfigError;
use raft_core::NodeId;

use crate::bounds;
use crate::members::{AddrTable, MemberAddrs};
use crate::storage::StorageOptions;
use crate::transport::tls::TlsSettings;
use crate::transport::TransportSettings;

/// The default election timeout of a raft-mio node, in ticks of the default 10 ms.
pub const ELECTION_TIMEOUT_TICKS_MIN: u32 = 30;
/// The upper end of the randomized election timeout.
pub const ELECTION_TIMEOUT_TICKS_MAX: u32 = 60;

/// Where the node listens for its peers.
#[derive(Debug)]
pub enum Listen {
    /// Bind this address (`host:port`; a host name is resolved once at start).
    Addr(String),
    /// Use this already bound listener (tests bind port 0 first to learn the port).
    Listener(std::net::TcpListener),
}

/// The configuration of one node.
#[derive(Debug)]
pub struct RaftConfig {
    /// This node.
    pub id: NodeId,
    /// Every initial member, this node included: id to `host:port` (DNS names or IPs).
    /// For a node that joins a running cluster ([`join_existing`](Self::join_existing)),
    /// the members it can reach before it has learned the replicated address table
    /// (at least the leader; simplest, every current member).
    pub peers: BTreeMap<NodeId, String>,
    /// The application's addresses of the members in `peers` (for example their
    /// client ports), by name. They are published in the replicated address table,
    /// so every node, including ones added later, learns them (see
    /// [`members`](crate::members)).
    pub app_addrs: BTreeMap<NodeId, BTreeMap<String, String>>,
    /// The cluster's id: nodes of other clusters are refused at the handshake.
    pub cluster_id: u64,
    /// The data directory (created if missing; locked while the node runs).
    pub data_dir: PathBuf,
    /// Where to listen; by default this node's own address in `peers`.
    pub listen: Option<Listen>,
    /// The wall-clock length of one core tick.
    pub tick_interval: Duration,
    /// The core's configuration (timeouts in ticks, flow-control bounds).
    pub core: raft_core::Config,
    /// Storage behaviour (segment size, fsync).
    pub storage: StorageOptions,
    /// The largest frame body sent or accepted, in bytes.
    pub frame_bytes_max: usize,
    /// The largest encoded command a client may propose, in bytes; larger ones are
    /// refused with [`AppendError::TooLarge`](crate::AppendError::TooLarge) before
    /// they reach the log. Validation checks that every AppendEntries the core can
    /// build from such commands fits `frame_bytes_max`, and every entry a log record
    /// (see [`crate::bounds`]). Set the same value on every node.
    pub command_bytes_max: usize,
    /// The most bytes queued for one peer before frames are dropped.
    pub write_queue_bytes_max: usize,
    /// The most frames queued for one peer before frames are dropped.
    pub write_queue_frames_max: usize,
    /// The first delay before redialing a peer.
    pub reconnect_delay_min: Duration,
    /// The cap on the redial delay.
    pub reconnect_delay_max: Duration,
    /// An accepted peer connection must finish its handshake within this time.
    pub handshake_timeout: Duration,
    /// A dial to a peer must connect and finish its handshake within this time, or
    /// it is abandoned and redialed (see the README's timeouts).
    pub connect_timeout: Duration,
    /// A peer that sent nothing for this long while this node waited for its answer
    /// (to a heartbeat, an append, a vote request) is reconnected: a link cut by the
    /// network recovers on a fresh connection as soon as it heals.
    pub peer_silence_timeout: Duration,
    /// `TCP_USER_TIMEOUT` of peer sockets (Linux; `None`: the system default).
    pub tcp_user_timeout: Option<Duration>,
    /// Mutual TLS between peers (off by default): see [`transport::tls`](crate::transport::tls).
    pub tls: Option<TlsSettings>,
    /// The most client commands waiting for the loop; a full queue blocks callers.
    pub client_queue_max: usize,
    /// The most committed batches queued for the application's stream.
    pub committed_queue_max: usize,
    /// When the stream is full, up to this many committed entries wait inside the
    /// loop (which keeps serving its peers); beyond it the loop blocks until the
    /// application catches up (back-pressure with bounded memory).
    pub committed_backlog_entries_max: usize,
    /// The most `fdatasync`s in flight at once (one thread each). With more than one,
    /// a write made while a sync runs is covered by the next one at once instead of
    /// after the running one finishes (bench, 16 in flight: 1 thread 26k commits/s,
    /// 2 threads 36k, 3 threads 42-45k; the CPU per commit does not grow).
    pub fsyncs_in_flight_max: usize,
    /// The most proposals stepped into the core as one batch.
    pub proposal_batch_max: usize,
    /// On a new cluster (empty storage, term 0), campaign as soon as this node is
    /// connected to enough voters to win, instead of waiting for a randomized
    /// election timeout: the cluster's first leader is then this node (unless
    /// another election started first). Set it on at most one founding member.
    pub campaign_at_bootstrap: bool,
}

impl RaftConfig {
    /// A configuration for node `id` of a cluster whose members are `peers` (id and
    /// `host:port`, including this node), with defaults for everything else.
    pub fn new<A: Into<String>>(id: NodeId, peers: impl IntoIterator<Item = (NodeId, A)>) -> Self {
        let peers: BTreeMap<NodeId, String> =
            peers.into_iter().map(|(id, a)| (id, a.into())).collect();
        let mut core = raft_core::Config::new(id, peers.keys().copied());
        core.seed = id.0;
        // Over real networks an election timeout must outlast a lost packet: TCP
        // resends it after at least 200 ms (its minimum RTO), and a lost resend
        // doubles that. 300 to 600 ms (30 to 60 ticks of 10 ms) rides out one lost
        // resend; the core's 100 to 200 ms did not (see the README's timeouts).
        core.election_timeout_ticks_min = ELECTION_TIMEOUT_TICKS_MIN;
        core.election_timeout_ticks_max = ELECTION_TIMEOUT_TICKS_MAX;
        core.read_timeout_ticks = ELECTION_TIMEOUT_TICKS_MIN;
        RaftConfig {
            id,
            peers,
            app_addrs: BTreeMap::new(),
            cluster_id: 1,
            data_dir: PathBuf::from(format!("data/node{}", id.0)),
            listen: None,
            tick_interval: Duration::from_millis(10),
            core,
            storage: StorageOptions::default(),
            frame_bytes_max: 16 << 20,
            command_bytes_max: 4 << 20,
            write_queue_bytes_max: 32 << 20,
            write_queue_frames_max: 65_536,
            reconnect_delay_min: Duration::from_millis(20),
            reconnect_delay_max: Duration::from_millis(500),
            handshake_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_millis(500),
            peer_silence_timeout: Duration::from_secs(2),
            tcp_user_timeout: Some(Duration::from_secs(3)),
            tls: None,
            client_queue_max: 65_536,
            committed_queue_max: 4_096,
            committed_backlog_entries_max: 1 << 20,
            proposal_batch_max: 4_096,
            fsyncs_in_flight_max: 3,
            campaign_at_bootstrap: false,
        }
    }

    /// Sets the application's addresses of member `id` (one of `peers`), for example
    /// `[("client", "10.0.0.1:8001")]`.
    pub fn app_addrs<K: Into<String>, V: Into<String>>(
        mut self,
        id: NodeId,
        addrs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let addrs = addrs.into_iter().map(|(k, v)| (k.into(), v.into()));
        self.app_addrs.entry(id).or_default().extend(addrs);
        self
    }

    /// The configured addresses of every member in `peers`.
    pub(crate) fn member_addrs(&self) -> AddrTable {
        self.peers
            .iter()
            .map(|(id, raft)| {
                let app = self.app_addrs.get(id).cloned().unwrap_or_default();
                let addrs = MemberAddrs {
                    raft: raft.clone(),
                    app,
                };
                (*id, addrs)
            })
            .collect()
    }

    /// Sets the data directory.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = dir.into();
        self
    }

    /// Sets the cluster id.
    pub fn cluster_id(mut self, cluster_id: u64) -> Self {
        self.cluster_id = cluster_id;
        self
    }

    /// Listens on `addr` instead of this node's address in `peers` (for example
    /// `0.0.0.0:7000` behind a container's published address).
    pub fn listen_addr(mut self, addr: impl Into<String>) -> Self {
        self.listen = Some(Listen::Addr(addr.into()));
        self
    }

    /// Listens on an already bound listener.
    pub fn listener(mut self, listener: std::net::TcpListener) -> Self {
        self.listen = Some(Listen::Listener(listener));
        self
    }

    /// Sets the largest command a client may propose (see
    /// [`command_bytes_max`](Self::command_bytes_max)).
    pub fn command_bytes_max(mut self, bytes: usize) -> Self {
        self.command_bytes_max = bytes;
        self
    }

    /// Sets the tick interval.
    pub fn tick_interval(mut self, interval: Duration) -> Self {
        self.tick_interval = interval;
        self
    }

    /// Turns fsync on or off (off: benchmarks and tests only).
    pub fn fsync(mut self, on: bool) -> Self {
        self.storage.fsync = on;
        self
    }

    /// Turns on mutual TLS between peers with these settings.
    pub fn tls(mut self, settings: TlsSettings) -> Self {
        self.tls = Some(settings);
        self
    }

    /// Starts this node as one that waits to be added to an existing cluster (with
    /// `Client::change_membership` on the leader) instead of founding a new one:
    /// it neither campaigns nor votes until the leader's log names it a member.
    /// `peers` then names this node and the members it can reach first; the rest it
    /// learns from the log.
    pub fn join_existing(mut self) -> Self {
        self.core.initial_voters.clear();
        self.core.initial_learners.clear();
        self
    }

    /// Makes this node the preferred first leader of a new cluster (see
    /// [`campaign_at_bootstrap`](Self::campaign_at_bootstrap)).
    pub fn campaign_at_bootstrap(mut self) -> Self {
        self.campaign_at_bootstrap = true;
        self
    }

    /// Adjusts the core's configuration.
    pub fn core(mut self, adjust: impl FnOnce(&mut raft_core::Config)) -> Self {
        adjust(&mut self.core);
        self
    }

    /// Checks the shell's fields (the core checks its own when the node is built).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field: &'static str, reason: &'static str| Err(ConfigError { field, reason });
        if !self.id.is_valid() {
            return bad("id", "node id 0 is reserved");
        }
        if self.core.id != self.id {
            return bad("core.id", "must equal id");
        }
        if !self.peers.contains_key(&self.id) && self.listen.is_none() {
            return bad("peers", "must name this node's address, or set listen");
        }
        if self.app_addrs.keys().any(|id| !self.peers.contains_key(id)) {
            return bad("app_addrs", "names a node that is not among the peers");
        }
        if self.tick_interval.is_zero() {
            return bad("tick_interval", "must be positive");
        }
        // serde preallocates up to 1 MiB for a sequence whatever its claimed length, so
        // smaller frames would not bound a peer's allocations any tighter.
        if self.frame_bytes_max < 1 << 20 {
            return bad("frame_bytes_max", "must be at least 1 MiB");
        }
        self.validate_sizes()?;
        if self.write_queue_bytes_max < self.frame_bytes_max {
            return bad(
                "write_queue_bytes_max",
                "must hold at least one maximal frame",
            );
        }
        if self.write_queue_frames_max == 0 {
            return bad("write_queue_frames_max", "must be at least 1");
        }
        if self.reconnect_delay_min.is_zero() || self.reconnect_delay_max < self.reconnect_delay_min
        {
            return bad(
                "reconnect_delay_max",
                "need 0 < reconnect_delay_min <= reconnect_delay_max",
            );
        }
        if self.handshake_timeout.is_zero() || self.connect_timeout.is_zero() {
            return bad(
                "handshake_timeout",
                "handshake and connect timeouts must be positive",
            );
        }
        if self.peer_silence_timeout <= self.tick_interval * self.core.heartbeat_interval_ticks {
            return bad(
                "peer_silence_timeout",
                "must be longer than the heartbeat interval (a leader's silence between heartbeats is normal)",
            );
        }
        if self.tcp_user_timeout.is_some_and(|t| t.is_zero()) {
            return bad("tcp_user_timeout", "must be positive (or None)");
        }
        if self.client_queue_max == 0
            || self.committed_queue_max == 0
            || self.committed_backlog_entries_max == 0
            || self.fsyncs_in_flight_max == 0
            || self.proposal_batch_max == 0
        {
            return bad("client_queue_max", "queue bounds must be at least 1");
        }
        if self.storage.segment_bytes_max < 4096 {
            return bad("storage.segment_bytes_max", "must be at least 4096");
        }
        Ok(())
    }

    /// Checks that no message the core can build outgrows a frame, and no entry a log
    /// record (the reasoning is in [`bounds`](crate::bounds)).
    fn validate_sizes(&self) -> Result<(), ConfigError> {
        let bad = |field: &'static str, reason: &'static str| Err(ConfigError { field, reason });
        let command_bytes_max = self.command_bytes_max as u64;
        let frame_bytes_max = self.frame_bytes_max as u64;
        if self.command_bytes_max < 1024 {
            return bad(
                "command_bytes_max",
                "must be at least 1 KiB (the members' address records are commands too)",
            );
        }
        if !bounds::fits_record(command_bytes_max) {
            return bad(
                "command_bytes_max",
                "an entry of this size would not fit a log record (256 MiB)",
            );
        }
        if bounds::append_entries_bytes_max(&self.core, command_bytes_max) > frame_bytes_max {
            return bad(
                "frame_bytes_max",
                "an AppendEntries of core.msg_bytes_max bytes (2.5 times that, encoded, plus \
                 21 bytes per entry) or of one command of command_bytes_max would not fit a \
                 frame: raise frame_bytes_max or lower the others",
            );
        }
        if bounds::install_snapshot_bytes_max(&self.core) > frame_bytes_max {
            return bad(
                "frame_bytes_max",
                "a snapshot chunk of core.snapshot_chunk_bytes would not fit a frame",
            );
        }
        Ok(())
    }

    pub(crate) fn transport_settings(&self) -> TransportSettings {
        TransportSettings {
            me: self.id,
            cluster_id: self.cluster_id,
            frame_bytes_max: self.frame_bytes_max,
            write_queue_bytes_max: self.write_queue_bytes_max,
            write_queue_frames_max: self.write_queue_frames_max,
            reconnect_delay_min: self.reconnect_delay_min,
            reconnect_delay_max: self.reconnect_delay_max,
            handshake_timeout: self.handshake_timeout,
            connect_timeout: self.connect_timeout,
            peer_silence_timeout: self.peer_silence_timeout,
            tcp_user_timeout: self.tcp_user_timeout,
            tls: self.tls.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shell_field_out_of_range_is_reported_like_a_core_field() {
        let config =
            RaftConfig::new(NodeId(1), [(NodeId(1), "127.0.0.1:1")]).tick_interval(Duration::ZERO);
        let err: raft_core::ConfigError = config.validate().unwrap_err();
        assert_eq!(err.field, "tick_interval");
        assert!(err.to_string().contains("tick_interval"), "{err}");
    }
}
