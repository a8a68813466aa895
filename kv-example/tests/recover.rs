//! Quorum loss for good: two of three nodes and their disks are gone. `kv-example
//! recover` makes the survivor the only voter of a new cluster from its own data; it
//! comes back with every acknowledged key, takes writes, and grows again with a new
//! node added the usual way.

mod support;

use std::collections::BTreeMap;
use std::process::Command;

use support::{exe, Cluster};

fn recover(args: &[&str]) -> std::process::Output {
    Command::new(exe())
        .arg("recover")
        .args(args)
        .output()
        .expect("kv-example runs")
}

#[test]
fn a_cluster_that_lost_two_of_three_nodes_comes_back_with_every_committed_key() {
    let mut cluster = Cluster::start(3);
    let mut acked = BTreeMap::new();
    for i in 0..20 {
        cluster.put(&format!("k{i}"), &format!("v{i}"));
        acked.insert(format!("k{i}"), format!("v{i}"));
    }
    // The leader holds every committed entry: it survives; the others are lost.
    let survivor = cluster.wait_for_leader();
    let lost: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|id| *id != survivor)
        .collect();
    for id in &lost {
        cluster.kill(*id);
        let data = cluster.layout.node(*id).unwrap().data_dir.clone();
        std::fs::remove_dir_all(data).unwrap();
    }
    cluster.stop(survivor);
    let data_dir = cluster.layout.node(survivor).unwrap().data_dir.clone();
    let data_dir = data_dir.to_str().unwrap();

    let shown = recover(&["--data-dir", data_dir, "--dry-run"]);
    assert!(shown.status.success(), "{shown:?}");
    let shown = String::from_utf8_lossy(&shown.stdout);
    // At least the twenty writes and a no-op; a founding cluster logs no configuration.
    let last_index: u64 = shown
        .split("last index ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no last index in {shown}"));
    assert!(last_index >= 21, "{shown}");
    assert!(
        shown.contains("configuration the one it was started with"),
        "{shown}"
    );

    let voters = survivor.to_string();
    let recovered = recover(&["--data-dir", data_dir, "--voters", &voters]);
    assert!(recovered.status.success(), "{recovered:?}");
    let warning = String::from_utf8_lossy(&recovered.stderr);
    assert!(
        warning.contains("WARNING") && warning.contains("LOST"),
        "{warning}"
    );
    let said = String::from_utf8_lossy(&recovered.stdout);
    assert!(
        said.contains(&format!("voters={survivor} the whole cluster")),
        "{said}"
    );

    // Restarted with its old arguments, it leads alone and has every key.
    cluster.restart(survivor);
    assert_eq!(cluster.wait_for_leader_among(&[survivor]), survivor);
    for (key, value) in &acked {
        assert_eq!(
            cluster.get(survivor, key).as_deref(),
            Some(value.as_str()),
            "{key}"
        );
    }
    cluster.put("after", "recovery");
    let status = cluster.status(survivor).unwrap();
    assert!(status.contains(&format!("voters={survivor} ")), "{status}");

    // It grows again: a new node joins, catches up, and votes.
    cluster.plan_node(4);
    cluster.start_joining(4, &[]);
    let added = cluster.add_node(4);
    assert!(added.contains("is a voter"), "{added}");
    assert_eq!(cluster.get(4, "k7").as_deref(), Some("v7"));

    // A running node's data is not recovered under it.
    let busy = recover(&["--data-dir", data_dir, "--voters", &voters]);
    assert!(!busy.status.success());
    assert!(String::from_utf8_lossy(&busy.stderr).contains("in use"));
}
