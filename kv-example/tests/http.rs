//! The HTTP front end of real nodes, the way `curl` uses it.

mod support;

use support::http::request;
use support::{wait_for, Cluster};

#[test]
fn curl_style_put_get_delete_status_and_the_redirect_to_the_leader() {
    let cluster = Cluster::start(3);
    let leader = cluster.wait_for_leader();
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();

    // A write to a follower is redirected to the leader's HTTP address, method kept.
    let redirect = request(
        cluster.http_addr(follower),
        "PUT",
        "/kv/greeting",
        Some("hello"),
    )
    .unwrap();
    assert_eq!(redirect.status, 307, "{redirect:?}");
    let location = redirect.header("location").expect("a Location header");
    assert_eq!(
        location,
        format!("http://{}/kv/greeting", cluster.http_addr(leader))
    );
    // Following it (as `curl -L` does) writes.
    let target = location.strip_prefix("http://").unwrap();
    let (host, path) = target.split_at(target.find('/').unwrap());
    let put = request(host, "PUT", path, Some("hello\n")).unwrap();
    assert_eq!(put.status, 200, "{put:?}");
    assert!(put
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    let index: u64 = put.header("x-raft-index").unwrap().parse().unwrap();
    assert_eq!(put.body, format!("Appended at {index}\n"));

    // Linearizable reads on every node; `?stale` reads locally.
    for id in cluster.ids() {
        let get = request(cluster.http_addr(id), "GET", "/kv/greeting", None).unwrap();
        assert_eq!(
            (get.status, get.body.as_str()),
            (200, "hello\n"),
            "node {id}"
        );
    }
    wait_for("the stale read on a follower to see the write", || {
        let get = request(
            cluster.http_addr(follower),
            "GET",
            "/kv/greeting?stale",
            None,
        )
        .ok()?;
        (get.body == "hello\n").then_some(())
    });

    // /status: JSON with the node's view of the cluster.
    let status = request(cluster.http_addr(leader), "GET", "/status", None).unwrap();
    assert_eq!(status.status, 200);
    assert_eq!(status.header("content-type"), Some("application/json"));
    let json: serde_json::Value = serde_json::from_str(&status.body).unwrap();
    assert_eq!(json["node"], leader);
    assert_eq!(json["role"], "leader");
    assert_eq!(json["leader"]["id"], leader);
    assert!(json["term"].as_u64().unwrap() >= 1);
    assert!(json["commit_index"].as_u64().unwrap() >= index);
    assert!(json["applied_index"].as_u64().unwrap() >= index);
    let peers = json["peers"].as_array().unwrap();
    assert_eq!(peers.len(), 2);
    assert!(peers.iter().all(|p| p["match_index"].is_u64()), "{peers:?}");

    // Delete, then the key is gone everywhere.
    let del = request(cluster.http_addr(leader), "DELETE", "/kv/greeting", None).unwrap();
    assert_eq!(del.status, 200, "{del:?}");
    for id in cluster.ids() {
        let get = request(cluster.http_addr(id), "GET", "/kv/greeting", None).unwrap();
        assert_eq!(get.status, 404, "node {id}: {get:?}");
    }
    let bad = request(
        cluster.http_addr(leader),
        "PUT",
        "/kv/greeting",
        Some("two words"),
    )
    .unwrap();
    assert_eq!(bad.status, 400);
}
