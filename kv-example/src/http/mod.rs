//! The HTTP front end: HTTP/1.1 with keep-alive and pipelining, requests parsed by
//! `httparse` ([`request`]), answered by [`routes`], written by [`response`]; over
//! TLS (HTTPS) when given a server configuration.

pub mod request;
pub mod response;
pub mod routes;

use std::cell::RefCell;
use std::io::{BufWriter, Read, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use crate::api::{Backend, Session};
use crate::server::ConnectionHandler;
use request::{RequestError, RequestReader};
use response::Response;

/// How long a keep-alive connection may sit idle (or a client take to send a
/// request) before it is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Writes spent on the last TLS records (an alert, close_notify) of a connection.
const CLOSE_WRITES_MAX: usize = 8;

/// Serves HTTP (or HTTPS) from a [`Backend`].
#[derive(Debug)]
pub struct HttpHandler<B> {
    backend: Arc<B>,
    tls: Option<Arc<ServerConfig>>,
}

impl<B> HttpHandler<B> {
    /// A handler answering from `backend`.
    pub fn new(backend: Arc<B>) -> Self {
        HttpHandler { backend, tls: None }
    }

    /// Serves HTTPS with `config` instead of plain HTTP.
    pub fn with_tls(mut self, config: Arc<ServerConfig>) -> Self {
        self.tls = Some(config);
        self
    }
}

/// One TLS stream shared by the connection's reader and writer (both on the
/// connection's own thread; a TLS session cannot be split like a socket).
struct Shared<S>(Rc<RefCell<S>>);

impl<S: Read> Read for Shared<S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().read(buf)
    }
}

impl<S: Write> Write for Shared<S> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.borrow_mut().flush()
    }
}

impl<B: Backend> ConnectionHandler for HttpHandler<B> {
    fn serve(&self, stream: TcpStream) {
        let peer = stream.peer_addr().ok();
        if let Err(e) = self.serve_connection(stream) {
            tracing::debug!(?peer, "http connection ended: {e}");
        }
    }

    fn refuse(&self, mut stream: TcpStream) {
        let response = Response::text(503, "too many connections; try again later")
            .with_header("Retry-After", "1");
        // An HTTPS client would not understand a plain answer; it sees the close.
        if self.tls.is_none() {
            let _ = response.write_to(&mut stream, false);
        }
    }
}

impl<B: Backend> HttpHandler<B> {
    fn serve_connection(&self, stream: TcpStream) -> std::io::Result<()> {
        // The TLS handshake too must finish within the idle timeout.
        stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
        let Some(tls) = &self.tls else {
            let reader = RequestReader::new(stream.try_clone()?);
            return self.serve_requests(reader, BufWriter::new(stream), false);
        };
        let conn = ServerConnection::new(Arc::clone(tls)).map_err(std::io::Error::other)?;
        let shared = Rc::new(RefCell::new(StreamOwned::new(conn, stream)));
        let reader = RequestReader::new(Shared(Rc::clone(&shared)));
        let writer = BufWriter::new(Shared(Rc::clone(&shared)));
        let served = self.serve_requests(reader, writer, true);
        // A clean close (close_notify), so the client can tell the end from a cut;
        // written directly, since the stream's own flush would also wait to read.
        let mut stream = shared.borrow_mut();
        let StreamOwned { conn, sock } = &mut *stream;
        conn.send_close_notify();
        for _ in 0..CLOSE_WRITES_MAX {
            if !conn.wants_write() || conn.write_tls(sock).is_err() {
                break;
            }
        }
        served
    }

    fn serve_requests<R: Read, W: Write>(
        &self,
        mut reader: RequestReader<R>,
        mut writer: BufWriter<W>,
        secure: bool,
    ) -> std::io::Result<()> {
        let mut session = Session::new();
        loop {
            let mut head = match reader.read_head() {
                Ok(head) => head,
                Err(RequestError::Closed) => return Ok(()),
                Err(RequestError::Io(e)) => return Err(e),
                Err(RequestError::Bad { status, reason }) => {
                    return refuse_and_close(&mut writer, status, &reason)
                }
            };
            let framing = match head.framing() {
                Ok(framing) => framing,
                Err(RequestError::Bad { status, reason }) => {
                    return refuse_and_close(&mut writer, status, &reason)
                }
                Err(other) => return Err(std::io::Error::other(format!("{other:?}"))),
            };
            if head.expects_continue() {
                writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
                writer.flush()?;
            }
            let body = match reader.read_body(framing) {
                Ok(body) => body,
                Err(RequestError::Bad { status, reason }) => {
                    return refuse_and_close(&mut writer, status, &reason)
                }
                Err(RequestError::Io(e)) => return Err(e),
                Err(RequestError::Closed) => return Ok(()),
            };
            head.secure = secure;
            // Counted from the request to its flushed answer (see `drain`).
            let in_flight = self.backend.begin_request();
            let response = routes::route(&*self.backend, &mut session, &head, &body);
            let keep_alive = head.keep_alive();
            response.write_to(&mut writer, keep_alive)?;
            writer.flush()?;
            drop(in_flight);
            if !keep_alive {
                return Ok(());
            }
        }
    }
}

fn refuse_and_close(out: &mut impl Write, status: u16, reason: &str) -> std::io::Result<()> {
    Response::text(status, reason).write_to(out, false)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    use super::*;
    use crate::fake::MemoryBackend;
    use crate::server::{Server, ServerLimits};

    fn serve(backend: MemoryBackend) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let handler = HttpHandler::new(Arc::new(backend));
        Server::spawn("http-test", listener, handler, ServerLimits::default()).unwrap()
    }

    /// Sends raw requests on one connection, closes its sending side, and returns
    /// everything the server answered.
    fn exchange(server: &Server, requests: &str) -> String {
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
