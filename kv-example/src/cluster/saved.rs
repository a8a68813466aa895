//! The membership the console saves after each change (`DATA/cluster.json`), so that
//! the next run starts the members, with the arguments they were first started with,
//! and no others.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where the console saves the membership after a change.
pub(super) fn saved_membership_path(data_dir: &Path) -> PathBuf {
    data_dir.join("cluster.json")
}

/// The local cluster's membership, as the console last changed it.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SavedMembership {
    /// The members, in id order.
    pub(super) nodes: Vec<SavedNode>,
}

/// One member.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SavedNode {
    /// Its id.
    pub(super) id: u64,
    /// Where its raft peers reach it.
    pub(super) raft_addr: String,
    /// Its text-protocol address.
    pub(super) client_addr: String,
    /// Its HTTP address.
    pub(super) http_addr: String,
    /// Its data directory (empty for a node that runs elsewhere).
    pub(super) data_dir: PathBuf,
    /// The `kv-example node` arguments of a node that runs here.
    pub(super) args: Option<Vec<String>>,
}

impl SavedMembership {
    /// The membership saved at `path`, if there is one.
    pub(super) fn load(path: &Path) -> Result<Option<SavedMembership>, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{} is not a saved membership: {e}", path.display()))
    }

    /// Writes the file whole or not at all (a temporary file renamed over it).
    pub(super) fn store(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        let temporary = path.with_extension("json.tmp");
        std::fs::write(&temporary, text)?;
        std::fs::rename(&temporary, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_membership_reads_back_and_a_missing_one_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = saved_membership_path(dir.path());
        assert!(SavedMembership::load(&path).unwrap().is_none());
        let node = |id: u64, args: Option<Vec<String>>| SavedNode {
            id,
            raft_addr: format!("h:700{id}"),
            client_addr: format!("h:800{id}"),
            http_addr: format!("h:900{id}"),
            data_dir: dir.path().join(format!("node{id}")),
            args,
        };
        let saved = SavedMembership {
            nodes: vec![node(1, Some(vec!["node".into()])), node(5, None)],
        };
        saved.store(&path).unwrap();
        let loaded = SavedMembership::load(&path).unwrap().unwrap();
        assert_eq!(loaded.nodes.len(), 2);
        assert_eq!(
            loaded.nodes[0].args.as_deref(),
            Some(&["node".to_string()][..])
        );
        assert!(loaded.nodes[1].args.is_none());
        std::fs::write(&path, "not json").unwrap();
        let err = SavedMembership::load(&path).unwrap_err();
        assert!(err.contains("is not a saved membership"), "{err}");
    }
}
