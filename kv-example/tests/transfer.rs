//! Moving leadership on request, on real nodes: `transfer ID` on the text protocol
//! and `POST /cluster/leader` over HTTP, answered by the leader once the target
//! leads; a follower names the leader; bad input gets one error.

mod support;

use kv_example::client::TextClient;
use support::http::request;
use support::{wait_for_ok, Cluster, REQUEST_TIMEOUT};

/// The answer lines to `lines`, sent one after the other on one connection to `addr`.
fn session(addr: &str, lines: &[&str]) -> Vec<String> {
    let mut client = TextClient::connect(addr, REQUEST_TIMEOUT).unwrap();
    lines
        .iter()
        .map(|line| client.request_line(line).unwrap())
        .collect()
}

/// Asks whoever leads to hand leadership to `target` until one answers that it does
/// (under load a transfer may time out, or an election may come in between).
fn transfer_by_text(cluster: &Cluster, target: u64) {
    wait_for_ok(&format!("node {target} to take over"), || {
        let leader = cluster.wait_for_leader();
        let answer = session(
            cluster.client_addr(leader),
            &[&format!("transfer {target}")],
        );
        (answer[0] == format!("Ok: node {target} leads"))
            .then_some(())
            .ok_or_else(|| answer[0].clone())
    });
}

#[test]
fn transfer_on_the_text_protocol_moves_leadership_and_refuses_bad_input() {
    let cluster = Cluster::start(3);
    let leader = cluster.wait_for_leader();
    let target = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let other = cluster
        .ids()
        .into_iter()
        .find(|id| *id != leader && *id != target)
        .unwrap();

    // Bad input: one error line each, and the connection goes on.
    let got = session(
        cluster.client_addr(leader),
        &[
            "transfer",
            "transfer x",
            "transfer 9",
            &format!("transfer {leader}"),
        ],
    );
    assert_eq!(
        got[0], "Error: missing argument for transfer; usage: transfer ID",
        "{got:?}"
    );
    assert!(got[1].starts_with("Error: `x` is not a node id"), "{got:?}");
    assert_eq!(got[2], "Error: node 9 is not a member", "{got:?}");
    assert_eq!(got[3], format!("Ok: node {leader} leads"), "{got:?}");

    // A follower does not transfer: it names the leader.
    let answer = session(cluster.client_addr(other), &[&format!("transfer {target}")]);
    assert_eq!(
        answer[0],
        format!("Error: Leader is {}", cluster.client_addr(leader))
    );

    transfer_by_text(&cluster, target);
    assert_eq!(cluster.wait_for_leader(), target);
    // And the cluster takes writes under its new leader.
    assert!(cluster.put("k", "v") > 0);
}

#[test]
fn post_cluster_leader_moves_leadership_and_a_follower_redirects_to_the_leader() {
    let cluster = Cluster::start(3);
    let leader = cluster.wait_for_leader();
    let target = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let http = |id: u64| cluster.http_addr(id).to_string();

    // Bad bodies and methods, on the leader.
    for (body, status) in [("x", 400), ("", 400), ("0", 400), ("9", 404)] {
        let answer = request(&http(leader), "POST", "/cluster/leader", Some(body)).unwrap();
        assert_eq!(answer.status, status, "body {body:?}: {answer:?}");
    }
    let get = request(&http(leader), "GET", "/cluster/leader", None).unwrap();
    assert_eq!(get.status, 405, "{get:?}");

    // A follower redirects to the same path on the leader (curl -L follows it).
    let redirect = request(
        &http(target),
        "POST",
        "/cluster/leader",
        Some(&target.to_string()),
    )
    .unwrap();
    assert_eq!(redirect.status, 307, "{redirect:?}");
    assert_eq!(
        redirect.header("location"),
        Some(
            format!(
                "{}://{}/cluster/leader",
                support::http::scheme(),
                http(leader)
            )
            .as_str()
        )
    );

    let body = format!("{{\"id\":{target}}}");
    wait_for_ok(&format!("node {target} to take over"), || {
        let leader = cluster.wait_for_leader();
        let answer = request(&http(leader), "POST", "/cluster/leader", Some(&body))
            .map_err(|e| e.to_string())?;
        if answer.status != 200 {
            return Err(format!("{answer:?}"));
        }
        let json: serde_json::Value =
            serde_json::from_str(&answer.body).map_err(|e| e.to_string())?;
        assert_eq!(json, serde_json::json!({ "leader": target }));
        Ok(())
    });
    assert_eq!(cluster.wait_for_leader(), target);
}
