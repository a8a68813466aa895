//! Who is where: the raft, text-protocol and HTTP addresses of every node.
//!
//! A follower answers a misdirected write with the leader's *client* address, not its
//! raft address, so every node needs the client and HTTP addresses of its peers. They
//! are configured like the peers themselves (`1=host1:8001,2=host2:8001`); when left
//! out, a peer's address is its raft host with this node's own client (or HTTP) port,
//! which is what a deployment that uses the same ports on every machine wants.

use std::collections::BTreeMap;
use std::fmt;

use raft_core::NodeId;

/// The name of a member's text-protocol address in raft-mio's replicated address
/// table ([`raft_mio::MemberAddrs::app`]).
pub const APP_CLIENT: &str = "client";
/// The name of a member's HTTP address in raft-mio's replicated address table.
pub const APP_HTTP: &str = "http";

/// An `id=host:port` list that does not parse, with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddrListError(pub String);

impl fmt::Display for AddrListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AddrListError {}

/// Parses `1=host1:7001,2=host2:7001` into node ids and addresses. Ids must be
/// positive and distinct; each address must have a host and a numeric port.
pub fn parse_addr_list(list: &str) -> Result<BTreeMap<NodeId, String>, AddrListError> {
    let mut addrs = BTreeMap::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (id, addr) = item
            .split_once('=')
            .ok_or_else(|| AddrListError(format!("`{item}` is not of the form ID=HOST:PORT")))?;
        let id: u64 = id
            .trim()
            .parse()
            .map_err(|_| AddrListError(format!("`{id}` in `{item}` is not a node id")))?;
        if id == 0 {
            return Err(AddrListError(
                "node id 0 is reserved; ids start at 1".into(),
            ));
        }
        let addr = addr.trim();
        split_host_port(addr)
            .ok_or_else(|| AddrListError(format!("`{addr}` is not a HOST:PORT address")))?;
        if addrs.insert(NodeId(id), addr.to_string()).is_some() {
            return Err(AddrListError(format!("node {id} is listed twice")));
        }
    }
    if addrs.is_empty() {
        return Err(AddrListError("the list names no node".into()));
    }
    Ok(addrs)
}

/// Formats addresses as `1=a,2=b`, the inverse of [`parse_addr_list`].
pub fn format_addr_list(addrs: &BTreeMap<NodeId, String>) -> String {
    let items: Vec<String> = addrs
        .iter()
        .map(|(id, addr)| format!("{}={addr}", id.0))
        .collect();
    items.join(",")
}

/// Splits `host:port` (or `[v6]:port`) into its host and port.
pub fn split_host_port(addr: &str) -> Option<(&str, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    if host.is_empty() {
        return None;
    }
    Some((host, port))
}

/// The addresses of one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeAddrs {
    /// Where its raft peers reach it.
    pub raft: String,
    /// Where clients reach its text protocol.
    pub client: String,
    /// Where clients reach its HTTP front end.
    pub http: String,
}

/// Every node's addresses, by id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directory {
    nodes: BTreeMap<NodeId, NodeAddrs>,
}

impl Directory {
    /// Builds the directory from the raft peers, the explicitly configured client and
    /// HTTP addresses (possibly partial), and this node's own client and HTTP ports
    /// (the default for peers whose addresses are not configured).
    pub fn new(
        peers: &BTreeMap<NodeId, String>,
        clients: &BTreeMap<NodeId, String>,
        https: &BTreeMap<NodeId, String>,
        own_client_port: u16,
        own_http_port: u16,
    ) -> Result<Directory, AddrListError> {
        let unknown = clients
            .keys()
            .chain(https.keys())
            .find(|id| !peers.contains_key(id));
        if let Some(id) = unknown {
            return Err(AddrListError(format!(
                "node {} has a client or HTTP address but is not among the peers",
                id.0
            )));
        }
        let mut nodes = BTreeMap::new();
        for (id, raft) in peers {
            let (host, _) = split_host_port(raft)
                .ok_or_else(|| AddrListError(format!("`{raft}` is not a HOST:PORT address")))?;
            let client = clients
                .get(id)
                .cloned()
                .unwrap_or_else(|| format!("{host}:{own_client_port}"));
            let http = https
                .get(id)
                .cloned()
                .unwrap_or_else(|| format!("{host}:{own_http_port}"));
            let raft = raft.clone();
            nodes.insert(*id, NodeAddrs { raft, client, http });
        }
        Ok(Directory { nodes })
    }

    /// The addresses of node `id`, if it is known.
    pub fn get(&self, id: NodeId) -> Option<&NodeAddrs> {
        self.nodes.get(&id)
    }

    /// Every node, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, &NodeAddrs)> {
        self.nodes.iter().map(|(id, addrs)| (*id, addrs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[(u64, &str)]) -> BTreeMap<NodeId, String> {
        items
            .iter()
            .map(|(id, a)| (NodeId(*id), a.to_string()))
            .collect()
    }

    #[test]
    fn a_peer_list_parses_and_formats_back() {
        let text = "1=host1:7001, 2=10.0.0.2:7001,3=[::1]:7003";
        let addrs = parse_addr_list(text).unwrap();
        assert_eq!(
            addrs,
            list(&[(1, "host1:7001"), (2, "10.0.0.2:7001"), (3, "[::1]:7003")])
        );
        assert_eq!(parse_addr_list(&format_addr_list(&addrs)).unwrap(), addrs);
    }

    #[test]
    fn bad_peer_lists_say_what_is_wrong() {
        let cases = [
            ("1:7001", "not of the form"),
            ("x=h:1", "not a node id"),
            ("0=h:1", "reserved"),
            ("1=h", "not a HOST:PORT"),
            ("1=h:port", "not a HOST:PORT"),
            ("1=h:1,1=g:2", "listed twice"),
            ("", "names no node"),
        ];
        for (text, reason) in cases {
            let err = parse_addr_list(text).unwrap_err();
            assert!(err.0.contains(reason), "{text}: {err}");
        }
    }

    #[test]
    fn unconfigured_client_addresses_use_the_raft_host_and_our_port() {
        let peers = list(&[(1, "host1:7001"), (2, "host2:7001")]);
        let clients = list(&[(2, "proxy:18002")]);
        let dir = Directory::new(&peers, &clients, &BTreeMap::new(), 8001, 9001).unwrap();
        let one = dir.get(NodeId(1)).unwrap();
        assert_eq!(one.client, "host1:8001");
        assert_eq!(one.http, "host1:9001");
        let two = dir.get(NodeId(2)).unwrap();
        assert_eq!(two.client, "proxy:18002");
        assert_eq!(two.http, "host2:9001");
        assert_eq!(dir.get(NodeId(3)), None);
    }

    #[test]
    fn a_client_address_for_a_stranger_is_refused() {
        let peers = list(&[(1, "h:1")]);
        let err = Directory::new(&peers, &list(&[(5, "h:2")]), &BTreeMap::new(), 1, 2);
        assert!(err.unwrap_err().0.contains("node 5"));
    }
}
