//! Where the nodes of a cluster started from here live: their addresses and data
//! directories, and the `kv-example node` arguments that say so.

use std::collections::BTreeMap;
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use raft_core::NodeId;

use crate::addrs::format_addr_list;

/// One node of a layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSpec {
    /// Its id (1, 2, 3, ...).
    pub id: u64,
    /// Its raft address.
    pub raft_addr: String,
    /// Its text-protocol address.
    pub client_addr: String,
    /// Its HTTP address.
    pub http_addr: String,
    /// Its data directory.
    pub data_dir: PathBuf,
}

/// A cluster's nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The nodes, by id order.
    pub nodes: Vec<NodeSpec>,
}

/// Options that go to every node of a layout.
#[derive(Clone, Debug, Default)]
pub struct NodeOptions {
    /// Turn fsync off (benchmarks of the code path only).
    pub no_fsync: bool,
    /// Start the node waiting to be added to a running cluster (`--join`).
    pub join: bool,
    /// Other `kv-example node` arguments, appended as they are.
    pub extra_args: Vec<String>,
    /// TLS with the certificates of a [`LocalCa`](crate::tls::LocalCa) in this
    /// directory (each node's must be issued before it starts).
    pub tls_dir: Option<PathBuf>,
}

impl Layout {
    /// `n` nodes on `host`: node i gets the given first ports plus i-1, and
    /// `data_root/node{i}`.
    pub fn consecutive(
        n: u64,
        host: &str,
        first_ports: (u16, u16, u16),
        data_root: &Path,
    ) -> Result<Layout, String> {
        let nodes = (1..=n)
            .map(|i| Layout::consecutive_node(i, host, first_ports, data_root))
            .collect::<Result<_, _>>()?;
        Ok(Layout { nodes })
    }

    /// Node `id` of the port scheme of [`consecutive`](Self::consecutive): the first
    /// ports plus `id - 1`, and `data_root/node{id}`.
    pub fn consecutive_node(
        id: u64,
        host: &str,
        first_ports: (u16, u16, u16),
        data_root: &Path,
    ) -> Result<NodeSpec, String> {
        if id == 0 {
            return Err("node id 0 is reserved; ids start at 1".into());
        }
        let (raft, client, http) = first_ports;
        let port = |first: u16| -> Result<u16, String> {
            u64::from(first)
                .checked_add(id - 1)
                .and_then(|p| u16::try_from(p).ok())
                .ok_or_else(|| format!("port {first} + {} is beyond 65535", id - 1))
        };
        Ok(NodeSpec {
            id,
            raft_addr: format!("{host}:{}", port(raft)?),
            client_addr: format!("{host}:{}", port(client)?),
            http_addr: format!("{host}:{}", port(http)?),
            data_dir: data_root.join(format!("node{id}")),
        })
    }

    /// Adds (or replaces) a node.
    pub fn insert(&mut self, spec: NodeSpec) {
        self.nodes.retain(|n| n.id != spec.id);
        self.nodes.push(spec);
        self.nodes.sort_by_key(|n| n.id);
    }

    /// Removes node `id`, if present.
    pub fn remove(&mut self, id: u64) -> Option<NodeSpec> {
        let at = self.nodes.iter().position(|n| n.id == id)?;
        Some(self.nodes.remove(at))
    }

    /// `n` nodes on 127.0.0.1 on ports the kernel says are free now (each bound to
    /// port 0 and released; another process could take one in between, which a
    /// caller notices as a node that fails to start).
    pub fn free_local_ports(n: u64, data_root: &Path) -> io::Result<Layout> {
        let bind = || TcpListener::bind("127.0.0.1:0");
        // Hold every listener until all ports are chosen, so none is chosen twice.
        let mut held = Vec::new();
        let mut nodes = Vec::new();
        for i in 1..=n {
            let (raft, client, http) = (bind()?, bind()?, bind()?);
            nodes.push(NodeSpec {
                id: i,
                raft_addr: raft.local_addr()?.to_string(),
                client_addr: client.local_addr()?.to_string(),
                http_addr: http.local_addr()?.to_string(),
                data_dir: data_root.join(format!("node{i}")),
            });
            held.extend([raft, client, http]);
        }
        Ok(Layout { nodes })
    }

    /// Node `id`.
    pub fn node(&self, id: u64) -> Option<&NodeSpec> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The node ids.
    pub fn ids(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    fn list(&self, addr: impl Fn(&NodeSpec) -> &String) -> String {
        let map: BTreeMap<NodeId, String> = self
            .nodes
            .iter()
            .map(|n| (NodeId(n.id), addr(n).clone()))
            .collect();
        format_addr_list(&map)
    }

    /// The `kv-example node ...` arguments that start node `id` (panics if there is
    /// no such node: layouts are built by the caller).
    pub fn node_args(&self, id: u64, options: &NodeOptions) -> Vec<String> {
        let node = self.node(id).expect("a node of the layout");
        let mut args = vec![
            "node".to_string(),
            "--id".into(),
            id.to_string(),
            "--peers".into(),
            self.list(|n| &n.raft_addr),
            "--client-addr".into(),
            node.client_addr.clone(),
            "--http-addr".into(),
            node.http_addr.clone(),
            "--data-dir".into(),
            node.data_dir.display().to_string(),
            "--peer-client-addrs".into(),
            self.list(|n| &n.client_addr),
            "--peer-http-addrs".into(),
            self.list(|n| &n.http_addr),
            "--exit-on-stdin-eof".into(),
        ];
        if options.no_fsync {
            args.push("--no-fsync".into());
        }
        if options.join {
            args.push("--join".into());
        } else if self.nodes.first().map(|n| n.id) == Some(id) {
            // The first node leads a new cluster, so the README's session (writes on
            // node 1, the first at index 2) is what a new user sees.
            args.push("--campaign-at-bootstrap".into());
        }
        if let Some(dir) = &options.tls_dir {
            args.extend(crate::tls::TlsFiles::in_dir(dir, id).node_flags());
        }
        args.extend(options.extra_args.iter().cloned());
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_layout_is_the_readmes() {
        let layout =
            Layout::consecutive(3, "127.0.0.1", (7001, 8001, 9001), Path::new("data")).unwrap();
        let two = layout.node(2).unwrap();
        assert_eq!(two.client_addr, "127.0.0.1:8002");
        assert_eq!(two.http_addr, "127.0.0.1:9002");
        assert_eq!(two.data_dir, Path::new("data/node2"));
        let args = layout.node_args(2, &NodeOptions::default());
        let peers = args.iter().position(|a| a == "--peers").unwrap();
        assert_eq!(
            args[peers + 1],
            "1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003"
        );
        assert!(Layout::consecutive(3, "h", (65535, 1, 1), Path::new("d")).is_err());
    }

    #[test]
    fn a_fourth_node_follows_the_port_scheme_and_joins() {
        let mut layout =
            Layout::consecutive(3, "127.0.0.1", (7001, 8001, 9001), Path::new("data")).unwrap();
        let four = Layout::consecutive_node(4, "127.0.0.1", (7001, 8001, 9001), Path::new("data"))
            .unwrap();
        assert_eq!(four.raft_addr, "127.0.0.1:7004");
        assert_eq!(four.http_addr, "127.0.0.1:9004");
        layout.insert(four);
        layout.remove(3);
        assert_eq!(layout.ids(), [1, 2, 4]);
        let options = NodeOptions {
            join: true,
            ..NodeOptions::default()
        };
        let args = layout.node_args(4, &options);
        assert!(args.contains(&"--join".to_string()));
        let peers = args.iter().position(|a| a == "--peers").unwrap();
        assert_eq!(
            args[peers + 1],
            "1=127.0.0.1:7001,2=127.0.0.1:7002,4=127.0.0.1:7004"
        );
    }

    #[test]
    fn free_ports_are_distinct() {
        let layout = Layout::free_local_ports(3, Path::new("d")).unwrap();
        let mut addrs: Vec<&String> = layout
            .nodes
            .iter()
            .flat_map(|n| [&n.raft_addr, &n.client_addr, &n.http_addr])
            .collect();
        addrs.sort();
        addrs.dedup();
        assert_eq!(addrs.len(), 9);
    }
}
