//! A cluster with TLS between its nodes and HTTPS on its HTTP ports, as
//! `kv-example --tls` runs it: curl-style requests over HTTPS (redirects keep the
//! scheme), a client that does not trust the CA is refused, plain HTTP gets no
//! answer, and the text protocol stays plain. (The kill/restart and partition
//! scenarios run over TLS in `faults` and `partition`.)

mod support;

use support::http::{request, request_tls};
use support::Cluster;

#[test]
fn https_writes_reads_and_redirects_and_only_clients_that_trust_the_ca() {
    let cluster = Cluster::start_tls(3);
    let leader = cluster.wait_for_leader();
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let ca = cluster
        .tls_dir
        .as_ref()
        .expect("a TLS cluster")
        .join("ca.pem");

    let put = request_tls(cluster.http_addr(leader), &ca, "PUT", "/kv/a", Some("1")).unwrap();
    assert_eq!(put.status, 200, "{put:?}");
    let get = request_tls(cluster.http_addr(follower), &ca, "GET", "/kv/a", None).unwrap();
    assert_eq!((get.status, get.body.as_str()), (200, "1\n"), "{get:?}");
    let redirect =
        request_tls(cluster.http_addr(follower), &ca, "PUT", "/kv/b", Some("2")).unwrap();
    assert_eq!(redirect.status, 307, "{redirect:?}");
    assert_eq!(
        redirect.header("location"),
        Some(format!("https://{}/kv/b", cluster.http_addr(leader)).as_str())
    );

    // A client with another CA refuses the node; plain HTTP gets no HTTP answer.
    let elsewhere = tempfile::tempdir().unwrap();
    kv_example::tls::LocalCa::open_or_create(elsewhere.path()).unwrap();
    let foreign = elsewhere.path().join("ca.pem");
    let refused = request_tls(cluster.http_addr(leader), &foreign, "GET", "/status", None);
    assert!(refused.is_err(), "{refused:?}");
    let plain = request(cluster.http_addr(leader), "GET", "/status", None);
    assert!(plain.is_err(), "{plain:?}");
    // The text protocol is plain (see the README): nc still works.
    assert!(cluster.status(leader).unwrap().contains(" role=leader "));
}
