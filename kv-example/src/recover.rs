//! `kv-example recover`: after a quorum is lost for good, make one stopped survivor
//! the founder of a new cluster from its own data (raft-mio's
//! [`raft_mio::recover::force_new_membership`]; its docs say
//! what it does and why it is only as safe as the warning below).
//!
//! ```text
//! kv-example recover --data-dir data/node1 --dry-run     # what this node holds
//! kv-example recover --data-dir data/node1 --voters 1    # node 1 alone, from its data
//! kv-example node --id 1 ...                              # then start it as before
//! ```

use std::collections::BTreeSet;

use raft_core::NodeId;
use raft_mio::recover::{force_new_membership, inspect, LogSummary};

use crate::cli::RecoverArgs;

/// Why recovery failed.
pub type RecoverError = Box<dyn std::error::Error + Send + Sync>;

/// The warning printed before the data is changed.
pub const WARNING: &str = "\
WARNING: forcing a new cluster from this node's data alone. This gives up safety to get the
store back, and cannot be undone:
  - writes committed on the lost nodes but missing from this node's log are LOST
    (recover the survivor with the highest last term, then the highest last index);
  - writes in this log that never committed (their clients were told nothing, or that
    their fate is unknown) now COMMIT;
  - NEVER restart the lost nodes with their old data: wipe their data directories and
    add them back with add-node (they start with --join).";

/// Runs `kv-example recover`: shows what the data directory holds, and unless
/// `--dry-run`, forces the new configuration.
pub fn run(args: RecoverArgs) -> Result<(), RecoverError> {
    let summary = inspect(&args.data_dir)
        .map_err(|e| format!("cannot read {}: {e}", args.data_dir.display()))?;
    println!("{}: {}", args.data_dir.display(), describe(&summary));
    if args.dry_run {
        return Ok(());
    }
    let voters: BTreeSet<NodeId> = args.voters.iter().copied().map(NodeId).collect();
    eprintln!("{WARNING}");
    let recovery = force_new_membership(&args.data_dir, &voters)
        .map_err(|e| format!("cannot recover {}: {e}", args.data_dir.display()))?;
    let first = args.voters[0];
    println!(
        "recovered: a configuration entry at index {} in term {} makes voters={} the whole \
         cluster; start the node again (kv-example node --id {first} ...): it elects itself and \
         commits its log",
        recovery.index.0,
        recovery.term.0,
        ids(&recovery.membership.voters),
    );
    if voters.len() > 1 {
        println!(
            "the other voters must start with EMPTY data directories and without --join, so \
             that their logs come from node {first}"
        );
    }
    Ok(())
}

/// One line about a data directory.
pub fn describe(summary: &LogSummary) -> String {
    let membership = summary.membership.as_ref().map_or_else(
        || "the one it was started with".to_string(),
        |m| format!("voters={}", ids(&m.voters)),
    );
    format!(
        "last index {}, last term {}, term {}, snapshot at {}, configuration {membership}",
        summary.last_index.0,
        summary.last_term.0,
        summary.hard_state.term.0,
        summary.snapshot_index.0
    )
}

fn ids<'a>(ids: impl IntoIterator<Item = &'a NodeId>) -> String {
    let ids: Vec<String> = ids.into_iter().map(|id| id.0.to_string()).collect();
    ids.join(",")
}
