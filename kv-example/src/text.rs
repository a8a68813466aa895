//! The text front end: the [`protocol`] over TCP, one request line
//! in, one answer line out, as many as the client likes on one connection.

use std::io::{BufReader, BufWriter, Write};
use std::net::TcpStream;
use std::sync::Arc;

use kv_model::Operation;

use crate::api::{Backend, Consistency, Session};
use crate::line::{LineError, LineReader, LINE_BYTES_MAX};
use crate::protocol::{self, Reply, Request, HELP};
use crate::server::ConnectionHandler;

/// Serves the text protocol from a [`Backend`].
#[derive(Debug)]
pub struct TextHandler<B> {
    backend: Arc<B>,
}

impl<B> TextHandler<B> {
    /// A handler answering from `backend`.
    pub fn new(backend: Arc<B>) -> Self {
        TextHandler { backend }
    }
}

impl<B: Backend> ConnectionHandler for TextHandler<B> {
    fn serve(&self, stream: TcpStream) {
        let peer = stream.peer_addr().ok();
        if let Err(e) = self.serve_connection(stream) {
            tracing::debug!(?peer, "text connection ended: {e}");
        }
    }

    fn refuse(&self, mut stream: TcpStream) {
        let _ = writeln!(
            stream,
            "{}",
            Reply::Error("too many connections; try again later".into())
        );
    }
}

impl<B: Backend> TextHandler<B> {
    fn serve_connection(&self, stream: TcpStream) -> std::io::Result<()> {
        let mut reader = LineReader::new(BufReader::new(stream.try_clone()?), LINE_BYTES_MAX);
        let mut writer = BufWriter::new(stream);
        let mut session = Session::new();
        loop {
            let line = reader.read_line();
            // Counted from the request to its flushed answer (see `drain`).
            let _in_flight = self.backend.begin_request();
            let reply = match line {
                Ok(None) => break,
                Ok(Some(line)) => self.answer(&line, &mut session),
                Err(LineError::TooLong { limit }) => Reply::Error(format!(
                    "request line longer than {limit} bytes; the rest of it is skipped"
                )),
                Err(LineError::InvalidUtf8) => {
                    Reply::Error("the request is not valid UTF-8".into())
                }
                Err(LineError::Io(e)) => return Err(e),
            };
            writeln!(writer, "{reply}")?;
            // Pipelined requests get their answers in one write; otherwise answer now.
            if reader.get_ref().buffer().is_empty() {
                writer.flush()?;
            }
        }
        writer.flush()
    }

    /// The answer to one request line.
    pub fn answer(&self, line: &str, session: &mut Session) -> Reply {
        let request = match protocol::parse(line) {
            Ok(request) => request,
            Err(reason) => return Reply::Error(reason),
        };
        let backend = &*self.backend;
        let result = match request {
            Request::Put { key, value, id } => {
                let id = id.unwrap_or_else(|| session.next_request());
                backend
                    .write(id, Operation::Put { key, value })
                    .map(|ack| Reply::Appended(ack.index))
            }
            Request::Delete { key, id } => {
                let id = id.unwrap_or_else(|| session.next_request());
                backend
                    .write(id, Operation::Delete { key })
                    .map(|ack| Reply::Appended(ack.index))
            }
            Request::Get { key, stale } => {
                let consistency = if stale {
                    Consistency::Stale
                } else {
                    Consistency::Linearizable
                };
                backend.get(&key, consistency).map(Reply::Value)
            }
            Request::Status => backend.status().map(|s| Reply::Info(s.to_line())),
            Request::Snapshot => backend
                .snapshot()
                .map(|index| Reply::Info(format!("snapshot at {index}"))),
            Request::AddNode(node) => backend
                .add_node(&node)
                .map(|m| Reply::Info(format!("node {} is a voter; {}", node.id, m.to_words()))),
            Request::RemoveNode(id) => backend
                .remove_node(id)
                .map(|m| Reply::Info(format!("node {id} is removed; {}", m.to_words()))),
            Request::Transfer(id) => backend
                .transfer_leader(id)
                .map(|()| Reply::Info(format!("node {id} leads"))),
            Request::Help => Ok(Reply::Info(HELP.to_string())),
        };
        result.unwrap_or_else(|e| Reply::Error(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    use super::*;
    use crate::fake::MemoryBackend;
    use crate::server::{Server, ServerLimits};

    fn serve(backend: MemoryBackend, limits: ServerLimits) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let handler = TextHandler::new(Arc::new(backend));
        Server::spawn("text-test", listener, handler, limits).unwrap()
    }

    fn connect(server: &Server) -> (TcpStream, BufReader<TcpStream>) {
        let stream = TcpStream::connect(server.local_addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        (stream, reader)
    }

    /// Sends `input` at once (pipelined) and reads `n` answer lines.
    fn exchange(server: &Server, input: &[u8], n: usize) -> Vec<String> {
        let (mut stream, mut reader) = connect(server);
        stream.write_all(input).unwrap();
        (0..n)
            .map(|_| {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                line.trim_end_matches('\n').to_string()
            })
            .collect()
    }

    #[test]
    fn the_readme_session_over_a_socket() {
        let server = serve(MemoryBackend::leader(), ServerLimits::default());
        let got = exchange(
            &server,
            b"put 1 bar\nget 1\ndel 1\nget 1\nget --stale 1\n",
            5,
        );
        assert_eq!(
            got,
            [
                "Ok: Appended at 1",
                "Ok: bar",
                "Ok: Appended at 2",
                "Error: value does not exist",
                "Error: value does not exist"
            ]
        );
    }

    #[test]
    fn a_follower_names_the_leaders_client_address() {
        let server = serve(
            MemoryBackend::follower_of_node_1(false),
            ServerLimits::default(),
        );
        assert_eq!(
            exchange(&server, b"put 1 bar\n", 1),
            ["Error: Leader is 127.0.0.1:8001"]
        );
    }

    #[test]
    fn membership_commands_answer_with_the_membership_or_the_leader() {
        let server = serve(MemoryBackend::leader(), ServerLimits::default());
        let got = exchange(
            &server,
            b"add-node 4 h:7004 h:8004 h:9004\nremove-node 4\nremove-node 4\nstatus\n",
            4,
        );
        assert_eq!(got[0], "Ok: node 4 is a voter; voters=1,4 learners=-");
        assert_eq!(got[1], "Ok: node 4 is removed; voters=1 learners=-");
        assert_eq!(got[2], "Error: node 4 is not a member");
        assert!(got[3].ends_with(" voters=1 learners=-"), "{got:?}");

        let follower = serve(
            MemoryBackend::follower_of_node_1(false),
            ServerLimits::default(),
        );
        assert_eq!(
            exchange(&follower, b"remove-node 2\n", 1),
            ["Error: Leader is 127.0.0.1:8001"]
        );
    }

    #[test]
    fn transfer_answers_on_the_leader_and_names_it_on_a_follower() {
        let server = serve(MemoryBackend::leader(), ServerLimits::default());
        let got = exchange(
            &server,
            b"transfer 1\ntransfer 9\ntransfer\ntransfer x\nstatus\n",
            5,
        );
        assert_eq!(got[0], "Ok: node 1 leads");
        assert_eq!(got[1], "Error: node 9 is not a member");
        assert!(
            got[2].starts_with("Error: missing argument for transfer"),
            "{got:?}"
        );
        assert!(got[3].starts_with("Error: `x` is not a node id"), "{got:?}");
        assert!(got[4].starts_with("Ok: node=1 role=leader"), "{got:?}");

        let follower = serve(
            MemoryBackend::follower_of_node_1(false),
            ServerLimits::default(),
        );
        assert_eq!(
            exchange(&follower, b"transfer 1\n", 1),
            ["Error: Leader is 127.0.0.1:8001"]
        );
    }

    #[test]
    fn bad_input_gets_one_error_line_and_the_connection_goes_on() {
        let server = serve(MemoryBackend::leader(), ServerLimits::default());
        let mut input = Vec::new();
        input.extend_from_slice(b"frobnicate\nput 1\n\xff\xfe\n");
        input.extend(std::iter::repeat_n(b'x', LINE_BYTES_MAX + 10));
        input.extend_from_slice(b"\nput k v\nget k\n");
        let got = exchange(&server, &input, 6);
        assert!(
            got[0].starts_with("Error: unknown command `frobnicate`"),
            "{got:?}"
        );
        assert!(
            got[1].starts_with("Error: missing argument for put"),
            "{got:?}"
        );
        assert_eq!(got[2], "Error: the request is not valid UTF-8");
        assert!(
            got[3].starts_with("Error: request line longer than"),
            "{got:?}"
        );
        assert_eq!(got[4], "Ok: Appended at 1");
        assert_eq!(got[5], "Ok: v");
    }

    #[test]
    fn a_retried_request_id_is_applied_once() {
        let server = serve(MemoryBackend::leader(), ServerLimits::default());
        let got = exchange(
            &server,
            b"put --req 5:1 k a\nput --req 5:2 k b\nput --req 5:1 k a\nget k\n",
            4,
        );
        assert_eq!(got[0], "Ok: Appended at 1");
        assert_eq!(got[1], "Ok: Appended at 2");
        assert!(got[2].contains("request 5:1 is older"), "{got:?}");
        assert_eq!(got[3], "Ok: b", "the stale retry had no effect");
    }

    #[test]
    fn connections_over_the_limit_are_told_so() {
        let limits = ServerLimits {
            connections_max: 1,
            ..ServerLimits::default()
        };
        let server = serve(MemoryBackend::leader(), limits);
        // The first connection holds the only slot while it is open.
        let (mut first, mut first_reader) = connect(&server);
        first.write_all(b"status\n").unwrap();
        let mut line = String::new();
        first_reader.read_line(&mut line).unwrap();
        assert!(line.starts_with("Ok: node=1 role=leader"), "{line}");
        let (_second, mut second_reader) = connect(&server);
        let mut refused = String::new();
        second_reader.read_line(&mut refused).unwrap();
        assert_eq!(refused, "Error: too many connections; try again later\n");
    }
}
