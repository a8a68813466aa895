//! Transport tests on 127.0.0.1: two transports talk; garbage, oversized frames, a
//! foreign cluster and a silent peer are refused with a logged reason while the good
//! peer keeps being heard.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream as StdStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mio::{Events, Poll, Waker};
use raft_core::{Message, MessageBody, NodeId, ReadId, Term};

use super::handshake::Hello;
use super::tls::{node_dns_name, TlsSettings};
use super::{Transport, TransportSettings, WAKER_TOKEN};
use crate::clock;

const WALL_TIME_MAX: Duration = Duration::from_secs(10);

struct Side {
    poll: Poll,
    events: Events,
    transport: Transport,
    received: Vec<Message>,
}

fn settings(me: u64, cluster_id: u64) -> TransportSettings {
    TransportSettings {
        me: NodeId(me),
        cluster_id,
        frame_bytes_max: 1 << 20,
        write_queue_bytes_max: 4 << 20,
        write_queue_frames_max: 1024,
        reconnect_delay_min: Duration::from_millis(5),
        reconnect_delay_max: Duration::from_millis(50),
        handshake_timeout: Duration::from_millis(300),
        connect_timeout: Duration::from_millis(300),
        peer_silence_timeout: Duration::from_secs(5),
        tcp_user_timeout: None,
        tls: None,
    }
}

/// Binds listeners for every id first (ephemeral ports), then builds the transports.
fn sides(ids: &[u64], cluster_ids: &[u64]) -> Vec<Side> {
    let settings: Vec<TransportSettings> = ids
        .iter()
        .zip(cluster_ids)
        .map(|(id, cluster)| settings(*id, *cluster))
        .collect();
    sides_with(ids, settings)
}

/// [`sides`] with each side's settings given.
fn sides_with(ids: &[u64], settings: Vec<TransportSettings>) -> Vec<Side> {
    let listeners: Vec<_> = ids
        .iter()
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let addrs: BTreeMap<NodeId, String> = ids
        .iter()
        .zip(&listeners)
        .map(|(id, l)| (NodeId(*id), l.local_addr().unwrap().to_string()))
        .collect();
    ids.iter()
        .zip(listeners)
        .zip(settings)
        .map(|((id, listener), settings)| {
            debug_assert_eq!(settings.me, NodeId(*id));
            listener.set_nonblocking(true).unwrap();
            let poll = Poll::new().unwrap();
            let waker = Arc::new(Waker::new(poll.registry(), WAKER_TOKEN).unwrap());
            let transport = Transport::new(
                mio::net::TcpListener::from_std(listener),
                &addrs,
                settings,
                poll.registry(),
                waker,
                clock::now(),
            )
            .unwrap();
            Side {
                poll,
                events: Events::with_capacity(64),
                transport,
                received: Vec::new(),
            }
        })
        .collect()
}

fn turn(side: &mut Side) {
    side.poll
        .poll(&mut side.events, Some(Duration::from_millis(2)))
        .unwrap();
    let now = clock::now();
    let registry = side.poll.registry();
    for event in side.events.iter() {
        side.transport
            .on_event(registry, event.token(), now, &mut side.received);
    }
    side.transport.read_pending(registry, &mut side.received);
    side.transport.on_resolved(registry, now);
    side.transport.on_timers(registry, now);
    side.transport.flush(registry, now);
}

/// Turns every side until `done` holds; false if the wall-time bound passed first.
fn pump(sides: &mut [Side], done: impl FnMut(&[Side]) -> bool) -> bool {
    pump_for(sides, WALL_TIME_MAX, done)
}

fn pump_for(
    sides: &mut [Side],
    wall_time_max: Duration,
    mut done: impl FnMut(&[Side]) -> bool,
) -> bool {
    let start = clock::now();
    for _ in 0..100_000 {
        if done(sides) {
            return true;
        }
        if clock::now().duration_since(start) > wall_time_max {
            return false;
        }
        sides.iter_mut().for_each(turn);
    }
    false
}

fn read_request(from: u64, to: u64, id: u64) -> Message {
    Message {
        from: NodeId(from),
        to: NodeId(to),
        term: Term(1),
        body: MessageBody::ReadIndexRequest { id: ReadId(id) },
    }
}

fn addr_of(side: &Side) -> String {
    side.transport.local_addr().unwrap().to_string()
}

/// Captures this thread's log lines.
fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let sink = Sink(Arc::clone(&buffer));
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    (buffer, tracing::subscriber::set_default(subscriber))
}

fn logs(buffer: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8_lossy(&buffer.lock().unwrap()).into_owned()
}

/// Sends one message from side 1 to side 0 and waits until it arrives.
fn still_hears_its_peer(sides: &mut [Side], id: u64) {
    sides[1].transport.send(&read_request(2, 1, id));
    assert!(
        pump(sides, |s| s[0]
            .received
            .iter()
            .any(|m| *m == read_request(2, 1, id))),
        "message {id} never arrived"
    );
}

/// Whether the raw connection was closed by the node (EOF or reset), bounded in time.
fn closed_by_node(sides: &mut [Side], raw: &mut StdStream) -> bool {
    raw.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 256];
    pump(sides, |_| match raw.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
        Err(_) => true,
    })
}

/// A plain TCP connection to `side` that says hello as `from` (cluster 1, to node 1)
/// and sends `message`.
fn raw_peer_says(side: &Side, from: NodeId, message: &Message) -> StdStream {
    let mut raw = StdStream::connect(addr_of(side)).unwrap();
    raw.write_all(&Hello::new(1, from, NodeId(1)).encode())
        .unwrap();
    let mut frame = Vec::new();
    super::frame::encode_frame(message, 1 << 20, &mut frame).unwrap();
    raw.write_all(&frame).unwrap();
    raw
}

#[test]
fn two_transports_exchange_messages_both_ways() {
    let mut sides = sides(&[1, 2], &[1, 1]);
    sides[0].transport.send(&read_request(1, 2, 7));
    sides[1].transport.send(&read_request(2, 1, 8));
    assert!(pump(&mut sides, |s| s[0].received.len() == 1
        && s[1].received.len() == 1));
    assert_eq!(sides[1].received[0], read_request(1, 2, 7));
    assert_eq!(sides[0].received[0], read_request(2, 1, 8));
    assert!(sides[0].transport.peer_status()[0].connected);
}

#[test]
fn garbage_bytes_are_refused_and_logged() {
    let (log, _guard) = capture_logs();
    let mut sides = sides(&[1, 2], &[1, 1]);
    let mut raw = StdStream::connect(addr_of(&sides[0])).unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(closed_by_node(&mut sides, &mut raw));
    assert!(logs(&log).contains("not a raftrs peer"), "{}", logs(&log));
    still_hears_its_peer(&mut sides, 1);
}

#[test]
fn an_oversized_frame_closes_the_connection_without_buffering_it() {
    let (log, _guard) = capture_logs();
    let mut sides = sides(&[1, 2], &[1, 1]);
    let mut raw = StdStream::connect(addr_of(&sides[0])).unwrap();
    raw.write_all(&Hello::new(1, NodeId(2), NodeId(1)).encode())
        .unwrap();
    raw.write_all(&(1u32 << 30).to_le_bytes()).unwrap();
    raw.write_all(&[0u8; 1024]).unwrap();
    assert!(closed_by_node(&mut sides, &mut raw));
    assert!(logs(&log).contains("exceeds the maximum"), "{}", logs(&log));
    still_hears_its_peer(&mut sides, 2);
}

#[test]
fn a_node_of_another_cluster_is_never_heard() {
    let (log, _guard) = capture_logs();
    // Side 2 (node 3) believes it is in cluster 99 but has node 1's address.
    let mut sides = sides(&[1, 2, 3], &[1, 1, 99]);
    sides[2].transport.send(&read_request(3, 1, 5));
    let mut raw = StdStream::connect(addr_of(&sides[0])).unwrap();
    raw.write_all(&Hello::new(99, NodeId(2), NodeId(1)).encode())
        .unwrap();
    assert!(closed_by_node(&mut sides, &mut raw));
    still_hears_its_peer(&mut sides, 3);
    assert!(
        pump(&mut sides, |_| logs(&log)
            .matches("cluster id mismatch")
            .count()
            >= 2),
        "{}",
        logs(&log)
    );
    assert!(
        sides[0].received.iter().all(|m| m.from != NodeId(3)),
        "a foreign node was heard"
    );
}

#[test]
fn a_silent_peer_is_dropped_at_the_handshake_deadline() {
    let (log, _guard) = capture_logs();
    let mut sides = sides(&[1, 2], &[1, 1]);
    let mut raw = StdStream::connect(addr_of(&sides[0])).unwrap();
    assert!(closed_by_node(&mut sides, &mut raw));
    assert!(
        logs(&log).contains("did not complete the handshake in time"),
        "{}",
        logs(&log)
    );
    still_hears_its_peer(&mut sides, 4);
}

#[test]
fn an_impersonating_message_closes_the_connection() {
    let (log, _guard) = capture_logs();
    let mut sides = sides(&[1, 2, 3], &[1, 1, 1]);
    let mut raw = raw_peer_says(&sides[0], NodeId(2), &read_request(3, 1, 9));
    assert!(closed_by_node(&mut sides, &mut raw));
    assert!(
        logs(&log).contains("from or to another node"),
        "{}",
        logs(&log)
    );
    assert!(sides[0].received.is_empty());
}

#[test]
fn a_restarted_peer_is_reconnected() {
    let mut sides = sides(&[1, 2], &[1, 1]);
    still_hears_its_peer(&mut sides, 1);
    // Node 1 goes away and comes back on the same port.
    let addr = addr_of(&sides[0]);
    let mut peers = BTreeMap::new();
    peers.insert(NodeId(1), addr.clone());
    peers.insert(NodeId(2), addr_of(&sides[1]));
    let old = sides.remove(0);
    drop(old);
    let listener = std::net::TcpListener::bind(&addr).unwrap();
    listener.set_nonblocking(true).unwrap();
    let poll = Poll::new().unwrap();
    let waker = Arc::new(Waker::new(poll.registry(), WAKER_TOKEN).unwrap());
    let transport = Transport::new(
        mio::net::TcpListener::from_std(listener),
        &peers,
        settings(1, 1),
        poll.registry(),
        waker,
        clock::now(),
    )
    .unwrap();
    sides.insert(
        0,
        Side {
            poll,
            events: Events::with_capacity(64),
            transport,
            received: Vec::new(),
        },
    );
    // Messages sent while the old connection dies may be lost; a later one arrives
    // once node 2 notices and redials.
    for attempt in 0..50 {
        sides[1].transport.send(&read_request(2, 1, 1000 + attempt));
        if pump_for(&mut sides, Duration::from_millis(200), |s| {
            !s[0].received.is_empty()
        }) {
            break;
        }
    }
    assert!(
        !sides[0].received.is_empty(),
        "the restarted node never heard its peer"
    );
}

#[test]
fn a_peer_named_by_host_name_is_resolved_off_the_loop_and_reached() {
    let mut sides = sides(&[1, 2], &[1, 1]);
    // Re-address node 1 as "localhost:<port>": a name, not an IP literal.
    let port = sides[0].transport.local_addr().unwrap().port();
    sides[1]
        .transport
        .add_peer(NodeId(1), format!("localhost:{port}"), clock::now());
    assert_eq!(
        sides[1].transport.peer_addr(NodeId(1)),
        Some(format!("localhost:{port}").as_str())
    );
    for attempt in 0..50 {
        sides[1].transport.send(&read_request(2, 1, 2000 + attempt));
        if pump_for(&mut sides, Duration::from_millis(200), |s| {
            !s[0].received.is_empty()
        }) {
            break;
        }
    }
    assert!(
        !sides[0].received.is_empty(),
        "never reached a peer named localhost"
    );
}

#[path = "../../tests/support/pki.rs"]
mod pki;

/// Settings for node `me` with TLS: a certificate from `pki` naming `cert_id`.
fn tls_settings(me: u64, pki: &pki::TestPki, cert_id: u64) -> TransportSettings {
    TransportSettings {
        tls: Some(pki.settings_for(NodeId(cert_id))),
        ..settings(me, 1)
    }
}

#[test]
fn two_tls_transports_exchange_messages_both_ways() {
    let pki = pki::TestPki::new("test CA");
    let settings = vec![tls_settings(1, &pki, 1), tls_settings(2, &pki, 2)];
    let mut sides = sides_with(&[1, 2], settings);
    sides[0].transport.send(&read_request(1, 2, 7));
    sides[1].transport.send(&read_request(2, 1, 8));
    assert!(pump(&mut sides, |s| s[0].received.len() == 1
        && s[1].received.len() == 1));
    assert_eq!(sides[1].received[0], read_request(1, 2, 7));
    assert_eq!(sides[0].received[0], read_request(2, 1, 8));
    // Large frames cross the TLS layer's bounded buffer in many records.
    let big = Message {
        from: NodeId(2),
        to: NodeId(1),
        term: Term(1),
        body: MessageBody::AppendEntries {
            prev_log_index: raft_core::LogIndex(0),
            prev_log_term: Term(0),
            entries: (1..=4)
                .map(|i| raft_core::Entry {
                    term: Term(1),
                    index: raft_core::LogIndex(i),
                    payload: raft_core::EntryPayload::Command(vec![i as u8; 200_000].into()),
                })
                .collect(),
            leader_commit: raft_core::LogIndex(0),
        },
    };
    for _ in 0..3 {
        sides[1].transport.send(&big);
    }
    assert!(pump(&mut sides, |s| s[0].received.len() == 4));
    assert!(sides[0].received[1..].iter().all(|m| *m == big));
}

#[test]
fn a_plain_tcp_peer_is_refused_by_a_tls_node() {
    let (log, _guard) = capture_logs();
    let pki = pki::TestPki::new("test CA");
    let settings = vec![tls_settings(1, &pki, 1), tls_settings(2, &pki, 2)];
    let mut sides = sides_with(&[1, 2], settings);
    // A peer that knows the cluster id but has no certificate at all.
    let mut raw = raw_peer_says(&sides[0], NodeId(2), &read_request(2, 1, 9));
    assert!(closed_by_node(&mut sides, &mut raw));
    assert!(
        logs(&log).contains("closing an inbound connection"),
        "{}",
        logs(&log)
    );
    assert!(
        sides[0]
            .received
            .iter()
            .all(|m| *m != read_request(2, 1, 9)),
        "a message without TLS was heard"
    );
    still_hears_its_peer(&mut sides, 10);
}

/// Node 3 (side 2) sends node 1 a message: node 1 keeps hearing node 2, logs
/// `refusal`, and never hears node 3.
fn node_3_is_never_heard(sides: &mut [Side], log: &Arc<Mutex<Vec<u8>>>, refusal: &str) {
    sides[2].transport.send(&read_request(3, 1, 5));
    still_hears_its_peer(sides, 11);
    assert!(
        pump(sides, |_| logs(log).contains(refusal)),
        "{}",
        logs(log)
    );
    let _ = pump_for(sides, Duration::from_millis(300), |_| false);
    assert!(
        sides[0].received.iter().all(|m| m.from != NodeId(3)),
        "node 3 was heard"
    );
}

#[test]
fn a_peer_whose_certificate_is_from_another_ca_is_refused() {
    let (log, _guard) = capture_logs();
    let pki = pki::TestPki::new("test CA");
    let rogue = pki::TestPki::new("rogue CA");
    // Node 3 has a certificate naming node 3, from a CA the cluster does not trust.
    let settings = vec![
        tls_settings(1, &pki, 1),
        tls_settings(2, &pki, 2),
        tls_settings(3, &rogue, 3),
    ];
    let mut sides = sides_with(&[1, 2, 3], settings);
    node_3_is_never_heard(&mut sides, &log, "UnknownIssuer");
    assert!(!sides[2].transport.is_connected(NodeId(1)));
}

#[test]
fn a_certificate_for_node_2_cannot_speak_as_node_3() {
    let (log, _guard) = capture_logs();
    let pki = pki::TestPki::new("test CA");
    // Node 3 runs with node 2's certificate (stolen, or a configuration mix-up).
    let settings = vec![
        tls_settings(1, &pki, 1),
        tls_settings(2, &pki, 2),
        tls_settings(3, &pki, 2),
    ];
    let mut sides = sides_with(&[1, 2, 3], settings);
    node_3_is_never_heard(
        &mut sides,
        &log,
        "claims to be node n3, but its certificate does not name raft-node-3",
    );
    // And a dialer expecting node 3 refuses a server that proves to be node 2.
    sides[0].transport.send(&read_request(1, 3, 13));
    assert!(
        pump(&mut sides, |_| logs(&log)
            .contains("certificate not valid for name \"raft-node-3\"")),
        "{}",
        logs(&log)
    );
    assert!(sides[2].received.is_empty());
}

#[test]
fn a_peer_that_stops_answering_is_reconnected_and_one_that_answers_is_not() {
    let (log, _guard) = capture_logs();
    let quick = |me| TransportSettings {
        peer_silence_timeout: Duration::from_millis(200),
        ..settings(me, 1)
    };
    let mut sides = sides_with(&[1, 2], vec![quick(1), quick(2)]);
    // Node 2 answers every request of node 1 for a while: no reconnection.
    for round in 0..10 {
        sides[0].transport.send(&read_request(1, 2, round));
        assert!(pump(&mut sides, |s| s[1].received.len() as u64 > round));
        sides[1].transport.send(&Message {
            body: MessageBody::HeartbeatResponse { read_round: round },
            ..read_request(2, 1, 0)
        });
        let _ = pump_for(&mut sides, Duration::from_millis(50), |_| false);
    }
    assert!(
        !logs(&log).contains("nothing heard from the peer"),
        "{}",
        logs(&log)
    );
    // Then node 2 goes quiet (the requests reach it, no answer comes back).
    sides[0].transport.send(&read_request(1, 2, 100));
    assert!(
        pump(&mut sides, |_| logs(&log).contains(
            "lost the connection to a peer: nothing heard from the peer in time"
        )),
        "{}",
        logs(&log)
    );
    // The new connection carries the next message.
    sides[0].transport.send(&read_request(1, 2, 101));
    assert!(pump(&mut sides, |s| s[1]
        .received
        .contains(&read_request(1, 2, 101))));
}
