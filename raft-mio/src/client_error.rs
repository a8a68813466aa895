//! What a client is told when a request did not succeed.
//!
//! A proposal's failure is always one of two kinds, and the two must never be
//! confused: an application that tells its own client "not applied" for a write that
//! later commits makes that client apply it twice.
//! - **Definitely not applied**: the proposal never entered a log that can commit it
//!   ([`AppendError::NotLeader`], [`AppendError::Dropped`], [`AppendError::TooLarge`],
//!   [`AppendError::Encode`], [`AppendError::Shutdown`]), or its index committed with
//!   another entry (`Dropped(DropReason::Overwritten)`).
//! - **Fate unknown** ([`AppendError::Unknown`]): the proposal was appended somewhere
//!   and this node can no longer learn whether it commits. It may commit later,
//!   through another leader. Only an idempotent retry (the same request id, which the
//!   application's state machine deduplicates) makes the outcome certain.
//!
//! [`AppendError::is_unknown`] tells the two apart.

use std::fmt;

use raft_core::{DropReason, ReadFailure};

use crate::client::LeaderHint;

/// Why a proposal did not commit, or why its fate is not known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppendError {
    /// This node is not the leader and refused the proposal before appending it (not
    /// applied); the hint names the leader it knows of, if any.
    NotLeader(Option<LeaderHint>),
    /// The proposal was not applied: the leader refused it before appending it
    /// (transferring, overloaded, a membership change pending or invalid), or its
    /// index committed with another entry (`Overwritten`). Never `NotLeader` (see
    /// [`AppendError::NotLeader`]) nor `Unknown` (see [`AppendError::Unknown`]).
    Dropped(DropReason),
    /// The encoded command is larger than the node's `command_bytes_max`; it was not
    /// proposed.
    TooLarge {
        /// The command's encoded size.
        bytes: usize,
        /// The node's `command_bytes_max`.
        max: usize,
    },
    /// The command could not be encoded; it was not proposed.
    Encode(String),
    /// The node had stopped before the proposal reached it; it was not proposed.
    Shutdown,
    /// The proposal's fate is unknown: it may still commit, or never.
    Unknown(UnknownFate),
}

/// Why a proposal's fate is unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnknownFate {
    /// The node stopped (shut down, or its loop failed) while the proposal was
    /// pending: it may be in the logs of other nodes, and commit there.
    NodeStopped,
    /// A snapshot replaced this node's log through the proposal's index before the
    /// node could compare the committed entry with it (`DropReason::Unknown`).
    Compacted,
}

impl AppendError {
    /// Whether the proposal's fate is unknown (it may still commit). Every other
    /// error means it was not applied and never will be.
    pub fn is_unknown(&self) -> bool {
        matches!(self, AppendError::Unknown(_))
    }

    /// The error for a proposal the core dropped (`leader` names the leader for
    /// `NotLeader`).
    pub(crate) fn from_drop(reason: DropReason, leader: Option<LeaderHint>) -> AppendError {
        match reason {
            DropReason::NotLeader { .. } => AppendError::NotLeader(leader),
            DropReason::Unknown => AppendError::Unknown(UnknownFate::Compacted),
            other => AppendError::Dropped(other),
        }
    }
}

/// Why a leader did not apply a proposal, in words (the `Dropped` reasons).
fn drop_reason_words(reason: DropReason) -> &'static str {
    match reason {
        DropReason::NotLeader { .. } => "this node is not the leader",
        DropReason::Overwritten => "its index committed with another leader's entry",
        DropReason::Transferring => "the leader is handing over leadership",
        DropReason::Overloaded => "the leader holds too many uncommitted entries",
        DropReason::MembershipChangePending => {
            "a membership change is in progress, or the leader has not yet committed an \
             entry of its term"
        }
        DropReason::InvalidMembership => "the membership it asks for is not valid",
        DropReason::Unknown => "its fate is unknown",
    }
}

impl fmt::Display for AppendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppendError::NotLeader(Some(hint)) => {
                write!(f, "not applied: not the leader; the leader is {hint}")
            }
            AppendError::NotLeader(None) => {
                f.write_str("not applied: not the leader, and no leader is known")
            }
            AppendError::Dropped(reason) => {
                write!(f, "not applied: {}", drop_reason_words(*reason))
            }
            AppendError::TooLarge { bytes, max } => write!(
                f,
                "not applied: the command is {bytes} bytes encoded, over command_bytes_max \
                 ({max} bytes)"
            ),
            AppendError::Encode(e) => write!(f, "not applied: cannot encode the command: {e}"),
            AppendError::Shutdown => {
                f.write_str("not applied: the node had stopped before the proposal reached it")
            }
            AppendError::Unknown(UnknownFate::NodeStopped) => f.write_str(
                "fate unknown: the node stopped before the proposal's fate was known; it may \
                 still commit",
            ),
            AppendError::Unknown(UnknownFate::Compacted) => f.write_str(
                "fate unknown: a snapshot replaced the log before the proposal's fate was known \
                 here; it may have committed",
            ),
        }
    }
}

impl std::error::Error for AppendError {}

/// Why a read barrier failed. A read changes nothing, so a failed one can always be
/// retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// Leadership could not be confirmed (no leader, timeout, transfer...); retry.
    Failed(ReadFailure),
    /// The node has stopped.
    Shutdown,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Failed(reason) => write!(f, "read barrier failed: {reason:?}"),
            ReadError::Shutdown => f.write_str("the node has stopped"),
        }
    }
}

impl std::error::Error for ReadError {}

/// The node has stopped; the request was not carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShutdownError;

impl fmt::Display for ShutdownError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the node has stopped")
    }
}

impl std::error::Error for ShutdownError {}

#[cfg(test)]
mod tests {
    use raft_core::NodeId;

    use super::*;

    /// Every drop reason the core reports, mapped: only `Unknown` leaves the fate
    /// open, and only the not-applied errors say "not applied".
    #[test]
    fn only_unknown_fates_leave_the_outcome_open() {
        let hint = LeaderHint {
            id: NodeId(2),
            addr: Some("h2:7000".into()),
            app_addrs: Default::default(),
        };
        let reasons = [
            DropReason::NotLeader {
                leader_hint: Some(NodeId(2)),
            },
            DropReason::Overwritten,
            DropReason::Transferring,
            DropReason::Overloaded,
            DropReason::MembershipChangePending,
            DropReason::InvalidMembership,
            DropReason::Unknown,
        ];
        for reason in reasons {
            let error = AppendError::from_drop(reason, Some(hint.clone()));
            let unknown = reason == DropReason::Unknown;
            assert_eq!(error.is_unknown(), unknown, "{reason:?}");
            let text = error.to_string();
            assert_eq!(text.starts_with("not applied: "), !unknown, "{text}");
            assert_eq!(text.starts_with("fate unknown: "), unknown, "{text}");
            assert!(!matches!(
                error,
                AppendError::Dropped(DropReason::NotLeader { .. } | DropReason::Unknown)
            ));
        }
        let stopped = AppendError::Unknown(UnknownFate::NodeStopped);
        assert!(stopped.is_unknown());
        assert!(stopped.to_string().contains("may still commit"));
        for definite in [
            AppendError::Shutdown,
            AppendError::TooLarge { bytes: 9, max: 8 },
            AppendError::Encode("x".into()),
        ] {
            assert!(!definite.is_unknown());
            assert!(
                definite.to_string().starts_with("not applied: "),
                "{definite}"
            );
        }
    }
}
