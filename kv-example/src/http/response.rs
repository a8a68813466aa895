//! HTTP responses: a status, a few headers and a body with its content type.

use std::io::{self, Write};

use serde::Serialize;

/// The content type of plain-text bodies.
pub const TEXT: &str = "text/plain; charset=utf-8";
/// The content type of JSON bodies.
pub const JSON: &str = "application/json";

/// A response to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Extra headers (Content-Type, Content-Length and Connection are added on write).
    pub headers: Vec<(&'static str, String)>,
    /// The content type of `body`.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A plain-text response; the body gets a trailing newline, for terminals.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        let mut body = body.into().into_bytes();
        body.push(b'\n');
        Response {
            status,
            headers: Vec::new(),
            content_type: TEXT,
            body,
        }
    }

    /// A response whose body is `body` as it is, of type `content_type`.
    pub fn raw(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: Vec::new(),
            content_type,
            body: body.into(),
        }
    }

    /// A JSON response (pretty-printed, for people reading it in a terminal).
    pub fn json(status: u16, value: &impl Serialize) -> Response {
        let mut body = serde_json::to_vec_pretty(value).expect("our types serialize to JSON");
        body.push(b'\n');
        Response {
            status,
            headers: Vec::new(),
            content_type: JSON,
            body,
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    /// Writes the response as HTTP/1.1.
    pub fn write_to(&self, out: &mut impl Write, keep_alive: bool) -> io::Result<()> {
        write!(out, "HTTP/1.1 {} {}\r\n", self.status, reason(self.status))?;
        write!(out, "Content-Type: {}\r\n", self.content_type)?;
        write!(out, "Content-Length: {}\r\n", self.body.len())?;
        for (name, value) in &self.headers {
            write!(out, "{name}: {value}\r\n")?;
        }
        if !keep_alive {
            out.write_all(b"Connection: close\r\n")?;
        }
        out.write_all(b"\r\n")?;
        out.write_all(&self.body)
    }
}

/// The reason phrase of the status codes this server uses.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        202 => "Accepted",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_is_written_with_its_length_and_type() {
        let mut out = Vec::new();
        Response::text(307, "Leader is 127.0.0.1:8001")
            .with_header("Location", "http://127.0.0.1:9001/kv/a")
            .write_to(&mut out, false)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 307 Temporary Redirect\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 25\r\nLocation: http://127.0.0.1:9001/kv/a\r\nConnection: close\r\n\
             \r\nLeader is 127.0.0.1:8001\n"
        );
    }
}
