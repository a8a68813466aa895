//! A running cluster keeps working while strangers knock: garbage bytes, an oversized
//! frame, a silent connection, and a whole node of another cluster.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use raft_core::NodeId;
use raft_mio::transport::handshake::Hello;
use raft_mio::RaftConfig;
use support::{Cluster, Cmd};

#[test]
fn the_cluster_keeps_committing_while_strangers_knock() {
    let cluster = Cluster::start(3);
    let mut strangers = Vec::new();
    for addr in cluster.addrs.values() {
        let mut garbage = TcpStream::connect(addr).unwrap();
        garbage.write_all(b"\x00\xffnot raft at all\r\n").unwrap();
        let mut oversized = TcpStream::connect(addr).unwrap();
        oversized
            .write_all(&Hello::new(1, NodeId(2), NodeId(1)).encode())
            .unwrap();
        oversized.write_all(&u32::MAX.to_le_bytes()).unwrap();
        let silent = TcpStream::connect(addr).unwrap();
        strangers.extend([garbage, oversized, silent]);
    }
    // A node of another cluster that believes it is node 2 and knows everyone's address.
    let foreign_dir = tempfile::tempdir().unwrap();
    let foreign_config = RaftConfig::new(NodeId(2), cluster.addrs.clone())
        .cluster_id(99)
        .data_dir(foreign_dir.path())
        .listen_addr("127.0.0.1:0")
        .tick_interval(Duration::from_millis(5))
        .core(|c| c.pre_vote = false);
    let (foreign, _foreign_committed) = raft_mio::run::<Cmd>(foreign_config).unwrap();

    let expected: Vec<Cmd> = (0..20).map(Cmd).collect();
    for cmd in &expected {
        cluster.append(cmd.clone());
    }
    cluster.wait_for_applied(&expected);
    // The foreign node campaigns alone, term after term, dialing everyone each time;
    // once it has done so a few times, none of its connections may have been taken
    // (had the handshake let it in, its vote requests would reach the cluster).
    support::wait_until("the foreign node campaigns", || {
        foreign.status().unwrap().term.0 >= 3
    });
    assert!(
        foreign.status().unwrap().peers.iter().all(|p| !p.connected),
        "no handshake with another cluster"
    );
    foreign.shutdown();
    drop(strangers);
    cluster.shutdown();
}
