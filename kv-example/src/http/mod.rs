//! The HTTP front end: HTTP/1.1 with keep-alive and pipelining, requests parsed by
//! `httparse` ([`request`]), answered by [`routes`], written by [`response`]; over
//! TLS (HTTPS) when given a server configuration. One event loop serves every
//! connection ([`server`] says how a request travels).

mod conn;
pub mod request;
pub mod response;
pub mod routes;
pub mod server;

pub use server::{HttpServer, IDLE_TIMEOUT};

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    use std::sync::Arc;

    use super::*;
    use crate::fake::MemoryBackend;
    use crate::server::ServerLimits;

    fn serve(backend: MemoryBackend) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        HttpServer::spawn(listener, Arc::new(backend), None, ServerLimits::default()).unwrap()
    }

    /// Sends raw requests on one connection, closes its sending side, and returns
    /// everything the server answered.
    fn exchange(server: &HttpServer, requests: &str) -> String {
        let mut stream = TcpStream::connect(server.local_addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(requests.as_bytes()).unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).unwrap();
        out
    }

    fn statuses(answer: &str) -> Vec<&str> {
        answer
            .lines()
            .filter(|l| l.starts_with("HTTP/1.1 "))
            .map(|l| &l[9..12])
            .collect()
    }

    #[test]
    fn put_get_delete_on_one_keep_alive_connection() {
        let server = serve(MemoryBackend::leader());
        let answer = exchange(
            &server,
            "PUT /kv/a%2Fb HTTP/1.1\r\nContent-Length: 4\r\n\r\nbar\n\
             GET /kv/a%2Fb HTTP/1.1\r\n\r\n\
             DELETE /kv/a%2Fb HTTP/1.1\r\n\r\n\
             GET /kv/a%2Fb HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(statuses(&answer), ["200", "200", "200", "404"], "{answer}");
        assert!(answer.contains("X-Raft-Index: 1\r\n"), "{answer}");
        assert!(answer.contains("\r\n\r\nbar\n"), "{answer}");
        assert!(
            answer.contains("\r\n\r\nvalue does not exist\n"),
            "{answer}"
        );
        assert!(answer.ends_with("value does not exist\n"));
    }

    #[test]
    fn status_is_json() {
        let server = serve(MemoryBackend::leader());
        let answer = exchange(&server, "GET /status HTTP/1.0\r\n\r\n");
        assert!(
            answer.contains("Content-Type: application/json\r\n"),
            "{answer}"
        );
        let body = answer.split("\r\n\r\n").nth(1).unwrap();
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["role"], "leader");
        assert_eq!(json["node"], 1);
        assert!(json["commit_index"].is_u64());
        assert!(json["peers"].is_array());
    }

    #[test]
    fn a_write_to_a_follower_is_redirected_to_the_leader() {
        let server = serve(MemoryBackend::follower_of_node_1(true));
        let answer = exchange(
            &server,
            "PUT /kv/k?x=1 HTTP/1.1\r\nContent-Length: 1\r\nConnection: close\r\n\r\nv",
        );
        assert_eq!(statuses(&answer), ["307"]);
        assert!(
            answer.contains("Location: http://127.0.0.1:9001/kv/k?x=1\r\n"),
            "{answer}"
        );
    }

    #[test]
    fn errors_have_their_status_codes_and_the_connection_survives_them() {
        let server = serve(MemoryBackend::leader());
        let answer = exchange(
            &server,
            "GET /nope HTTP/1.1\r\n\r\n\
             POST /status HTTP/1.1\r\n\r\n\
             PATCH /kv/a HTTP/1.1\r\n\r\n\
             PUT /kv/a HTTP/1.1\r\nContent-Length: 3\r\n\r\na b\
             PUT /kv/a HTTP/1.1\r\n\r\n\
             PUT /kv/a HTTP/1.1\r\nX-Client-Id: 3\r\nContent-Length: 1\r\n\r\nv\
             GET /kv/ HTTP/1.1\r\n\r\n\
             GET /kv/a HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
        );
        assert_eq!(
            statuses(&answer),
            ["404", "405", "405", "400", "400", "400", "400", "413"],
            "{answer}"
        );
        assert!(answer.contains("Allow: GET, PUT, DELETE\r\n"));
        assert!(answer.contains("X-Client-Id and X-Request-Seq go together"));
        assert!(answer.ends_with("bytes\n"), "the 413 closes: {answer}");
    }

    #[test]
    fn a_client_that_expects_continue_gets_it_and_chunked_bodies_work() {
        let server = serve(MemoryBackend::leader());
        let answer = exchange(
            &server,
            "PUT /kv/a HTTP/1.1\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n\
             2\r\nba\r\n1\r\nr\r\n0\r\n\r\n\
             GET /kv/a HTTP/1.1\r\nX-Client-Id: 9\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(statuses(&answer), ["100", "200", "200"], "{answer}");
        assert!(answer.ends_with("\r\n\r\nbar\n"), "{answer}");
    }

    #[test]
    fn nodes_are_added_and_removed_on_the_leader_and_redirected_on_a_follower() {
        let server = serve(MemoryBackend::leader());
        let body = r#"{"id":4,"raft_addr":"h:7004","client_addr":"h:8004","http_addr":"h:9004"}"#;
        let answer = exchange(
            &server,
            &format!(
                "POST /cluster/nodes HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}\
                 GET /cluster/nodes HTTP/1.1\r\n\r\n\
                 DELETE /cluster/nodes/4 HTTP/1.1\r\n\r\n\
                 DELETE /cluster/nodes/4 HTTP/1.1\r\n\r\n\
                 POST /cluster/nodes HTTP/1.1\r\nContent-Length: 2\r\n\r\n{{}}\
                 DELETE /cluster/nodes/x HTTP/1.1\r\n\r\n\
                 PUT /cluster/nodes HTTP/1.1\r\nConnection: close\r\n\r\n",
                body.len()
            ),
        );
        assert_eq!(
            statuses(&answer),
            ["200", "200", "200", "404", "400", "400", "405"],
            "{answer}"
        );
        let first = answer.split("HTTP/1.1 ").nth(1).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(first.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(json["voters"], serde_json::json!([1, 4]), "{answer}");
        assert_eq!(json["members"][1]["client_addr"], "h:8004", "{answer}");
        assert!(answer.contains("node 4 is not a member"), "{answer}");

        let follower = serve(MemoryBackend::follower_of_node_1(true));
        let answer = exchange(
            &follower,
            "DELETE /cluster/nodes/2 HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(statuses(&answer), ["307"]);
        assert!(
            answer.contains("Location: http://127.0.0.1:9001/cluster/nodes/2\r\n"),
            "{answer}"
        );
    }

    #[test]
    fn leadership_moves_on_the_leader_and_is_redirected_on_a_follower() {
        let server = serve(MemoryBackend::leader());
        let answer = exchange(
            &server,
            "POST /cluster/leader HTTP/1.1\r\nContent-Length: 1\r\n\r\n1\
             POST /cluster/leader HTTP/1.1\r\nContent-Length: 8\r\n\r\n{\"id\":1}\
             POST /cluster/leader HTTP/1.1\r\nContent-Length: 1\r\n\r\n9\
             POST /cluster/leader HTTP/1.1\r\nContent-Length: 1\r\n\r\nx\
             POST /cluster/leader HTTP/1.1\r\nContent-Length: 0\r\n\r\n\
             POST /cluster/leader HTTP/1.1\r\nContent-Length: 1\r\n\r\n0\
             GET /cluster/leader HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(
            statuses(&answer),
            ["200", "200", "404", "400", "400", "400", "405"],
            "{answer}"
        );
        let first = answer.split("HTTP/1.1 ").nth(1).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(first.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(json, serde_json::json!({ "leader": 1 }), "{answer}");
        assert!(answer.contains("node 9 is not a member"), "{answer}");

        let follower = serve(MemoryBackend::follower_of_node_1(true));
        let answer = exchange(
            &follower,
            "POST /cluster/leader HTTP/1.1\r\nContent-Length: 1\r\nConnection: close\r\n\r\n1",
        );
        assert_eq!(statuses(&answer), ["307"]);
        assert!(
            answer.contains("Location: http://127.0.0.1:9001/cluster/leader\r\n"),
            "{answer}"
        );
    }

    /// A leader whose writes and barriers never come back.
    struct Silent(MemoryBackend);

    impl crate::api::Backend for Silent {
        fn write(&self, _: crate::api::RequestId, _: kv_model::Operation) -> WriteResult {
            unreachable!("the event loop starts writes, it does not wait for them")
        }
        fn get(
            &self,
            key: &str,
            c: crate::api::Consistency,
        ) -> Result<String, crate::api::KvError> {
            self.0.get(key, c)
        }
        fn start_write(&self, _: crate::api::RequestId, _: kv_model::Operation, _: Ticket) {}
        fn start_read_barrier(&self, _: Ticket) {}
        fn request_timeout(&self) -> Duration {
            Duration::from_millis(200)
        }
        fn status(&self) -> Result<crate::api::StatusReport, crate::api::KvError> {
            self.0.status()
        }
        fn metrics(&self) -> Result<crate::api::MetricsReport, crate::api::KvError> {
            self.0.metrics()
        }
        fn snapshot(&self) -> Result<u64, crate::api::KvError> {
            self.0.snapshot()
        }
        fn add_node(&self, n: &crate::api::NewNode) -> MembershipResult {
            self.0.add_node(n)
        }
        fn remove_node(&self, id: u64) -> MembershipResult {
            self.0.remove_node(id)
        }
        fn transfer_leader(&self, id: u64) -> Result<(), crate::api::KvError> {
            self.0.transfer_leader(id)
        }
    }

    type WriteResult = Result<crate::api::WriteAck, crate::api::KvError>;
    type MembershipResult = Result<crate::api::MembershipReport, crate::api::KvError>;
    use crate::ticket::Ticket;

    #[test]
    fn requests_without_an_answer_time_out_with_what_is_known() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let backend = Arc::new(Silent(MemoryBackend::leader()));
        let server = HttpServer::spawn(listener, backend, None, ServerLimits::default()).unwrap();
        let answer = exchange(
            &server,
            "PUT /kv/k HTTP/1.1\r\nX-Client-Id: 7\r\nX-Request-Seq: 3\r\nContent-Length: 1\r\n\r\nv\
             GET /kv/k HTTP/1.1\r\n\r\n\
             GET /status HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(statuses(&answer), ["504", "504", "200"], "{answer}");
        assert!(answer.contains("fate is unknown"), "{answer}");
        assert!(answer.contains("--req 7:3"), "{answer}");
        assert!(
            answer.contains("waiting for a linearizable read"),
            "{answer}"
        );
    }

    #[test]
    fn request_ids_from_headers_suppress_duplicates() {
        let server = serve(MemoryBackend::leader());
        let put = |seq: u64, v: &str| {
            format!(
                "PUT /kv/k HTTP/1.1\r\nX-Client-Id: 4\r\nX-Request-Seq: {seq}\r\nContent-Length: 1\r\n\r\n{v}"
            )
        };
        let requests = format!(
            "{}{}{}GET /kv/k HTTP/1.1\r\nConnection: close\r\n\r\n",
            put(1, "a"),
            put(2, "b"),
            put(1, "a")
        );
        let answer = exchange(&server, &requests);
        assert_eq!(statuses(&answer), ["200", "200", "409", "200"], "{answer}");
        assert!(answer.ends_with("\r\n\r\nb\n"), "{answer}");
    }
}
