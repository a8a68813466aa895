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
        format!(
            "{}://{}/kv/greeting",
            support::http::scheme(),
            cluster.http_addr(leader)
        )
    );
    // Following it (as `curl -L` does) writes.
    let target = location.split_once("://").unwrap().1;
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

#[test]
fn nodes_are_added_and_removed_over_http_and_a_follower_redirects_to_the_leader() {
    let mut cluster = Cluster::start(3);
    let four = cluster.plan_node(4);
    cluster.start_joining(4, &[]);
    let leader = cluster.wait_for_leader_among(&[1, 2, 3]);
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let body = serde_json::json!({
        "id": 4,
        "raft_addr": four.raft_addr,
        "client_addr": four.client_addr,
        "http_addr": four.http_addr,
    })
    .to_string();

    // A follower sends the request to the leader, method and path kept.
    let redirect = request(
        cluster.http_addr(follower),
        "POST",
        "/cluster/nodes",
        Some(&body),
    )
    .unwrap();
    assert_eq!(redirect.status, 307, "{redirect:?}");
    let location = format!(
        "{}://{}/cluster/nodes",
        support::http::scheme(),
        cluster.http_addr(leader)
    );
    assert_eq!(redirect.header("location"), Some(location.as_str()));

    // The leader adds node 4 and answers once it votes.
    let added = wait_for("the leader to add node 4", || {
        let leader = cluster.wait_for_leader_among(&[1, 2, 3]);
        let added = request(
            cluster.http_addr(leader),
            "POST",
            "/cluster/nodes",
            Some(&body),
        )
        .ok()?;
        (added.status == 200).then_some(added)
    });
    let json: serde_json::Value = serde_json::from_str(&added.body).unwrap();
    assert_eq!(json["voters"], serde_json::json!([1, 2, 3, 4]), "{json}");
    assert_eq!(json["learners"], serde_json::json!([]), "{json}");
    // Node 4's own /status shows the membership it learned.
    wait_for("node 4 to show four voters", || {
        let status = request(cluster.http_addr(4), "GET", "/status", None).ok()?;
        let json: serde_json::Value = serde_json::from_str(&status.body).ok()?;
        (json["membership"]["voters"] == serde_json::json!([1, 2, 3, 4])).then_some(())
    });

    let leader = cluster.wait_for_leader();
    let removed = request(
        cluster.http_addr(leader),
        "DELETE",
        "/cluster/nodes/4",
        None,
    )
    .unwrap();
    assert_eq!(removed.status, 200, "{removed:?}");
    let json: serde_json::Value = serde_json::from_str(&removed.body).unwrap();
    assert_eq!(json["voters"], serde_json::json!([1, 2, 3]), "{json}");
    let again = request(
        cluster.http_addr(leader),
        "DELETE",
        "/cluster/nodes/4",
        None,
    )
    .unwrap();
    assert_eq!(
        (again.status, again.body.as_str()),
        (404, "node 4 is not a member\n")
    );
}

#[test]
fn metrics_are_served_in_the_prometheus_text_format() {
    let cluster = Cluster::start(3);
    let leader = cluster.wait_for_leader();
    for i in 0..5 {
        cluster.put(&format!("m{i}"), "v");
    }
    let metrics = request(cluster.http_addr(leader), "GET", "/metrics", None).unwrap();
    assert_eq!(metrics.status, 200, "{metrics:?}");
    assert_eq!(
        metrics.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let value = |name: &str| -> f64 {
        let line = metrics
            .body
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} in:\n{}", metrics.body));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(value("raft_term") >= 1.0);
    assert_eq!(value("raft_role{role=\"leader\"}"), 1.0);
    assert!(value("raft_commit_index") >= 6.0);
    assert!(value("raft_proposals_committed_total") >= 5.0);
    assert!(value("raft_elections_won_total") >= 1.0);
    assert!(value("raft_fsync_duration_seconds_count") >= 1.0);
    assert_eq!(value("kv_keys"), 5.0);
    for peer in cluster.ids().into_iter().filter(|id| *id != leader) {
        assert!(value(&format!("raft_peer_sent_bytes_total{{peer=\"{peer}\"}}")) > 0.0);
        assert!(
            value(&format!(
                "raft_peer_received_messages_total{{peer=\"{peer}\"}}"
            )) > 0.0
        );
        assert_eq!(
            value(&format!("raft_peer_connected{{peer=\"{peer}\"}}")),
            1.0
        );
    }
    let wrong = request(cluster.http_addr(leader), "POST", "/metrics", None).unwrap();
    assert_eq!(wrong.status, 405);
}
