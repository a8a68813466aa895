//! The commands clients replicate through the log, and their wire encoding.

use serde::{Deserialize, Serialize};

/// A client's identity for duplicate suppression (one session per client).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct ClientId(pub u64);

/// A client's sequence number for one request. A client numbers its requests
/// 1, 2, 3, ... and retries a request under the same number.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct RequestSeq(pub u64);

/// A change to the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operation {
    /// Set `key` to `value`.
    Put {
        /// The key.
        key: String,
        /// The new value.
        value: String,
    },
    /// Remove `key`.
    Delete {
        /// The key.
        key: String,
    },
    /// Compare-and-set: if the current value of `key` equals `expected` (None:
    /// absent), set it to `new` (None: remove it).
    Cas {
        /// The key.
        key: String,
        /// The value the key must hold for the swap to happen.
        expected: Option<String>,
        /// The value to store if it does.
        new: Option<String>,
    },
}

impl Operation {
    /// The key the operation touches.
    pub fn key(&self) -> &str {
        match self {
            Operation::Put { key, .. } | Operation::Delete { key } | Operation::Cas { key, .. } => {
                key
            }
        }
    }
}

/// A replicated command: an operation under its client session, so that a retried
/// request (same client, same sequence number) takes effect at most once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// The client that issued the request.
    pub client: ClientId,
    /// The client's number for the request.
    pub seq: RequestSeq,
    /// What to do.
    pub op: Operation,
}

impl Command {
    /// Encodes the command for the log (postcard).
    pub fn encode(&self) -> Vec<u8> {
        // Encoding a plain data type into a growable buffer cannot fail.
        postcard::to_allocvec(self).expect("a Command always encodes")
    }

    /// Decodes a command written by [`Command::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Command, DecodeError> {
        postcard::from_bytes(bytes).map_err(|e| DecodeError {
            what: "command",
            reason: e.to_string(),
        })
    }
}

/// Bytes that are not a valid encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// What was being decoded.
    pub what: &'static str,
    /// Why it failed (postcard's message).
    pub reason: String,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot decode {}: {}", self.what, self.reason)
    }
}

impl std::error::Error for DecodeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_round_trips_through_postcard() {
        let command = Command {
            client: ClientId(7),
            seq: RequestSeq(3),
            op: Operation::Cas {
                key: "k".into(),
                expected: None,
                new: Some("v".into()),
            },
        };
        assert_eq!(Command::decode(&command.encode()), Ok(command));
    }

    #[test]
    fn garbage_is_a_decode_error_not_a_panic() {
        let err = Command::decode(&[0xff, 0xff, 0xff]).unwrap_err();
        assert_eq!(err.what, "command");
    }
}
