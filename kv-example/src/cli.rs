//! The command line: `kv-example` (a local cluster), `kv-example node` (one node of a
//! real deployment, configured by flags or `KV_*` environment variables) and
//! `kv-example bench` (the load generator).

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use raft_core::NodeId;

use crate::addrs::parse_addr_list;

/// A replicated key-value store on Raft.
///
/// Without a subcommand, starts a three-node cluster on this machine (three
/// processes, data under ./data) and reads console commands on stdin.
#[derive(Debug, Parser)]
#[command(name = "kv-example", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to run (default: a local cluster).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The local cluster's options, when no subcommand is given.
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a local cluster, one process per node, with a console on stdin (the default).
    Cluster(ClusterArgs),
    /// Run one node: for deployments on several machines (flags or KV_* variables).
    Node(Box<NodeArgs>),
    /// Measure throughput and latency against a running cluster, or one it starts.
    Bench(BenchArgs),
    /// After a quorum is lost for good: make a stopped node the only voter (or one of
    /// the given voters) of a new cluster, from its own data. Writes may be lost.
    Recover(RecoverArgs),
}

/// Options of `kv-example recover`.
#[derive(Clone, Debug, Args)]
pub struct RecoverArgs {
    /// The stopped node's data directory.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// The voters of the new cluster (comma-separated ids), the recovered node first
    /// among them; usually only the recovered node.
    #[arg(long, value_delimiter = ',', required_unless_present = "dry_run",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub voters: Vec<u64>,
    /// Only show what the data directory holds (its last index and term, to choose
    /// the survivor to recover); change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `id=host:port` lists, as parsed by [`parse_addr_list`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddrList(pub BTreeMap<NodeId, String>);

fn addr_list(text: &str) -> Result<AddrList, String> {
    parse_addr_list(text).map(AddrList).map_err(|e| e.0)
}

/// Options of the local cluster.
#[derive(Clone, Debug, Args)]
pub struct ClusterArgs {
    /// How many nodes to start.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=9))]
    pub nodes: u64,
    /// Where the nodes keep their data (node N in DIR/nodeN, its log in DIR/nodeN.log).
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
    /// The address the nodes bind and advertise.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Node N's raft port is this plus N-1.
    #[arg(long, default_value_t = 7001)]
    pub raft_port: u16,
    /// Node N's text-protocol port is this plus N-1.
    #[arg(long, default_value_t = 8001)]
    pub client_port: u16,
    /// Node N's HTTP port is this plus N-1.
    #[arg(long, default_value_t = 9001)]
    pub http_port: u16,
    /// Show the nodes' logs on this terminal instead of writing them to files.
    #[arg(long)]
    pub verbose: bool,
    /// Turn fsync off (fast, NOT durable: for benchmarks of the code path only).
    #[arg(long)]
    pub no_fsync: bool,
    /// Start the nodes with --read-lease (leader reads from a lease; see the README
    /// for its clock-drift caveat).
    #[arg(long)]
    pub read_lease: bool,
    /// TLS between the nodes (mutual, each node's certificate naming it) and HTTPS
    /// on the HTTP ports, with a throwaway CA and certificates made in DATA/tls
    /// (kept for later runs). The text protocol stays plain (see the README).
    #[arg(long)]
    pub tls: bool,
}

/// Options of one node.
#[derive(Clone, Debug, Args)]
pub struct NodeArgs {
    /// This node's id (a positive integer, one of --peers).
    #[arg(long, env = "KV_ID")]
    pub id: u64,
    /// Every node's raft address, this one included: 1=host1:7001,2=host2:7001,...
    #[arg(long, env = "KV_PEERS", value_parser = addr_list)]
    pub peers: AddrList,
    /// Where to serve the text protocol (HOST:PORT; 0.0.0.0 for every interface).
    #[arg(long, env = "KV_CLIENT_ADDR")]
    pub client_addr: String,
    /// Where to serve HTTP.
    #[arg(long, env = "KV_HTTP_ADDR")]
    pub http_addr: String,
    /// The data directory [default: data/nodeID].
    #[arg(long, env = "KV_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where to listen for raft peers, if not this node's address in --peers (for
    /// example 0.0.0.0:7001 behind a container's published port).
    #[arg(long, env = "KV_RAFT_LISTEN")]
    pub raft_listen: Option<String>,
    /// The peers' text-protocol addresses, told to clients in `Leader is ADDR`
    /// [default: each peer's raft host with this node's client port].
    #[arg(long, env = "KV_PEER_CLIENT_ADDRS", value_parser = addr_list)]
    pub peer_client_addrs: Option<AddrList>,
    /// The peers' HTTP addresses, for redirects [default: each peer's raft host with
    /// this node's HTTP port].
    #[arg(long, env = "KV_PEER_HTTP_ADDRS", value_parser = addr_list)]
    pub peer_http_addrs: Option<AddrList>,
    /// The cluster's id: peers of another cluster are refused.
    #[arg(long, env = "KV_CLUSTER_ID", default_value_t = 1)]
    pub cluster_id: u64,
    /// Join a running cluster instead of founding one: the node waits, neither voting
    /// nor campaigning, until the leader adds it (`add-node` or `POST
    /// /cluster/nodes`). --peers then names this node and the current members.
    #[arg(long, env = "KV_JOIN")]
    pub join: bool,
    /// On a new cluster, campaign as soon as a majority of the peers is reachable
    /// instead of after a random election timeout, so that this node is the first
    /// leader. For at most one founding member (the local cluster sets it on node 1);
    /// ignored once the data directory holds state.
    #[arg(long, env = "KV_CAMPAIGN_AT_BOOTSTRAP", conflicts_with = "join")]
    pub campaign_at_bootstrap: bool,
    /// The length of one Raft tick in milliseconds (elections time out after 30 to 60
    /// ticks, heartbeats every 2).
    #[arg(long, env = "KV_TICK_MS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub tick_ms: u64,
    /// How long a request may wait for commit or for this node to catch up.
    #[arg(long, env = "KV_REQUEST_TIMEOUT_MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_ms: u64,
    /// Snapshot the store every this many applied entries, so the log stays bounded
    /// (0: never).
    #[arg(long, env = "KV_SNAPSHOT_EVERY", default_value_t = 10_000)]
    pub snapshot_every: u64,
    /// The most client connections per front end.
    #[arg(long, env = "KV_CONNECTIONS_MAX", default_value_t = 1024,
          value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub connections_max: u64,
    /// Turn fsync off (fast, NOT durable: for benchmarks of the code path only).
    #[arg(long, env = "KV_NO_FSYNC")]
    pub no_fsync: bool,
    /// Serve linearizable reads on the leader from a lease instead of a heartbeat
    /// round each: faster, but correct only while no node's clock runs more than 10%
    /// fast or slow (see the README). Set it on every node.
    #[arg(long, env = "KV_READ_LEASE")]
    pub read_lease: bool,
    /// This node's certificate (PEM, chain first), issued by --tls-ca and naming
    /// `raft-node-ID` (and, for HTTPS clients, the node's host). Turns on TLS
    /// between peers and HTTPS on --http-addr.
    #[arg(long, env = "KV_TLS_CERT", requires_all = ["tls_key", "tls_ca"])]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "KV_TLS_KEY", requires_all = ["tls_cert", "tls_ca"])]
    pub tls_key: Option<PathBuf>,
    /// The CA certificate(s) every member's certificate is issued by (PEM).
    #[arg(long, env = "KV_TLS_CA", requires_all = ["tls_cert", "tls_key"])]
    pub tls_ca: Option<PathBuf>,
    /// The largest write this node proposes, in bytes once encoded (key, value and
    /// request id); larger ones are refused and not applied. Set the same value on
    /// every node.
    #[arg(long, env = "KV_COMMAND_BYTES_MAX", default_value_t = 1 << 20,
          value_parser = clap::value_parser!(u64).range(1024..=(16 << 20) - 4096))]
    pub command_bytes_max: u64,
    /// Stop cleanly when stdin closes (the local cluster's way to stop its nodes).
    #[arg(long, hide = true)]
    pub exit_on_stdin_eof: bool,
}

/// Options of the load generator.
#[derive(Clone, Debug, Args)]
pub struct BenchArgs {
    /// The nodes' text-protocol addresses (comma-separated).
    #[arg(
        long,
        default_value = "127.0.0.1:8001,127.0.0.1:8002,127.0.0.1:8003",
        value_delimiter = ','
    )]
    pub addrs: Vec<String>,
    /// Start a three-node cluster of its own (in a temporary directory, on free ports)
    /// instead of using --addrs.
    #[arg(long)]
    pub start_cluster: bool,
    /// With --start-cluster: turn the nodes' fsync off (NOT durable; measures the
    /// code path without the disk).
    #[arg(long, requires = "start_cluster")]
    pub no_fsync: bool,
    /// With --start-cluster: start the nodes with --read-lease.
    #[arg(long, requires = "start_cluster")]
    pub read_lease: bool,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub duration_secs: u64,
    /// Concurrent clients (one connection each, one request in flight each).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub clients: u64,
    /// The share of reads, in percent.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub read_percent: u8,
    /// Read with `get --stale` (local, no round trip) instead of linearizable reads.
    #[arg(long)]
    pub stale_reads: bool,
    /// How many distinct keys.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub keys: u64,
    /// The size of each value, in bytes.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=16384))]
    pub value_bytes: u64,
    /// The seed of the workload's random choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_arguments_is_the_local_cluster_with_defaults() {
        let cli = Cli::try_parse_from(["kv-example"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.cluster.nodes, 3);
        assert_eq!(cli.cluster.client_port, 8001);
        assert_eq!(cli.cluster.data_dir, PathBuf::from("data"));
    }

    #[test]
    fn a_node_takes_the_deployment_flags_of_the_readme() {
        let cli = Cli::try_parse_from([
            "kv-example",
            "node",
            "--id",
            "1",
            "--peers",
            "1=host1:7001,2=host2:7001,3=host3:7001",
            "--client-addr",
            "0.0.0.0:8001",
            "--http-addr",
            "0.0.0.0:9001",
            "--data-dir",
            "/var/lib/kv",
        ])
        .unwrap();
        let Some(Command::Node(node)) = cli.command else {
            panic!("expected the node subcommand");
        };
        assert_eq!(node.id, 1);
        assert_eq!(node.peers.0.len(), 3);
        assert_eq!(node.data_dir, Some(PathBuf::from("/var/lib/kv")));
        assert_eq!(node.snapshot_every, 10_000);
    }

    #[test]
    fn a_bad_peer_list_is_a_friendly_error() {
        let err = Cli::try_parse_from([
            "kv-example",
            "node",
            "--id",
            "1",
            "--peers",
            "1=host1",
            "--client-addr",
            "a:1",
            "--http-addr",
            "a:2",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("not a HOST:PORT"), "{err}");
    }

    #[test]
    fn recover_takes_a_data_dir_and_voters_or_a_dry_run() {
        let cli = Cli::try_parse_from([
            "kv-example",
            "recover",
            "--data-dir",
            "data/node1",
            "--voters",
            "1,4",
        ])
        .unwrap();
        let Some(Command::Recover(recover)) = cli.command else {
            panic!("expected the recover subcommand");
        };
        assert_eq!(recover.voters, [1, 4]);
        assert!(!recover.dry_run);
        assert!(Cli::try_parse_from(["kv-example", "recover", "--data-dir", "d"]).is_err());
        assert!(
            Cli::try_parse_from(["kv-example", "recover", "--data-dir", "d", "--dry-run"]).is_ok()
        );
        let zero =
            Cli::try_parse_from(["kv-example", "recover", "--data-dir", "d", "--voters", "0"]);
        assert!(zero.is_err());
    }

    #[test]
    fn the_command_limit_has_a_default_and_bounds() {
        let Some(Command::Node(args)) = node_with(&[]).unwrap().command else {
            panic!("expected the node subcommand");
        };
        assert_eq!(args.command_bytes_max, 1 << 20);
        assert!(node_with(&["--command-bytes-max", "100"]).is_err());
        assert!(node_with(&["--command-bytes-max", "4096"]).is_ok());
    }

    /// `kv-example node` with the required flags and `extra`.
    fn node_with(extra: &[&str]) -> Result<Cli, clap::Error> {
        let mut args = vec![
            "kv-example",
            "node",
            "--id",
            "1",
            "--peers",
            "1=h:1",
            "--client-addr",
            "a:1",
            "--http-addr",
            "a:2",
        ];
        args.extend(extra);
        Cli::try_parse_from(args)
    }

    #[test]
    fn tls_takes_all_three_files_or_none() {
        assert!(node_with(&["--tls-cert", "c.pem"]).is_err());
        let tls = ["--tls-cert", "c", "--tls-key", "k", "--tls-ca", "a"];
        let Some(Command::Node(args)) = node_with(&tls).unwrap().command else {
            panic!("expected the node subcommand");
        };
        assert_eq!(args.tls_ca, Some(PathBuf::from("a")));
        assert!(
            Cli::try_parse_from(["kv-example", "--tls"])
                .unwrap()
                .cluster
                .tls
        );
    }

    #[test]
    fn bench_defaults_to_the_local_cluster() {
        let cli = Cli::try_parse_from(["kv-example", "bench", "--duration-secs", "3"]).unwrap();
        let Some(Command::Bench(bench)) = cli.command else {
            panic!("expected the bench subcommand");
        };
        assert_eq!(bench.addrs.len(), 3);
        assert_eq!(bench.duration_secs, 3);
        assert!(Cli::try_parse_from(["kv-example", "bench", "--no-fsync"]).is_err());
    }
}
