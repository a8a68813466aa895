//! A minimal HTTP/1.1 client for the tests, the way `curl` talks to a node: one
//! request per connection, `Connection: close`, the answer parsed by `httparse`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;

use super::REQUEST_TIMEOUT;

/// A response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `method target` with an optional body to `addr` and reads the response
/// (over HTTPS under `KV_TEST_TLS=1`).
pub fn request(
    addr: &str,
    method: &str,
    target: &str,
    body: Option<&str>,
) -> std::io::Result<HttpResponse> {
    request_with_headers(addr, method, target, &[], body)
}

/// [`request`] with extra headers.
pub fn request_with_headers(
    addr: &str,
    method: &str,
    target: &str,
    headers: &[(&str, String)],
    body: Option<&str>,
) -> std::io::Result<HttpResponse> {
    let what = Request {
        method,
        target,
        headers,
        body,
    };
    match super::env_tls_dir() {
        Some(dir) => {
            let mut stream = tls_stream(addr, &dir.join("ca.pem"))?;
            exchange(&mut stream, addr, &what)
        }
        None => {
            let mut stream = TcpStream::connect(addr)?;
            stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
            exchange(&mut stream, addr, &what)
        }
    }
}

/// What to send.
struct Request<'a> {
    method: &'a str,
    target: &'a str,
    headers: &'a [(&'a str, String)],
    body: Option<&'a str>,
}

impl<'a> Request<'a> {
    fn without_headers(method: &'a str, target: &'a str, body: Option<&'a str>) -> Self {
        Request {
            method,
            target,
            headers: &[],
            body,
        }
    }
}

/// [`request`] over plain HTTP whatever `KV_TEST_TLS` says (a node the test started
/// by hand, without TLS).
pub fn request_plain(
    addr: &str,
    method: &str,
    target: &str,
    body: Option<&str>,
) -> std::io::Result<HttpResponse> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    exchange(
        &mut stream,
        addr,
        &Request::without_headers(method, target, body),
    )
}

/// The scheme of the nodes' HTTP ports: `https` under `KV_TEST_TLS=1`.
pub fn scheme() -> &'static str {
    if super::env_tls_dir().is_some() {
        "https"
    } else {
        "http"
    }
}

/// [`request`] over HTTPS, trusting the CA certificate in `ca_pem` (as
/// `curl --cacert` does); the server must prove the host of `addr`.
pub fn request_tls(
    addr: &str,
    ca_pem: &Path,
    method: &str,
    target: &str,
    body: Option<&str>,
) -> std::io::Result<HttpResponse> {
    let mut stream = tls_stream(addr, ca_pem)?;
    exchange(
        &mut stream,
        addr,
        &Request::without_headers(method, target, body),
    )
}

/// A TLS connection to `addr`, trusting the CA certificate in `ca_pem`.
fn tls_stream(
    addr: &str,
    ca_pem: &Path,
) -> std::io::Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    use rustls::pki_types::ServerName;
    let roots = raft_mio::transport::tls::root_store_from_pem(&std::fs::read(ca_pem)?)
        .map_err(std::io::Error::other)?;
    let config =
        rustls::ClientConfig::builder_with_provider(raft_mio::transport::tls::crypto_provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(std::io::Error::other)?
            .with_root_certificates(roots)
            .with_no_client_auth();
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h).to_string();
    let name = ServerName::try_from(host).map_err(std::io::Error::other)?;
    let conn =
        rustls::ClientConnection::new(Arc::new(config), name).map_err(std::io::Error::other)?;
    let socket = TcpStream::connect(addr)?;
    socket.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    Ok(rustls::StreamOwned::new(conn, socket))
}

fn exchange(
    stream: &mut (impl Read + Write),
    addr: &str,
    request: &Request<'_>,
) -> std::io::Result<HttpResponse> {
    let Request {
        method,
        target,
        headers,
        body,
    } = request;
    let body = body.unwrap_or("");
    let mut extra = String::new();
    for (name, value) in headers.iter() {
        extra.push_str(&format!("{name}: {value}\r\n"));
    }
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(&raw) {
        Ok(httparse::Status::Complete(n)) => n,
        other => {
            return Err(std::io::Error::other(format!(
                "not an HTTP response ({other:?}): {}",
                String::from_utf8_lossy(&raw)
            )))
        }
    };
    Ok(HttpResponse {
        status: response.code.unwrap_or_default(),
        headers: response
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&raw[head_len..]).into_owned(),
    })
}
