//! The text protocol: one request per line, one answer per line.
//!
//! ```text
//! put [--req CLIENT:SEQ] KEY VALUE   -> Ok: Appended at INDEX
//! get [--stale] KEY                  -> Ok: VALUE      | Error: value does not exist
//! del [--req CLIENT:SEQ] KEY         -> Ok: Appended at INDEX
//! status                             -> Ok: node=1 role=leader term=2 leader=1 ...
//! snapshot                           -> Ok: snapshot at INDEX
//! add-node ID RAFT CLIENT HTTP       -> Ok: node ID is a voter; voters=.. learners=..
//! remove-node ID                     -> Ok: node ID is removed; voters=.. learners=..
//! transfer ID                        -> Ok: node ID leads
//! help                               -> Ok: the commands
//! ```
//! A write or a membership change sent to a follower answers `Error: Leader is
//! HOST:PORT` (the leader's text address), and so does `transfer`. `add-node` adds a
//! running node started with `--join`: as a learner, then, once it has caught up, as
//! a voter. `transfer` hands leadership to a voter and answers once it leads.
//! Anything else that goes wrong answers one `Error: ...` line, and the connection
//! stays usable. Keys and values are non-empty and hold no whitespace.
//!
//! `--req CLIENT:SEQ` names the write for duplicate suppression, so a client that
//! lost an answer can resend the write (to any node) and have it applied once.
//! Without it, the connection numbers its writes itself.

use std::fmt;

use crate::addrs::split_host_port;
use crate::api::{check_word, NewNode, RequestId};

/// A parsed request line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// `put KEY VALUE`.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// The request id given with `--req`.
        id: Option<RequestId>,
    },
    /// `get KEY`.
    Get {
        /// The key.
        key: String,
        /// `--stale`: read this node's state without a round trip.
        stale: bool,
    },
    /// `del KEY`.
    Delete {
        /// The key.
        key: String,
        /// The request id given with `--req`.
        id: Option<RequestId>,
    },
    /// `status`.
    Status,
    /// `snapshot`: snapshot the store now (the log before it can then be dropped).
    Snapshot,
    /// `add-node ID RAFT_ADDR CLIENT_ADDR HTTP_ADDR`.
    AddNode(NewNode),
    /// `remove-node ID`.
    RemoveNode(u64),
    /// `transfer ID`: hand leadership to node ID.
    Transfer(u64),
    /// `help`.
    Help,
}

/// The answer to `help`.
pub const HELP: &str = "commands: put [--req CLIENT:SEQ] KEY VALUE | get [--stale] KEY | \
                        del [--req CLIENT:SEQ] KEY | status | snapshot | \
                        add-node ID RAFT_ADDR CLIENT_ADDR HTTP_ADDR | remove-node ID | \
                        transfer ID | help";

/// Parses one request line (without its line ending). The error is the text after
/// `Error: `.
pub fn parse(line: &str) -> Result<Request, String> {
    let mut words = line.split_ascii_whitespace();
    let Some(command) = words.next() else {
        return Err(format!("empty request; {HELP}"));
    };
    // Options come before the arguments; `--req` takes the next word as its value.
    let mut flags: Vec<&str> = Vec::new();
    let mut args = Vec::new();
    while let Some(word) = words.next() {
        if !args.is_empty() || !word.starts_with("--") {
            args.push(word);
        } else if word == "--req" {
            flags.push(word);
            flags.extend(words.next());
        } else {
            flags.push(word);
        }
    }
    match command.to_ascii_lowercase().as_str() {
        "put" => {
            let id = take_request_id(&mut flags)?;
            no_more_flags("put", &flags)?;
            let [key, value] = exact_args("put", "put KEY VALUE", &args)?;
            check_word("key", key)?;
            check_word("value", value)?;
            Ok(Request::Put {
                key: key.to_string(),
                value: value.to_string(),
                id,
            })
        }
        "get" => {
            let stale = take_flag(&mut flags, "--stale");
            no_more_flags("get", &flags)?;
            let [key] = exact_args("get", "get KEY", &args)?;
            check_word("key", key)?;
            Ok(Request::Get {
                key: key.to_string(),
                stale,
            })
        }
        "del" | "delete" => {
            let id = take_request_id(&mut flags)?;
            no_more_flags("del", &flags)?;
            let [key] = exact_args("del", "del KEY", &args)?;
            check_word("key", key)?;
            Ok(Request::Delete {
                key: key.to_string(),
                id,
            })
        }
        "status" => {
            no_more_flags("status", &flags)?;
            exact_args::<0>("status", "status", &args)?;
            Ok(Request::Status)
        }
        "snapshot" => {
            no_more_flags("snapshot", &flags)?;
            exact_args::<0>("snapshot", "snapshot", &args)?;
            Ok(Request::Snapshot)
        }
        "add-node" => {
            no_more_flags("add-node", &flags)?;
            let usage = "add-node ID RAFT_ADDR CLIENT_ADDR HTTP_ADDR";
            let [id, raft, client, http] = exact_args("add-node", usage, &args)?;
            let node = NewNode {
                id: node_id(id)?,
                raft_addr: host_port(raft)?,
                client_addr: host_port(client)?,
                http_addr: host_port(http)?,
            };
            Ok(Request::AddNode(node))
        }
        "remove-node" => {
            no_more_flags("remove-node", &flags)?;
            let [id] = exact_args("remove-node", "remove-node ID", &args)?;
            Ok(Request::RemoveNode(node_id(id)?))
        }
        "transfer" => {
            no_more_flags("transfer", &flags)?;
            let [id] = exact_args("transfer", "transfer ID", &args)?;
            Ok(Request::Transfer(node_id(id)?))
        }
        "help" => Ok(Request::Help),
        _ => Err(format!("unknown command `{}`; {HELP}", shorten(command))),
    }
}

/// A positive node id.
fn node_id(word: &str) -> Result<u64, String> {
    match word.parse::<u64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(format!(
            "`{}` is not a node id (a positive integer)",
            shorten(word)
        )),
    }
}

/// A HOST:PORT address.
fn host_port(word: &str) -> Result<String, String> {
    split_host_port(word)
        .map(|_| word.to_string())
        .ok_or_else(|| format!("`{}` is not a HOST:PORT address", shorten(word)))
}

/// Removes `--req CLIENT:SEQ` (or `--req=CLIENT:SEQ`) from `flags`.
fn take_request_id(flags: &mut Vec<&str>) -> Result<Option<RequestId>, String> {
    let Some(pos) = flags
        .iter()
        .position(|f| *f == "--req" || f.starts_with("--req="))
    else {
        return Ok(None);
    };
    let flag = flags.remove(pos);
    let value = match flag.strip_prefix("--req=") {
        Some(value) => value,
        None if pos < flags.len() => flags.remove(pos),
        None => return Err("--req needs CLIENT:SEQ, two positive integers".into()),
    };
    RequestId::parse(value).map(Some).ok_or_else(|| {
        format!(
            "`{}` is not CLIENT:SEQ (two positive integers)",
            shorten(value)
        )
    })
}

fn take_flag(flags: &mut Vec<&str>, name: &str) -> bool {
    let before = flags.len();
    flags.retain(|f| *f != name);
    flags.len() != before
}

fn no_more_flags(command: &str, flags: &[&str]) -> Result<(), String> {
    match flags.first() {
        None => Ok(()),
        Some(flag) => Err(format!(
            "unknown option `{}` for {command}; {HELP}",
            shorten(flag)
        )),
    }
}

fn exact_args<'a, const N: usize>(
    command: &str,
    usage: &str,
    args: &[&'a str],
) -> Result<[&'a str; N], String> {
    <[&str; N]>::try_from(args).map_err(|_| {
        let problem = if args.len() < N {
            "missing argument"
        } else {
            "too many arguments"
        };
        format!("{problem} for {command}; usage: {usage}")
    })
}

/// Quotes at most 40 characters of client input in an error.
fn shorten(word: &str) -> String {
    match word.char_indices().nth(40) {
        Some((cut, _)) => format!("{}...", &word[..cut]),
        None => word.to_string(),
    }
}

/// One answer line (without the newline).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// A write was appended (and committed and applied) at this log index.
    Appended(u64),
    /// The value read.
    Value(String),
    /// Any other success, with its text.
    Info(String),
    /// What went wrong.
    Error(String),
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Appended(index) => write!(f, "Ok: Appended at {index}"),
            Reply::Value(value) => write!(f, "Ok: {value}"),
            Reply::Info(text) => write!(f, "Ok: {text}"),
            Reply::Error(reason) => {
                // An answer is one line whatever the reason says.
                let one_line = reason.replace(['\r', '\n'], " ");
                write!(f, "Error: {one_line}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_session_parses() {
        assert_eq!(
            parse("put 1 bar"),
            Ok(Request::Put {
                key: "1".into(),
                value: "bar".into(),
                id: None
            })
        );
        assert_eq!(
            parse("get 1"),
            Ok(Request::Get {
                key: "1".into(),
                stale: false
            })
        );
        assert_eq!(
            parse("del 1"),
            Ok(Request::Delete {
                key: "1".into(),
                id: None
            })
        );
        assert_eq!(parse("status"), Ok(Request::Status));
        assert_eq!(parse("snapshot"), Ok(Request::Snapshot));
    }

    #[test]
    fn membership_commands_parse() {
        assert_eq!(
            parse("add-node 4 h:7004 h:8004 h:9004"),
            Ok(Request::AddNode(NewNode {
                id: 4,
                raft_addr: "h:7004".into(),
                client_addr: "h:8004".into(),
                http_addr: "h:9004".into(),
            }))
        );
        assert_eq!(parse("remove-node 3"), Ok(Request::RemoveNode(3)));
        assert_eq!(parse("transfer 1"), Ok(Request::Transfer(1)));
        let cases = [
            ("add-node 4", "missing argument for add-node"),
            ("add-node 0 h:1 h:2 h:3", "not a node id"),
            ("add-node 4 h h:2 h:3", "`h` is not a HOST:PORT"),
            ("remove-node x", "not a node id"),
            ("remove-node 1 2", "too many arguments"),
            (
                "transfer",
                "missing argument for transfer; usage: transfer ID",
            ),
            ("transfer x", "`x` is not a node id"),
            ("transfer 0", "`0` is not a node id"),
            ("transfer 1 2", "too many arguments"),
        ];
        for (line, reason) in cases {
            let err = parse(line).unwrap_err();
            assert!(err.contains(reason), "{line:?}: {err}");
        }
    }

    #[test]
    fn flags_come_before_the_arguments() {
        assert_eq!(
            parse("get --stale k"),
            Ok(Request::Get {
                key: "k".into(),
                stale: true
            })
        );
        let id = RequestId::parse("7:2");
        assert_eq!(
            parse("put --req 7:2 k v"),
            Ok(Request::Put {
                key: "k".into(),
                value: "v".into(),
                id
            })
        );
        assert_eq!(
            parse("del --req=7:2 k"),
            Ok(Request::Delete {
                key: "k".into(),
                id
            })
        );
        // After the first argument, a word starting with -- is a value like any other.
        assert_eq!(
            parse("put k --v"),
            Ok(Request::Put {
                key: "k".into(),
                value: "--v".into(),
                id: None
            })
        );
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let cases = [
            ("", "empty request"),
            ("   ", "empty request"),
            ("frobnicate 1", "unknown command `frobnicate`"),
            ("put 1", "missing argument for put"),
            ("put 1 2 3", "too many arguments for put"),
            ("get", "missing argument for get"),
            ("del", "missing argument for del"),
            ("get --fresh k", "unknown option `--fresh`"),
            ("put --req k v", "is not CLIENT:SEQ"),
            ("put --req", "--req needs CLIENT:SEQ"),
            ("status now", "too many arguments"),
        ];
        for (line, reason) in cases {
            let err = parse(line).unwrap_err();
            assert!(err.contains(reason), "{line:?}: {err}");
        }
    }

    #[test]
    fn long_garbage_is_quoted_short() {
        let err = parse(&"x".repeat(1000)).unwrap_err();
        assert!(err.len() < 300, "{err}");
    }

    #[test]
    fn replies_are_the_readme_lines() {
        assert_eq!(Reply::Appended(2).to_string(), "Ok: Appended at 2");
        assert_eq!(Reply::Value("bar".into()).to_string(), "Ok: bar");
        assert_eq!(
            Reply::Error("value does not exist".into()).to_string(),
            "Error: value does not exist"
        );
        assert_eq!(
            Reply::Error("two\nlines".into()).to_string(),
            "Error: two lines"
        );
    }
}
