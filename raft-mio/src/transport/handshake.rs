//! The handshake that opens every peer connection: protocol version, cluster id, and
//! who is calling whom. A mismatch closes the connection before any Raft message is
//! read, so a node of another cluster is never heard.
//!
//! ```text
//! magic "RAFTRS\r\n" | version: u32 | zero: u32 | cluster_id: u64 | from: u64 | to: u64
//! ```
//! The dialer sends its hello; the acceptor checks it and answers with its own; the
//! dialer checks the answer and only then sends messages.

use std::fmt;

use raft_core::NodeId;

/// The version of the wire protocol (frames and messages). Bump on any change.
pub const PROTOCOL_VERSION: u32 = 1;

/// The size of a hello in bytes.
pub const HELLO_BYTES: usize = 40;

const MAGIC: &[u8; 8] = b"RAFTRS\r\n";

/// One side's introduction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The sender's protocol version.
    pub protocol_version: u32,
    /// The cluster the sender belongs to.
    pub cluster_id: u64,
    /// The sender.
    pub from: NodeId,
    /// Whom the sender means to talk to.
    pub to: NodeId,
}

impl Hello {
    /// A hello of this protocol version.
    pub fn new(cluster_id: u64, from: NodeId, to: NodeId) -> Self {
        Hello {
            protocol_version: PROTOCOL_VERSION,
            cluster_id,
            from,
            to,
        }
    }

    /// The hello's bytes.
    pub fn encode(&self) -> [u8; HELLO_BYTES] {
        let mut bytes = [0u8; HELLO_BYTES];
        bytes[0..8].copy_from_slice(MAGIC);
        bytes[8..12].copy_from_slice(&self.protocol_version.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.cluster_id.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.from.0.to_le_bytes());
        bytes[32..40].copy_from_slice(&self.to.0.to_le_bytes());
        bytes
    }

    /// Decodes a hello from the first [`HELLO_BYTES`] of `bytes`: `Ok(None)` if fewer
    /// have arrived.
    pub fn decode(bytes: &[u8]) -> Result<Option<Hello>, HandshakeError> {
        let Some(bytes) = bytes.get(..HELLO_BYTES) else {
            // Refuse a wrong magic as soon as its bytes are there.
            let seen = bytes.len().min(MAGIC.len());
            if bytes[..seen] != MAGIC[..seen] {
                return Err(HandshakeError::BadMagic);
            }
            return Ok(None);
        };
        if &bytes[0..8] != MAGIC {
            return Err(HandshakeError::BadMagic);
        }
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        Ok(Some(Hello {
            protocol_version: u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")),
            cluster_id: u64_at(16),
            from: NodeId(u64_at(24)),
            to: NodeId(u64_at(32)),
        }))
    }

    /// Checks a hello received from a peer against what this node expects: its own
    /// version and cluster, addressed to `me`, and (when known) from `expected_from`.
    pub fn check(
        &self,
        cluster_id: u64,
        me: NodeId,
        expected_from: Option<NodeId>,
    ) -> Result<(), HandshakeError> {
        if self.protocol_version != PROTOCOL_VERSION {
            return Err(HandshakeError::VersionMismatch {
                ours: PROTOCOL_VERSION,
                theirs: self.protocol_version,
            });
        }
        if self.cluster_id != cluster_id {
            return Err(HandshakeError::ClusterMismatch {
                ours: cluster_id,
                theirs: self.cluster_id,
                from: self.from,
            });
        }
        if self.to != me {
            return Err(HandshakeError::WrongNode {
                me,
                addressed_to: self.to,
            });
        }
        if let Some(expected) = expected_from.filter(|e| *e != self.from) {
            return Err(HandshakeError::UnexpectedPeer {
                expected,
                found: self.from,
            });
        }
        Ok(())
    }
}

/// Why a handshake failed; the connection is closed and this is logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeError {
    /// The first bytes are not a raftrs hello (not a raftrs peer at all).
    BadMagic,
    /// The peer speaks another protocol version.
    VersionMismatch {
        /// This node's version.
        ours: u32,
        /// The peer's.
        theirs: u32,
    },
    /// The peer belongs to another cluster.
    ClusterMismatch {
        /// This node's cluster id.
        ours: u64,
        /// The peer's.
        theirs: u64,
        /// The node id the peer claims.
        from: NodeId,
    },
    /// The peer meant to reach another node (an address mix-up).
    WrongNode {
        /// This node.
        me: NodeId,
        /// Whom the peer addressed.
        addressed_to: NodeId,
    },
    /// The peer is not the node this connection was opened to, or not a member.
    UnexpectedPeer {
        /// The node expected.
        expected: NodeId,
        /// The node that answered.
        found: NodeId,
    },
    /// The peer claims to be a node this node does not know.
    UnknownPeer {
        /// The id it claims.
        from: NodeId,
    },
    /// The peer connected and did not complete the handshake in time.
    Timeout,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::BadMagic => f.write_str("not a raftrs peer (bad handshake magic)"),
            HandshakeError::VersionMismatch { ours, theirs } => {
                write!(f, "protocol version mismatch: peer speaks {theirs}, this node {ours}")
            }
            HandshakeError::ClusterMismatch { ours, theirs, from } => write!(
                f,
                "cluster id mismatch: peer {from} is in cluster {theirs}, this node in cluster {ours}"
            ),
            HandshakeError::WrongNode { me, addressed_to } => {
                write!(f, "peer addressed node {addressed_to}, but this is node {me}")
            }
            HandshakeError::UnexpectedPeer { expected, found } => {
                write!(f, "expected node {expected} at this address, found node {found}")
            }
            HandshakeError::UnknownPeer { from } => write!(f, "node {from} is not a known peer"),
            HandshakeError::Timeout => f.write_str("peer did not complete the handshake in time"),
        }
    }
}

impl std::error::Error for HandshakeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hello_round_trips_and_checks() {
        let hello = Hello::new(7, NodeId(1), NodeId(2));
        let bytes = hello.encode();
        assert_eq!(Hello::decode(&bytes[..10]), Ok(None));
        assert_eq!(Hello::decode(&bytes), Ok(Some(hello)));
        assert_eq!(hello.check(7, NodeId(2), Some(NodeId(1))), Ok(()));
    }

    #[test]
    fn mismatches_are_named() {
        let hello = Hello::new(7, NodeId(1), NodeId(2));
        assert!(matches!(
            hello.check(8, NodeId(2), None),
            Err(HandshakeError::ClusterMismatch {
                ours: 8,
                theirs: 7,
                ..
            })
        ));
        assert!(matches!(
            hello.check(7, NodeId(3), None),
            Err(HandshakeError::WrongNode { .. })
        ));
        assert!(matches!(
            hello.check(7, NodeId(2), Some(NodeId(4))),
            Err(HandshakeError::UnexpectedPeer { .. })
        ));
        let old = Hello {
            protocol_version: 0,
            ..hello
        };
        assert!(matches!(
            old.check(7, NodeId(2), None),
            Err(HandshakeError::VersionMismatch { .. })
        ));
        assert_eq!(
            Hello::decode(b"GET / HTTP/1.1\r\n"),
            Err(HandshakeError::BadMagic)
        );
        assert_eq!(Hello::decode(b"GE"), Err(HandshakeError::BadMagic));
    }
}
