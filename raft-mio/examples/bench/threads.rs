//! The cluster as three threads (and their helpers) of this process.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use raft_core::{NodeId, RoleKind};
use raft_mio::Client;

use crate::cpu::CpuByRole;
use crate::load::{self, Command};
use crate::{pki, Measured, Options};

/// Runs one level on a fresh in-process cluster.
pub fn run_level(options: &Options, inflight: usize) -> Measured {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = options.tls.then(|| pki::TestPki::new("bench CA"));
    let listeners: Vec<_> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let addrs: BTreeMap<NodeId, String> = listeners
        .iter()
        .enumerate()
        .map(|(i, l)| (NodeId(i as u64 + 1), l.local_addr().unwrap().to_string()))
        .collect();
    let mut clients = BTreeMap::new();
    let mut apps = Vec::new();
    for (listener, id) in listeners.into_iter().zip(addrs.keys().copied()) {
        let data_dir = dir.path().join(format!("node{}", id.0));
        let tls = pki.as_ref().map(|pki| pki.settings_for(id));
        let config = load::node_config(options, id, &addrs, &data_dir, tls).listener(listener);
        let (client, committed) = raft_mio::run::<Command>(config).expect("node starts");
        apps.push(load::spawn_app(
            id,
            committed,
            client.clone(),
            options.snapshot_every,
        ));
        clients.insert(id, client);
    }
    let leader = wait_for_leader(&clients);
    let all: Vec<Client<Command>> = clients.values().cloned().collect();
    let all_after = all.clone();
    let (run, (cpu, fsyncs)) = load::measure(
        clients[&leader].clone(),
        inflight,
        options.payload,
        options.warmup(),
        options.amount(),
        move || (CpuByRole::read(&[None], leader.0), fsyncs(&all)),
        move |(cpu, fsyncs_before), _run| {
            let spent = CpuByRole::read(&[None], leader.0).since(&cpu);
            (spent, fsyncs(&all_after) - fsyncs_before)
        },
    );
    for client in clients.values() {
        client.shutdown();
    }
    drop(clients);
    for app in apps {
        app.join().expect("the application thread");
    }
    Measured { run, cpu, fsyncs }
}

/// The fdatasyncs the nodes ran so far.
fn fsyncs(clients: &[Client<Command>]) -> u64 {
    clients
        .iter()
        .map(|c| c.metrics().map_or(0, |m| m.fsync_latency.count))
        .sum()
}

fn wait_for_leader(clients: &BTreeMap<NodeId, Client<Command>>) -> NodeId {
    let start = Instant::now();
    loop {
        for (id, client) in clients {
            if client.status().expect("running").role == RoleKind::Leader {
                return *id;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no leader elected"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
