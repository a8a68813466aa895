//! `kv-example node`: one node in one process. Binds the client ports, starts
//! raft-mio, the applier and the two front ends, and runs until SIGINT or SIGTERM (or,
//! with `--exit-on-stdin-eof`, until stdin closes); then stops cleanly: raft-mio
//! finishes its fsync before the process exits.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use kv_model::Command;
use raft_core::NodeId;
use raft_mio::{RaftConfig, StopReason};

use crate::addrs::{split_host_port, Directory, APP_CLIENT, APP_HTTP};
use crate::cli::NodeArgs;
use crate::http::HttpServer;
use crate::replica::{spawn_applier, Replica};
use crate::server::{Server, ServerLimits};
use crate::service::KvService;
use crate::text::TextHandler;
use crate::tls::{NodeTls, TlsFiles};

/// Why a node could not start (or stopped badly).
pub type NodeError = Box<dyn std::error::Error + Send + Sync>;

/// Runs a node until it is told to stop.
pub fn run(args: NodeArgs) -> Result<(), NodeError> {
    let id = NodeId(args.id);
    let peers = args.peers.0.clone();
    if !peers.contains_key(&id) {
        return Err(format!("--id {} is not among --peers", id.0).into());
    }
    // Bind the client ports first: a port in use fails before any disk is touched.
    let text_listener = bind("text-protocol", &args.client_addr)?;
    let http_listener = bind("HTTP", &args.http_addr)?;
    let directory = directory(&args, &peers)?;
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("data/node{}", id.0)));

    let mut config = RaftConfig::new(id, peers.clone())
        .data_dir(&data_dir)
        .cluster_id(args.cluster_id)
        .tick_interval(Duration::from_millis(args.tick_ms))
        .command_bytes_max(usize::try_from(args.command_bytes_max).unwrap_or(usize::MAX))
        .fsync(!args.no_fsync);
    // The peers' client and HTTP addresses go into raft-mio's address table, which
    // replicates them: a node added later learns them from the log.
    for (peer, addrs) in directory.iter() {
        config = config.app_addrs(
            peer,
            [
                (APP_CLIENT, addrs.client.clone()),
                (APP_HTTP, addrs.http.clone()),
            ],
        );
    }
    // Leases rely on check_quorum (on by default); the core refuses a configuration
    // without it.
    config.core.read_lease = args.read_lease;
    if args.join {
        config = config.join_existing();
    }
    if args.campaign_at_bootstrap {
        config = config.campaign_at_bootstrap();
    }
    if let Some(listen) = &args.raft_listen {
        config = config.listen_addr(listen.clone());
    }
    let tls = tls_of(&args)?;
    if let Some(tls) = &tls {
        config = config.tls(tls.peers.clone());
    }
    let (client, committed) =
        raft_mio::run::<Command>(config).map_err(|e| format!("cannot start the raft node: {e}"))?;
    let replica = Arc::new(Replica::new());
    let applier = spawn_applier(
        committed,
        Arc::clone(&replica),
        client.clone(),
        args.snapshot_every,
    )?;
    let service = Arc::new(KvService::new(
        client.clone(),
        replica,
        Duration::from_millis(args.request_timeout_ms),
    ));
    let limits = ServerLimits {
        connections_max: usize::try_from(args.connections_max).unwrap_or(usize::MAX),
        ..ServerLimits::default()
    };
    let text = Server::spawn(
        "text",
        text_listener,
        TextHandler::new(Arc::clone(&service)),
        limits,
    )?;
    let https = tls.as_ref().map(|tls| tls.https.clone());
    let http = HttpServer::spawn(http_listener, Arc::clone(&service), https, limits)?;
    println!(
        "kv-example node {}{}: text {}, {} {}, raft {}{}, data {}",
        id.0,
        if args.join { " (joining)" } else { "" },
        text.local_addr(),
        if tls.is_some() { "https" } else { "http" },
        http.local_addr(),
        client.listen_addr(),
        if tls.is_some() { " (mutual TLS)" } else { "" },
        data_dir.display()
    );

    let (stop_tx, stop_rx) = mpsc::channel();
    let applier = watch_node(&client, applier, &stop_tx)?;
    let cause = wait_for_stop(stop_tx, stop_rx, args.exit_on_stdin_eof)?;
    // Stop taking requests; the HTTP loop still lets out the answers of those in
    // flight (as the text connections' threads do) until the end of this function.
    text.stop();
    http.stop_accepting();
    if let StopCause::Failed(why) = cause {
        // Fail-stop: the node cannot serve any more. raft-mio has answered every
        // write it had taken (fate unknown); let those answers out, then exit
        // non-zero at once, without waiting for anything the failure may hang.
        tracing::error!(node = %id, "{why}; exiting");
        service.in_flight().wait_idle(DRAIN_TIMEOUT);
        return Err(format!("{why}; the node exits so that it can be restarted").into());
    }
    tracing::info!(node = %id, "stopping: {}", cause.describe());
    // Finishes the loop's last fsync and joins its thread; the committed stream then
    // ends and the applier with it.
    client.shutdown();
    service.in_flight().wait_idle(DRAIN_TIMEOUT);
    match applier.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e.into()),
        Err(_) => return Err("the applier thread panicked".into()),
    }
    tracing::info!(node = %id, "stopped");
    Ok(())
}

/// The node's TLS configuration, if its flags name the files.
fn tls_of(args: &NodeArgs) -> Result<Option<NodeTls>, NodeError> {
    let (Some(cert), Some(key), Some(ca)) = (&args.tls_cert, &args.tls_key, &args.tls_ca) else {
        return Ok(None);
    };
    let files = TlsFiles {
        cert: cert.clone(),
        key: key.clone(),
        ca: ca.clone(),
    };
    Ok(Some(NodeTls::load(&files)?))
}

/// How long a stopping node waits for the answers of requests in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a node stops.
#[derive(Debug)]
enum StopCause {
    /// A signal, or the end of stdin: a clean stop.
    Asked(&'static str),
    /// The raft loop or the applier failed: the node cannot go on.
    Failed(String),
}

impl StopCause {
    fn describe(&self) -> &str {
        match self {
            StopCause::Asked(why) => why,
            StopCause::Failed(why) => why,
        }
    }
}

/// Watches the raft loop and the applier: when either fails, `stop` hears why. The
/// returned handle ends with the applier's result.
fn watch_node(
    client: &raft_mio::Client<Command>,
    applier: JoinHandle<Result<(), String>>,
    stop: &mpsc::Sender<StopCause>,
) -> Result<JoinHandle<Result<(), String>>, NodeError> {
    let loop_stop = stop.clone();
    let loop_client = client.clone();
    std::thread::Builder::new()
        .name("raft-watch".into())
        .spawn(move || {
            if let Some(StopReason::Failed(e)) = loop_client.wait_stopped(None) {
                let _ = loop_stop.send(StopCause::Failed(format!("the raft node failed: {e}")));
            }
        })?;
    let applier_stop = stop.clone();
    let watcher = std::thread::Builder::new()
        .name("applier-watch".into())
        .spawn(move || {
            let result = applier
                .join()
                .unwrap_or_else(|_| Err("the applier thread panicked".into()));
            if let Err(e) = &result {
                let _ = applier_stop.send(StopCause::Failed(e.clone()));
            }
            result
        })?;
    Ok(watcher)
}

fn bind(what: &str, addr: &str) -> Result<TcpListener, NodeError> {
    TcpListener::bind(addr)
        .map_err(|e| format!("cannot listen for {what} clients on {addr}: {e}").into())
}

/// The directory of client addresses, defaulting each peer's to its raft host with
/// our own ports.
fn directory(args: &NodeArgs, peers: &BTreeMap<NodeId, String>) -> Result<Directory, NodeError> {
    let port = |addr: &str, flag: &str| {
        split_host_port(addr)
            .map(|(_, port)| port)
            .ok_or_else(|| format!("{flag} `{addr}` is not HOST:PORT"))
    };
    let client_port = port(&args.client_addr, "--client-addr")?;
    let http_port = port(&args.http_addr, "--http-addr")?;
    let empty = BTreeMap::new();
    let clients = args.peer_client_addrs.as_ref().map_or(&empty, |l| &l.0);
    let https = args.peer_http_addrs.as_ref().map_or(&empty, |l| &l.0);
    Ok(Directory::new(
        peers,
        clients,
        https,
        client_port,
        http_port,
    )?)
}

/// Blocks until SIGINT or SIGTERM, (when asked) the end of stdin, or a failure
/// reported on `stop`. Returns why.
fn wait_for_stop(
    stop: mpsc::Sender<StopCause>,
    causes: mpsc::Receiver<StopCause>,
    exit_on_stdin_eof: bool,
) -> Result<StopCause, NodeError> {
    let on_signal = stop.clone();
    ctrlc::set_handler(move || {
        let _ = on_signal.send(StopCause::Asked("signal"));
    })
    .map_err(|e| format!("cannot install the signal handler: {e}"))?;
    if exit_on_stdin_eof {
        std::thread::Builder::new()
            .name("stdin-watch".into())
            .spawn(move || {
                // Whatever arrives is ignored; only the end of the stream matters.
                let mut sink = [0u8; 256];
                let mut stdin = std::io::stdin();
                while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
                let _ = stop.send(StopCause::Asked("stdin closed"));
            })?;
    }
    Ok(causes
        .recv()
        .unwrap_or(StopCause::Asked("signal channel closed")))
}
