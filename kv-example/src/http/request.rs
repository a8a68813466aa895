//! Parsing HTTP/1.x requests from the bytes a connection has received so far: the
//! head parsed by `httparse`, the body framed by `Content-Length` or
//! `Transfer-Encoding: chunked`, everything bounded in size. [`parse_request`] works
//! on a buffer, so an event loop can call it again when more bytes arrive.

/// The largest request head (request line and headers), in bytes.
pub const HEAD_BYTES_MAX: usize = 16 * 1024;
/// The most headers in one request.
pub const HEADERS_MAX: usize = 64;
/// The largest request body, in bytes.
pub const BODY_BYTES_MAX: usize = 1 << 20;

/// A malformed or over-sized request: answer `status` with `reason`, then close.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadRequest {
    /// The HTTP status code.
    pub status: u16,
    /// What is wrong, for the response body.
    pub reason: String,
}

fn bad(status: u16, reason: impl Into<String>) -> BadRequest {
    BadRequest {
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
    pub fn framing(&self) -> Result<Framing, BadRequest> {
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

/// A whole request from the front of a buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// Its request line and headers.
    pub head: Head,
    /// Its body (de-chunked).
    pub body: Vec<u8>,
    /// How many bytes of the buffer it took.
    pub consumed: usize,
}

/// What the front of a buffer holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// A whole request.
    Done(Parsed),
    /// Only part of one: wait for more bytes. `continue_wanted`: the head is complete
    /// and asks for `100 Continue` before the client sends its body.
    NeedMore {
        /// Send `100 Continue` (once per request).
        continue_wanted: bool,
    },
}

/// Parses the request at the front of `buf`: the whole request, a sign that more
/// bytes are needed, or why it cannot be served (answer it, then close).
pub fn parse_request(buf: &[u8]) -> Result<Progress, BadRequest> {
    let Some((head, head_bytes)) = parse_head(buf)? else {
        return Ok(Progress::NeedMore {
            continue_wanted: false,
        });
    };
    let rest = &buf[head_bytes..];
    let body = match head.framing()? {
        Framing::Empty => Some((Vec::new(), 0)),
        Framing::Length(length) => {
            debug_assert!(length <= BODY_BYTES_MAX);
            (rest.len() >= length).then(|| (rest[..length].to_vec(), length))
        }
        Framing::Chunked => parse_chunked(rest)?,
    };
    Ok(match body {
        Some((body, body_bytes)) => Progress::Done(Parsed {
            head,
            body,
            consumed: head_bytes + body_bytes,
        }),
        None => Progress::NeedMore {
            continue_wanted: head.expects_continue(),
        },
    })
}

/// The head at the front of `buf` and its length, if it is complete.
fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, BadRequest> {
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(buf) {
        Ok(httparse::Status::Complete(consumed)) if consumed > HEAD_BYTES_MAX => Err(bad(
            431,
            format!("request head larger than {HEAD_BYTES_MAX} bytes"),
        )),
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
            Ok(Some((head, consumed)))
        }
        Ok(httparse::Status::Partial) if buf.len() >= HEAD_BYTES_MAX => Err(bad(
            431,
            format!("request head larger than {HEAD_BYTES_MAX} bytes"),
        )),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            Err(bad(431, format!("more than {HEADERS_MAX} headers")))
        }
        Err(e) => Err(bad(400, format!("malformed request: {e}"))),
    }
}

/// A chunked body at the front of `buf` (through its trailers) and its length, if it
/// is complete.
fn parse_chunked(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, BadRequest> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let (size_bytes, size) = match httparse::parse_chunk_size(&buf[at..]) {
            Ok(httparse::Status::Complete(found)) => found,
            Ok(httparse::Status::Partial) if buf.len() - at < HEAD_BYTES_MAX => return Ok(None),
            _ => return Err(bad(400, "malformed chunk size")),
        };
        at += size_bytes;
        if size == 0 {
            return Ok(trailers_end(&buf[at..])?.map(|end| (body, at + end)));
        }
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        if size > BODY_BYTES_MAX - body.len() {
            return Err(bad(
                413,
                format!("the body is larger than {BODY_BYTES_MAX} bytes"),
            ));
        }
        if buf.len() - at < size + 2 {
            return Ok(None);
        }
        if &buf[at + size..at + size + 2] != b"\r\n" {
            return Err(bad(400, "a chunk does not end with CRLF"));
        }
        body.extend_from_slice(&buf[at..at + size]);
        at += size + 2;
    }
}

/// The length of the trailer section at the front of `buf`, through its empty line,
/// if it is complete.
fn trailers_end(buf: &[u8]) -> Result<Option<usize>, BadRequest> {
    let mut at = 0;
    while let Some(end) = buf[at..].windows(2).position(|w| w == b"\r\n") {
        at += end + 2;
        if end == 0 {
            return Ok(Some(at));
        }
    }
    if buf.len() >= HEAD_BYTES_MAX {
        return Err(bad(431, "trailers too large"));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `data` to the parser `step` bytes at a time, as a slow network would,
    /// and returns the requests in order.
    fn parse_all(data: &[u8], step: usize) -> Vec<Parsed> {
        let mut buf = Vec::new();
        let mut requests = Vec::new();
        for piece in data.chunks(step) {
            buf.extend_from_slice(piece);
            while let Progress::Done(parsed) = parse_request(&buf).unwrap() {
                buf.drain(..parsed.consumed);
                requests.push(parsed);
            }
        }
        assert!(buf.is_empty(), "{} bytes left over", buf.len());
        requests
    }

    fn status_of(data: &[u8]) -> u16 {
        parse_request(data).unwrap_err().status
    }

    #[test]
    fn pipelined_requests_with_bodies_come_out_in_order() {
        let data = b"PUT /kv/a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nbarGET /kv/a HTTP/1.1\r\n\r\n";
        for step in [1, 7, 1000] {
            let got = parse_all(data, step);
            assert_eq!(got.len(), 2);
            let (put, get) = (&got[0], &got[1]);
            assert_eq!(
                (put.head.method.as_str(), put.head.target.as_str()),
                ("PUT", "/kv/a")
            );
            assert_eq!(put.head.header("host"), Some("x"));
            assert_eq!(put.body, b"bar");
            assert_eq!(get.head.method, "GET");
            assert!(get.body.is_empty());
        }
    }

    #[test]
    fn chunked_bodies_are_reassembled() {
        let data = b"PUT /kv/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nbar\r\n2;ext=1\r\nba\r\n0\r\nX-Trailer: t\r\n\r\n";
        for step in [1, 5, 1000] {
            let got = parse_all(data, step);
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].head.framing().unwrap(), Framing::Chunked);
            assert_eq!(got[0].body, b"barba");
        }
    }

    #[test]
    fn a_head_that_expects_continue_asks_for_it_until_the_body_comes() {
        let head = b"PUT /kv/a HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
        assert_eq!(
            parse_request(&head[..10]).unwrap(),
            Progress::NeedMore {
                continue_wanted: false
            }
        );
        assert_eq!(
            parse_request(head).unwrap(),
            Progress::NeedMore {
                continue_wanted: true
            }
        );
        let whole = [&head[..], b"bar"].concat();
        assert!(matches!(parse_request(&whole).unwrap(), Progress::Done(p) if p.body == b"bar"));
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
        let cases: [(&[u8], u16); 6] = [
            (b"GARBAGE\x01 / HTTP/1.1\r\n\r\n", 400),
            (b"PUT / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 413),
            (b"PUT / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400),
            (
                b"PUT / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                400,
            ),
            (b"PUT / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
            (
                b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nbarXX",
                400,
            ),
        ];
        for (data, status) in cases {
            assert_eq!(status_of(data), status, "{}", String::from_utf8_lossy(data));
        }
        let huge_head = format!(
            "GET / HTTP/1.1\r\nX: {}\r\n\r\n",
            "y".repeat(HEAD_BYTES_MAX)
        );
        assert_eq!(status_of(huge_head.as_bytes()), 431);
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "A: b\r\n".repeat(HEADERS_MAX + 1)
        );
        assert_eq!(status_of(many.as_bytes()), 431);
    }
}
