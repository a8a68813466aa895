//! A blocking client of the text protocol, for the console, the bench and the tests.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The longest answer line accepted, in bytes.
const ANSWER_BYTES_MAX: u64 = 1 << 20;

/// An answer line, split into its verdict and text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// `Ok: TEXT`.
    Ok(String),
    /// `Error: TEXT`.
    Error(String),
}

impl Answer {
    /// Parses an answer line; `None` if it is neither `Ok: ` nor `Error: `.
    pub fn parse(line: &str) -> Option<Answer> {
        if let Some(text) = line.strip_prefix("Ok: ") {
            Some(Answer::Ok(text.to_string()))
        } else {
            line.strip_prefix("Error: ")
                .map(|text| Answer::Error(text.to_string()))
        }
    }

    /// For `Error: Leader is ADDR`, the leader's address.
    pub fn leader_redirect(&self) -> Option<&str> {
        match self {
            Answer::Error(text) => text
                .strip_prefix("Leader is ")
                .filter(|addr| !addr.contains(' ')),
            Answer::Ok(_) => None,
        }
    }

    /// For `Ok: Appended at N`, the index.
    pub fn appended_index(&self) -> Option<u64> {
        match self {
            Answer::Ok(text) => text.strip_prefix("Appended at ")?.parse().ok(),
            Answer::Error(_) => None,
        }
    }
}

/// One connection to a node's text front end.
#[derive(Debug)]
pub struct TextClient {
    addr: String,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl TextClient {
    /// Connects to `addr`; every later read or write fails after `timeout`.
    pub fn connect(addr: &str, timeout: Duration) -> io::Result<TextClient> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, format!("no address for {addr}"));
        for socket in addr.to_socket_addrs()? {
            match TcpStream::connect_timeout(&socket, timeout) {
                Ok(stream) => {
                    stream.set_read_timeout(Some(timeout))?;
                    stream.set_write_timeout(Some(timeout))?;
                    stream.set_nodelay(true)?;
                    return Ok(TextClient {
                        addr: addr.to_string(),
                        reader: BufReader::new(stream.try_clone()?),
                        writer: stream,
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Sets how long later reads and writes may take (a request that waits for a
    /// long operation, such as a membership change, needs longer than most).
    pub fn set_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        self.writer.set_read_timeout(Some(timeout))?;
        self.writer.set_write_timeout(Some(timeout))
    }

    /// The address it is connected to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends one request line and returns the answer line (without its newline).
    pub fn request_line(&mut self, line: &str) -> io::Result<String> {
        debug_assert!(!line.contains('\n'), "one request per line");
        self.writer.write_all(format!("{line}\n").as_bytes())?;
        let mut answer = String::new();
        let n = Read::by_ref(&mut self.reader)
            .take(ANSWER_BYTES_MAX)
            .read_line(&mut answer)?;
        if n == 0 || !answer.ends_with('\n') {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the node closed the connection before answering",
            ));
        }
        answer.pop();
        Ok(answer)
    }

    /// Sends one request and parses its answer.
    pub fn request(&mut self, line: &str) -> io::Result<Answer> {
        let text = self.request_line(line)?;
        Answer::parse(&text).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not an answer line: {text:?}"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse() {
        let ok = Answer::parse("Ok: Appended at 2").unwrap();
        assert_eq!(ok.appended_index(), Some(2));
        let redirect = Answer::parse("Error: Leader is 127.0.0.1:8001").unwrap();
        assert_eq!(redirect.leader_redirect(), Some("127.0.0.1:8001"));
        let unknown = Answer::parse("Error: Leader is node 4 (its client address is unknown)");
        assert_eq!(unknown.unwrap().leader_redirect(), None);
        assert_eq!(Answer::parse("hello"), None);
    }
}
