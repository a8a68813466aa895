//! What each HTTP request means: the routes of the key-value API.
//!
//! | Request | Success | Errors |
//! | --- | --- | --- |
//! | `GET /kv/{key}` (`?stale` for a local read) | 200, the value | 404 no value |
//! | `PUT /kv/{key}`, the value as the body (one trailing newline dropped) | 200 `Appended at N` | 307 to the leader |
//! | `DELETE /kv/{key}` | 200 `Appended at N` | 307 to the leader |
//! | `GET /status` | 200, JSON (membership included) | |
//! | `GET /metrics` | 200, the Prometheus text format (see [`crate::metrics`]) | |
//! | `POST /snapshot` | 200 `Snapshot at N` | 503 nothing applied yet |
//! | `GET /cluster/nodes` | 200, JSON: voters, learners, every member's addresses | |
//! | `POST /cluster/nodes`, JSON `{"id","raft_addr","client_addr","http_addr"}` | 200, JSON membership | 307 to the leader, 400 bad body |
//! | `DELETE /cluster/nodes/{id}` | 200, JSON membership | 307 to the leader, 404 not a member |
//! | `POST /cluster/leader`, the voter's id as the body (`2` or `{"id":2}`) | 200, JSON `{"leader":2}` once it leads | 307 to the leader, 400 bad body or a learner, 404 not a member, 503 not yet |
//!
//! Writes also answer `X-Raft-Index: N`. A write may carry `X-Client-Id` and
//! `X-Request-Seq` (positive integers) for duplicate suppression; otherwise the
//! connection numbers its writes. Passing trouble (no leader, a read that cannot be
//! confirmed, a write refused before it was appended) is 503 with `Retry-After`: a
//! write answered 503 (or 307, 400, 409, 413) was not applied. A write whose fate is
//! unknown (no commit within the timeout, the node stopped with it in flight) is
//! 504: retry it with the same `X-Client-Id` and `X-Request-Seq`. 202 means it
//! committed (it takes effect) but this node had not applied it yet.
//! `POST /cluster/nodes` adds a running node started with `--join` (as a learner,
//! then a voter once it has caught up) and answers when it votes.

use kv_model::{ClientId, Operation, RequestSeq};
use percent_encoding::percent_decode_str;

use super::request::Head;
use super::response::Response;
use crate::api::{
    check_word, Backend, Consistency, KvError, NewNode, RequestId, Session, WriteAck,
};

/// What a request asks for.
#[derive(Debug)]
pub enum Route {
    /// Read `key` (`GET /kv/{key}`).
    Get {
        /// The key.
        key: String,
        /// Linearizable, or `?stale`.
        consistency: Consistency,
    },
    /// Write (`PUT`, `POST` or `DELETE /kv/{key}`).
    Write {
        /// The request id from `X-Client-Id` and `X-Request-Seq`, if given (else the
        /// connection numbers the write).
        id: Option<RequestId>,
        /// The write.
        op: Operation,
    },
    /// Anything else (status, metrics, snapshots, membership, leadership): answered
    /// by [`route_admin`], which may block for a while.
    Admin,
    /// Answered without the backend (a bad key, value or header, a wrong method).
    Answer(Response),
}

/// What `head` (with `body`) asks for.
pub fn classify(head: &Head, body: &[u8]) -> Route {
    let (path, query) = head
        .target
        .split_once('?')
        .unwrap_or((head.target.as_str(), ""));
    let Some(raw_key) = path.strip_prefix("/kv/") else {
        return Route::Admin;
    };
    let key = match percent_decode_str(raw_key).decode_utf8() {
        Ok(key) => key.into_owned(),
        Err(_) => {
            return Route::Answer(Response::text(
                400,
                "the key is not valid UTF-8 once decoded",
            ))
        }
    };
    if let Err(reason) = check_word("key", &key) {
        return Route::Answer(Response::text(400, reason));
    }
    let op = match head.method.as_str() {
        "GET" => {
            let consistency = if query_has_flag(query, "stale") {
                Consistency::Stale
            } else {
                Consistency::Linearizable
            };
            return Route::Get { key, consistency };
        }
        "PUT" | "POST" => match value_of(body) {
            Ok(value) => Operation::Put { key, value },
            Err(reason) => return Route::Answer(Response::text(400, reason)),
        },
        "DELETE" => Operation::Delete { key },
        _ => return Route::Answer(method_not_allowed("GET, PUT, DELETE")),
    };
    match request_id(head) {
        Ok(id) => Route::Write { id, op },
        Err(reason) => Route::Answer(Response::text(400, reason)),
    }
}

/// The answer to a read.
pub fn read_response(result: Result<String, KvError>, head: &Head) -> Response {
    match result {
        Ok(value) => Response::text(200, value),
        Err(e) => error_response(&e, head),
    }
}

/// The answer to a write.
pub fn write_response(result: Result<WriteAck, KvError>, head: &Head) -> Response {
    match result {
        Ok(ack) => Response::text(200, format!("Appended at {}", ack.index))
            .with_header("X-Raft-Index", ack.index.to_string()),
        Err(e) => error_response(&e, head),
    }
}

/// The answer to one request, blocking while the backend works (a write waits for
/// its commit): what a thread that serves one request at a time does.
pub fn route<B: Backend>(backend: &B, session: &mut Session, head: &Head, body: &[u8]) -> Response {
    match classify(head, body) {
        Route::Get { key, consistency } => read_response(backend.get(&key, consistency), head),
        Route::Write { id, op } => {
            let id = id.unwrap_or_else(|| session.next_request());
            write_response(backend.write(id, op), head)
        }
        Route::Admin => route_admin(backend, head, body),
        Route::Answer(response) => response,
    }
}

/// The answer to a request [`classify`] calls [`Route::Admin`].
pub fn route_admin<B: Backend>(backend: &B, head: &Head, body: &[u8]) -> Response {
    let path = head
        .target
        .split_once('?')
        .map_or(head.target.as_str(), |(p, _)| p);
    let method = head.method.as_str();
    if path == "/status" {
        return match method {
            "GET" => match backend.status() {
                Ok(status) => Response::json(200, &status),
                Err(e) => error_response(&e, head),
            },
            _ => method_not_allowed("GET"),
        };
    }
    if path == "/metrics" {
        return match method {
            "GET" => match backend.metrics() {
                Ok(report) => Response::raw(
                    200,
                    crate::metrics::CONTENT_TYPE,
                    crate::metrics::encode(report),
                ),
                Err(e) => error_response(&e, head),
            },
            _ => method_not_allowed("GET"),
        };
    }
    if path == "/snapshot" {
        return match method {
            "POST" => match backend.snapshot() {
                Ok(index) => Response::text(200, format!("Snapshot at {index}")),
                Err(e) => error_response(&e, head),
            },
            _ => method_not_allowed("POST"),
        };
    }
    if path == "/cluster/nodes" || path.starts_with("/cluster/nodes/") {
        return cluster_nodes(backend, head, path, body);
    }
    if path == "/cluster/leader" {
        return match method {
            "POST" => cluster_leader(backend, head, body),
            _ => method_not_allowed("POST"),
        };
    }
    if path == "/" {
        return match method {
            "GET" => Response::text(200, INDEX),
            _ => method_not_allowed("GET"),
        };
    }
    Response::text(404, format!("no such resource `{path}`; try GET /"))
}

/// The text of `GET /`.
const INDEX: &str = "kv-example: GET /kv/KEY (?stale for a local read), PUT /kv/KEY with the \
                     value as the body, DELETE /kv/KEY, GET /status, GET /metrics, \
                     POST /snapshot, GET /cluster/nodes, POST /cluster/nodes {\"id\":4,\"raft_addr\":..,\
                     \"client_addr\":..,\"http_addr\":..}, DELETE /cluster/nodes/ID, \
                     POST /cluster/leader ID";

/// The body of `POST /cluster/leader`: the id alone, or as `{"id": N}` like the
/// bodies of `/cluster/nodes`.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum LeaderBody {
    Id(u64),
    Object { id: u64 },
}

/// `POST /cluster/leader`: hands leadership to the voter named in the body.
fn cluster_leader<B: Backend>(backend: &B, head: &Head, body: &[u8]) -> Response {
    let id = match serde_json::from_slice(body) {
        Ok(LeaderBody::Id(id) | LeaderBody::Object { id }) if id > 0 => id,
        Ok(_) => return Response::text(400, "node id 0 is reserved; ids start at 1"),
        Err(_) => {
            return Response::text(
                400,
                "the body must be the id of the node to lead: `2` or {\"id\": 2}",
            )
        }
    };
    match backend.transfer_leader(id) {
        Ok(()) => Response::json(200, &serde_json::json!({ "leader": id })),
        Err(e) => error_response(&e, head),
    }
}

/// `/cluster/nodes` (the membership, and adding a node) and `/cluster/nodes/{id}`
/// (removing one).
fn cluster_nodes<B: Backend>(backend: &B, head: &Head, path: &str, body: &[u8]) -> Response {
    let method = head.method.as_str();
    let result = match path.strip_prefix("/cluster/nodes/") {
        None => match method {
            "GET" => backend.status().map(|s| Response::json(200, &s.membership)),
            "POST" => {
                let node: NewNode = match serde_json::from_slice(body) {
                    Ok(node) => node,
                    Err(e) => {
                        return Response::text(
                            400,
                            format!(
                                "the body must be JSON {{\"id\", \"raft_addr\", \"client_addr\", \
                                 \"http_addr\"}}: {e}"
                            ),
                        )
                    }
                };
                backend.add_node(&node).map(|m| Response::json(200, &m))
            }
            _ => return method_not_allowed("GET, POST"),
        },
        Some(id) => {
            let Some(id) = id.parse::<u64>().ok().filter(|id| *id > 0) else {
                return Response::text(400, format!("`{id}` is not a node id"));
            };
            match method {
                "DELETE" => backend.remove_node(id).map(|m| Response::json(200, &m)),
                _ => return method_not_allowed("DELETE"),
            }
        }
    };
    result.unwrap_or_else(|e| error_response(&e, head))
}

/// The request id from `X-Client-Id` and `X-Request-Seq`, both or neither.
fn request_id(head: &Head) -> Result<Option<RequestId>, String> {
    let number = |name: &str| -> Result<Option<u64>, String> {
        match head.header(name) {
            None => Ok(None),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if n > 0 => Ok(Some(n)),
                _ => Err(format!("{name} must be a positive integer, not `{v}`")),
            },
        }
    };
    match (number("x-client-id")?, number("x-request-seq")?) {
        (Some(client), Some(seq)) => Ok(Some(RequestId {
            client: ClientId(client),
            seq: RequestSeq(seq),
        })),
        (None, None) => Ok(None),
        _ => Err("X-Client-Id and X-Request-Seq go together".into()),
    }
}

/// The value in a body. One trailing line ending is not part of it, so that
/// `echo bar | curl -T - ...` and files saved by editors work.
fn value_of(body: &[u8]) -> Result<String, String> {
    let body = body.strip_suffix(b"\n").unwrap_or(body);
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    let value =
        std::str::from_utf8(body).map_err(|_| "the value is not valid UTF-8".to_string())?;
    check_word("value", value)?;
    Ok(value.to_string())
}

fn query_has_flag(query: &str, flag: &str) -> bool {
    query.split('&').any(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, "true"));
        name == flag && !matches!(value, "false" | "0")
    })
}

fn method_not_allowed(allow: &'static str) -> Response {
    Response::text(405, format!("allowed methods: {allow}")).with_header("Allow", allow)
}

/// The response for an error of the backend.
pub fn error_response(error: &KvError, head: &Head) -> Response {
    match error {
        KvError::NotFound => Response::text(404, error.to_string()),
        KvError::NotLeader {
            leader: Some(leader),
        } => match &leader.http_addr {
            // 307 keeps the method and the body: `curl -L` repeats the write there.
            Some(http) => {
                let scheme = if head.secure { "https" } else { "http" };
                Response::text(307, error.to_string())
                    .with_header("Location", format!("{scheme}://{http}{}", head.target))
            }
            None => unavailable(error),
        },
        KvError::NotLeader { leader: None } | KvError::Unavailable(_) | KvError::Stopped => {
            unavailable(error)
        }
        // 504: no answer in time; for a write, its fate is unknown.
        KvError::Timeout { .. } | KvError::WriteUnknown { .. } => {
            Response::text(504, error.to_string())
        }
        // 202: committed, so it takes effect, but not yet applied on this node.
        KvError::CommittedNotApplied { index, .. } => {
            Response::text(202, error.to_string()).with_header("X-Raft-Index", index.to_string())
        }
        KvError::TooLarge { .. } => Response::text(413, error.to_string()),
        KvError::Invalid(_) => Response::text(400, error.to_string()),
        KvError::NotMember(_) => Response::text(404, error.to_string()),
        KvError::StaleRequest(_) => Response::text(409, error.to_string()),
    }
}

fn unavailable(error: &KvError) -> Response {
    Response::text(503, error.to_string()).with_header("Retry-After", "1")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kv_model::{ClientId, RequestSeq};

    use super::*;
    use crate::api::WriteOutcome;

    fn head() -> Head {
        Head {
            method: "PUT".into(),
            target: "/kv/k".into(),
            version: 1,
            headers: Vec::new(),
            secure: false,
        }
    }

    /// A write's status code says its outcome: 504 only when unknown, 202 when it
    /// committed, a 3xx or 4xx or 503 when it was not applied.
    #[test]
    fn status_codes_follow_the_write_outcome() {
        let id = RequestId {
            client: ClientId(1),
            seq: RequestSeq(2),
        };
        let cases = [
            KvError::NotLeader { leader: None },
            KvError::Unavailable("not applied".into()),
            KvError::TooLarge { bytes: 2, max: 1 },
            KvError::StaleRequest(id),
            KvError::Stopped,
            KvError::WriteUnknown {
                id,
                why: "x".into(),
            },
            KvError::CommittedNotApplied {
                id,
                index: 4,
                why: "is shutting down",
            },
            KvError::Timeout {
                what: "a read",
                after: Duration::from_secs(1),
            },
        ];
        for error in cases {
            let status = error_response(&error, &head()).status;
            match error.write_outcome() {
                WriteOutcome::Unknown => assert_eq!(status, 504, "{error:?}"),
                WriteOutcome::Applied => assert_eq!(status, 202, "{error:?}"),
                // A timeout of a read or a membership change is a 504 too, but no
                // write answers it.
                WriteOutcome::NotApplied if matches!(error, KvError::Timeout { .. }) => {}
                WriteOutcome::NotApplied => {
                    assert!(![202, 504].contains(&status), "{error:?}: {status}")
                }
            }
        }
        let too_large = KvError::TooLarge { bytes: 2, max: 1 };
        assert_eq!(error_response(&too_large, &head()).status, 413);
    }
}
