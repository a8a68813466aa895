//! The local cluster's console: the commands typed on its stdin to break and mend
//! the cluster, like `docker-compose stop raft1` in the original raftrs.

use std::fmt;

use crate::addrs::split_host_port;

/// Which node a command is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Node N.
    Node(u64),
    /// Whichever node leads now.
    Leader,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Node(id) => write!(f, "node {id}"),
            Target::Leader => f.write_str("the leader"),
        }
    }
}

/// A console command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsoleCommand {
    /// Show every node's process and Raft state.
    Status,
    /// Stop a node cleanly.
    Stop(Target),
    /// Start a stopped node.
    Start(u64),
    /// Stop a node cleanly and start it again.
    Restart(Target),
    /// Kill a node with SIGKILL (a crash).
    Kill(Target),
    /// Snapshot the store of one node, or of every running node (`None`).
    Snapshot(Option<Target>),
    /// Add node `id` to the cluster: a new local process on the port scheme
    /// (`addrs: None`), or a node already running elsewhere at these addresses.
    AddNode {
        /// Its id.
        id: u64,
        /// Its raft, text-protocol and HTTP addresses, for a node not started here.
        addrs: Option<NodeAddrs>,
    },
    /// Remove node `id` from the cluster (and stop it, if it runs here).
    RemoveNode(u64),
    /// Hand leadership to node `id`.
    Transfer(u64),
    /// Show the commands.
    Help,
    /// Stop every node and exit (like Ctrl-C).
    Quit,
}

/// The addresses of a node the console did not start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeAddrs {
    /// Where its raft peers reach it.
    pub raft: String,
    /// Its text-protocol address.
    pub client: String,
    /// Its HTTP address.
    pub http: String,
}

/// The console's help text.
pub const HELP: &str = "\
console commands:
  status            every node's process, role, term, leader and indexes
  stop N            stop node N cleanly (N may be `leader`)
  start N           start node N again
  restart N         stop node N cleanly and start it again (N may be `leader`)
  kill N            kill node N with SIGKILL, a crash (N may be `leader`)
  snapshot [N]      snapshot node N's store now (every running node without N)
  add-node N        start node N here (ports base+N-1) and add it: learner, catch-up, voter
  add-node N RAFT CLIENT HTTP
                    add node N that runs elsewhere (started with --join) at these addresses
  remove-node N     remove node N from the cluster; stop it if it runs here
  transfer N        ask the leader to hand leadership to node N
  help              this text
  quit              stop every node and exit (Ctrl-C does the same)";

/// Parses one console line for a cluster of nodes `ids`; `Ok(None)` for a blank line.
pub fn parse(line: &str, ids: &[u64]) -> Result<Option<ConsoleCommand>, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some((command, args)) = words.split_first() else {
        return Ok(None);
    };
    let target = |allow_leader: bool| -> Result<Target, String> {
        let [arg] = args else {
            return Err(format!("usage: {command} N (one of {ids:?})"));
        };
        if allow_leader && arg.eq_ignore_ascii_case("leader") {
            return Ok(Target::Leader);
        }
        match arg.parse::<u64>() {
            Ok(id) if ids.contains(&id) => Ok(Target::Node(id)),
            _ => Err(format!("`{arg}` is not a node; the nodes are {ids:?}")),
        }
    };
    let no_args = |c: ConsoleCommand| {
        if args.is_empty() {
            Ok(c)
        } else {
            Err(format!("{command} takes no argument"))
        }
    };
    let parsed = match command.to_ascii_lowercase().as_str() {
        "status" => no_args(ConsoleCommand::Status)?,
        "stop" => ConsoleCommand::Stop(target(true)?),
        "start" => match target(false)? {
            Target::Node(id) => ConsoleCommand::Start(id),
            Target::Leader => unreachable!("start takes no `leader`"),
        },
        "restart" => ConsoleCommand::Restart(target(true)?),
        "kill" => ConsoleCommand::Kill(target(true)?),
        "snapshot" if args.is_empty() => ConsoleCommand::Snapshot(None),
        "snapshot" => ConsoleCommand::Snapshot(Some(target(true)?)),
        "add-node" => {
            let usage = "usage: add-node N, or add-node N RAFT_ADDR CLIENT_ADDR HTTP_ADDR";
            let (id, addrs) = match args {
                [id] => (*id, None),
                [id, raft, client, http] => {
                    for addr in [raft, client, http] {
                        if split_host_port(addr).is_none() {
                            return Err(format!("`{addr}` is not HOST:PORT; {usage}"));
                        }
                    }
                    let addrs = NodeAddrs {
                        raft: raft.to_string(),
                        client: client.to_string(),
                        http: http.to_string(),
                    };
                    (*id, Some(addrs))
                }
                _ => return Err(usage.into()),
            };
            let id = new_id(id)?;
            if ids.contains(&id) {
                return Err(format!(
                    "node {id} is already in the cluster; the nodes are {ids:?}"
                ));
            }
            ConsoleCommand::AddNode { id, addrs }
        }
        "remove-node" => {
            let [id] = args else {
                return Err("usage: remove-node N".into());
            };
            ConsoleCommand::RemoveNode(new_id(id)?)
        }
        "transfer" => match target(false)? {
            Target::Node(id) => ConsoleCommand::Transfer(id),
            Target::Leader => unreachable!("transfer takes no `leader`"),
        },
        "help" | "?" => no_args(ConsoleCommand::Help)?,
        "quit" | "exit" => no_args(ConsoleCommand::Quit)?,
        other => return Err(format!("unknown command `{other}`; type `help`")),
    };
    Ok(Some(parsed))
}

/// A positive node id.
fn new_id(word: &str) -> Result<u64, String> {
    match word.parse::<u64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(format!("`{word}` is not a node id (a positive integer)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDS: [u64; 3] = [1, 2, 3];

    #[test]
    fn the_documented_commands_parse() {
        let cases = [
            ("status", ConsoleCommand::Status),
            ("stop 2", ConsoleCommand::Stop(Target::Node(2))),
            ("start 2", ConsoleCommand::Start(2)),
            ("restart 2", ConsoleCommand::Restart(Target::Node(2))),
            ("kill 2", ConsoleCommand::Kill(Target::Node(2))),
            ("kill leader", ConsoleCommand::Kill(Target::Leader)),
            ("snapshot", ConsoleCommand::Snapshot(None)),
            (
                "snapshot 3",
                ConsoleCommand::Snapshot(Some(Target::Node(3))),
            ),
            ("  KILL   3 ", ConsoleCommand::Kill(Target::Node(3))),
            ("add-node 4", ConsoleCommand::AddNode { id: 4, addrs: None }),
            (
                "add-node 5 h:7005 h:8005 h:9005",
                ConsoleCommand::AddNode {
                    id: 5,
                    addrs: Some(NodeAddrs {
                        raft: "h:7005".into(),
                        client: "h:8005".into(),
                        http: "h:9005".into(),
                    }),
                },
            ),
            ("remove-node 3", ConsoleCommand::RemoveNode(3)),
            ("transfer 1", ConsoleCommand::Transfer(1)),
            ("help", ConsoleCommand::Help),
            ("quit", ConsoleCommand::Quit),
        ];
        for (line, want) in cases {
            assert_eq!(parse(line, &IDS), Ok(Some(want)), "{line}");
        }
        assert_eq!(parse("   ", &IDS), Ok(None));
    }

    #[test]
    fn mistakes_are_explained() {
        let cases = [
            ("stop", "usage: stop N"),
            ("stop 4", "`4` is not a node"),
            ("start leader", "`leader` is not a node"),
            ("kill 1 2", "usage: kill N"),
            ("status 1", "takes no argument"),
            ("reboot 1", "unknown command `reboot`"),
            ("add-node 2", "already in the cluster"),
            ("add-node 0", "not a node id"),
            ("add-node 4 h:1 h:2", "usage: add-node"),
            ("add-node 4 h:1 h h:3", "`h` is not HOST:PORT"),
            ("remove-node", "usage: remove-node N"),
            ("transfer", "usage: transfer N"),
            ("transfer 9", "`9` is not a node"),
            ("transfer x", "`x` is not a node"),
        ];
        for (line, reason) in cases {
            let err = parse(line, &IDS).unwrap_err();
            assert!(err.contains(reason), "{line}: {err}");
        }
    }

    #[test]
    fn the_help_names_every_command() {
        for command in [
            "status",
            "stop",
            "start",
            "restart",
            "kill",
            "snapshot",
            "add-node",
            "remove-node",
            "transfer",
            "quit",
        ] {
            assert!(HELP.contains(command), "{command}");
        }
    }
}
