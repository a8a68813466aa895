//! Reading HTTP/1.x requests from a connection: the head parsed by `httparse`, the
//! body framed by `Content-Length` or `Transfer-Encoding: chunked`, everything
//! bounded in size.

use std::io::{self, Read};

/// The largest request head (request line and headers), in bytes.
pub const HEAD_BYTES_MAX: usize = 16 * 1024;
/// The most headers in one request.
pub const HEADERS_MAX: usize = 64;
/// The largest request body, in bytes.
pub const BODY_BYTES_MAX: usize = 1 << 20;
/// Bytes read from the socket at a time.
const READ_CHUNK_BYTES: usize = 8 * 1024;

/// A request that cannot be served, with the status to answer before closing.
#[derive(Debug)]
pub enum RequestError {
    /// The client closed the connection between requests.
    Closed,
    /// A malformed or over-sized request: answer `status` with `reason`, then close.
    Bad {
        /// The HTTP status code.
        status: u16,
        /// What is wrong, for the response body.
        reason: String,
    },
    /// The connection failed (or timed out while idle).
    Io(io::Error),
}

fn bad(status: u16, reason: impl Into<String>) -> RequestError {
    RequestError::Bad {
        status,
        reason: reason.into(),
    }
}

/// How a request's body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(usize),
    /// Chunked transfer coding.
    Chunked,
}

/// A request line and its headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// The method (`GET`, `PUT`, ...).
    pub method: String,
    /// The request target: path and query, as sent.
    pub target: String,
    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// The headers, names lowercased, in order.
    pub headers: Vec<(String, String)>,
    /// Whether the request came over TLS (a redirect keeps the scheme).
    pub secure: bool,
}

impl Head {
    /// The first header named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the connection stays open after this request (HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`).
    pub fn keep_alive(&self) -> bool {
        let connection = self.header("connection").map(str::to_ascii_lowercase);
        match connection.as_deref() {
            Some(c) if c.contains("close") => false,
            Some(c) if c.contains("keep-alive") => true,
            _ => self.version == 1,
        }
    }

    /// Whether the client waits for `100 Continue` before sending its body.
    pub fn expects_continue(&self) -> bool {
        self.header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    }

    /// How the body is delimited; an error for what we refuse to guess about.
    pub fn framing(&self) -> Result<Framing, RequestError> {
        let lengths: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n == "content-length")
            .map(|(_, v)| v.as_str())
            .collect();
        let encoding = self.header("transfer-encoding");
        match (encoding, lengths.as_slice()) {
            // Both at once is how requests are smuggled past proxies (RFC 9112 §6.1).
            (Some(_), [_, ..]) => Err(bad(400, "both Transfer-Encoding and Content-Length")),
            (Some(te), []) if te.trim().eq_ignore_ascii_case("chunked") => Ok(Framing::Chunked),
            (Some(te), []) => Err(bad(501, format!("unsupported Transfer-Encoding `{te}`"))),
            (None, []) => Ok(Framing::Empty),
            (None, [one]) => {
                let length: usize = one
                    .trim()
                    .parse()
                    .map_err(|_| bad(400, format!("bad Content-Length `{one}`")))?;
                if length > BODY_BYTES_MAX {
                    return Err(bad(
                        413,
                        format!("the body is larger than {BODY_BYTES_MAX} bytes"),
                    ));
                }
                Ok(if length == 0 {
                    Framing::Empty
                } else {
                    Framing::Length(length)
                })
            }
            (None, [_, _, ..]) => Err(bad(400, "more than one Content-Length")),
        }
    }
}

/// Reads requests, one after another, from one connection.
#[derive(Debug)]
pub struct RequestReader<S> {
    stream: S,
    /// Bytes read but not yet consumed (the start of the next request, pipelined).
    buf: Vec<u8>,
}

impl<S: Read> RequestReader<S> {
    /// A reader over `stream`.
    pub fn new(stream: S) -> Self {
        RequestReader {
            stream,
            buf: Vec::new(),
        }
    }

    /// Reads more bytes; the number read (0 at the end of the stream).
    fn fill(&mut self) -> Result<usize, RequestError> {
        let start = self.buf.len();
        self.buf.resize(start + READ_CHUNK_BYTES, 0);
        loop {
            match self.stream.read(&mut self.buf[start..]) {
                Ok(n) => {
                    self.buf.truncate(start + n);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(start);
                    return Err(RequestError::Io(e));
                }
            }
        }
    }

    /// Reads the next request's head.
    pub fn read_head(&mut self) -> Result<Head, RequestError> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
            let mut request = httparse::Request::new(&mut headers);
            match request.parse(&self.buf) {
                Ok(httparse::Status::Complete(consumed)) => {
                    let head = Head {
                        method: request.method.unwrap_or_default().to_string(),
                        target: request.path.unwrap_or_default().to_string(),
                        version: request.version.unwrap_or(1),
                        headers: request
                            .headers
                            .iter()
                            .map(|h| {
                                let value = String::from_utf8_lossy(h.value).trim().to_string();
                                (h.name.to_ascii_lowercase(), value)
                            })
                            .collect(),
                        secure: false,
                    };
                    self.buf.drain(..consumed);
                    return Ok(head);
                }
                Ok(httparse::Status::Partial) => {}
                Err(httparse::Error::TooManyHeaders) => {
                    return Err(bad(431, format!("more than {HEADERS_MAX} headers")))
                }
                Err(e) => return Err(bad(400, format!("malformed request: {e}"))),
            }
            if self.buf.len() >= HEAD_BYTES_MAX {
                return Err(bad(
                    431,
                    format!("request head larger than {HEAD_BYTES_MAX} bytes"),
                ));
            }
            if self.fill()? == 0 {
                return Err(if self.buf.is_empty() {
                    RequestError::Closed
                } else {
                    bad(400, "the connection closed in the middle of a request")
                });
            }
        }
    }

    /// Reads a body delimited by `framing`.
    pub fn read_body(&mut self, framing: Framing) -> Result<Vec<u8>, RequestError> {
        match framing {
            Framing::Empty => Ok(Vec::new()),
            Framing::Length(length) => {
                debug_assert!(length <= BODY_BYTES_MAX);
                self.need(length)?;
                Ok(self.buf.drain(..length).collect())
            }
            Framing::Chunked => self.read_chunked(),
        }
    }

    /// Waits until `n` bytes are buffered.
    fn need(&mut self, n: usize) -> Result<(), RequestError> {
        while self.buf.len() < n {
            if self.fill()? == 0 {
                return Err(bad(400, "the connection closed in the middle of a body"));
            }
        }
        Ok(())
    }

    fn read_chunked(&mut self) -> Result<Vec<u8>, RequestError> {
        let mut body = Vec::new();
        loop {
            let (consumed, size) = loop {
                match httparse::parse_chunk_size(&self.buf) {
                    Ok(httparse::Status::Complete(found)) => break found,
                    Ok(httparse::Status::Partial) if self.buf.len() < HEAD_BYTES_MAX => {
                        if self.fill()? == 0 {
                            return Err(bad(400, "the connection closed in a chunk header"));
                        }
                    }
                    _ => return Err(bad(400, "malformed chunk size")),
                }
            };
            self.buf.drain(..consumed);
            if size == 0 {
                self.skip_trailers()?;
                return Ok(body);
            }
            let size = usize::try_from(size).unwrap_or(usize::MAX);
            if size > BODY_BYTES_MAX - body.len() {
                return Err(bad(
                    413,
                    format!("the body is larger than {BODY_BYTES_MAX} bytes"),
                ));
            }
            self.need(size + 2)?;
            if &self.buf[size..size + 2] != b"\r\n" {
                return Err(bad(400, "a chunk does not end with CRLF"));
            }
            body.extend_from_slice(&self.buf[..size]);
            self.buf.drain(..size + 2);
        }
    }

    /// Skips the trailer section after the last chunk, through its empty line.
    fn skip_trailers(&mut self) -> Result<(), RequestError> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let empty = end == 0;
                self.buf.drain(..end + 2);
                if empty {
                    return Ok(());
                }
                continue;
            }
            if self.buf.len() >= HEAD_BYTES_MAX {
                return Err(bad(431, "trailers too large"));
            }
            if self.fill()? == 0 {
                return Err(bad(400, "the connection closed in the trailers"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream that hands out its bytes `step` at a time, as a slow network would.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.data.len().min(self.step).min(out.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn reader(data: &[u8], step: usize) -> RequestReader<Trickle<'_>> {
        RequestReader::new(Trickle { data, step })
    }

    fn status_of(err: RequestError) -> u16 {
        match err {
            RequestError::Bad { status, .. } => status,
            other => panic!("expected a bad request, got {other:?}"),
        }
    }

    #[test]
    fn pipelined_requests_with_bodies_come_out_in_order() {
        let data = b"PUT /kv/a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nbarGET /kv/a HTTP/1.1\r\n\r\n";
        for step in [1, 7, 1000] {
            let mut r = reader(data, step);
            let head = r.read_head().unwrap();
            assert_eq!(
                (head.method.as_str(), head.target.as_str()),
                ("PUT", "/kv/a")
            );
            assert_eq!(head.header("host"), Some("x"));
            assert_eq!(r.read_body(head.framing().unwrap()).unwrap(), b"bar");
            let head = r.read_head().unwrap();
            assert_eq!(head.method, "GET");
            assert_eq!(head.framing().unwrap(), Framing::Empty);
            assert!(matches!(r.read_head(), Err(RequestError::Closed)));
        }
    }

    #[test]
    fn chunked_bodies_are_reassembled() {
        let data = b"PUT /kv/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nbar\r\n2;ext=1\r\nba\r\n0\r\nX-Trailer: t\r\n\r\n";
        for step in [1, 5, 1000] {
            let mut r = reader(data, step);
            let head = r.read_head().unwrap();
            assert_eq!(head.framing().unwrap(), Framing::Chunked);
            assert_eq!(r.read_body(Framing::Chunked).unwrap(), b"barba");
            assert!(matches!(r.read_head(), Err(RequestError::Closed)));
        }
    }

    #[test]
    fn keep_alive_follows_the_version_and_the_connection_header() {
        let head = |version, connection: Option<&str>| Head {
            method: "GET".into(),
            target: "/".into(),
            version,
            headers: connection
                .map(|c| ("connection".to_string(), c.to_string()))
                .into_iter()
                .collect(),
            secure: false,
        };
        assert!(head(1, None).keep_alive());
        assert!(!head(1, Some("close")).keep_alive());
        assert!(!head(0, None).keep_alive());
        assert!(head(0, Some("Keep-Alive")).keep_alive());
    }

    #[test]
    fn malformed_and_oversized_requests_get_their_status() {
        let cases: [(&[u8], u16); 5] = [
            (b"GARBAGE\x01 / HTTP/1.1\r\n\r\n", 400),
            (b"PUT / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 413),
            (b"PUT / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400),
            (
                b"PUT / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                400,
            ),
            (b"PUT / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        ];
        for (data, status) in cases {
            let mut r = reader(data, 1000);
            let got = r.read_head().and_then(|h| h.framing());
            assert_eq!(
                status_of(got.unwrap_err()),
                status,
                "{}",
                String::from_utf8_lossy(data)
            );
        }
        let huge_head = format!(
            "GET / HTTP/1.1\r\nX: {}\r\n\r\n",
            "y".repeat(HEAD_BYTES_MAX)
        );
        let mut r = reader(huge_head.as_bytes(), 4096);
        assert_eq!(status_of(r.read_head().unwrap_err()), 431);
        let mut r = reader(b"GET / HTTP/1.1\r\nHost", 1000);
        assert_eq!(status_of(r.read_head().unwrap_err()), 400);
    }
}
