//! The local cluster's console: the commands typed on its stdin to break and mend
//! the cluster, like `docker-compose stop raft1` in the original raftrs.

use std::fmt;

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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    /// Show the commands.
    Help,
    /// Stop every node and exit (like Ctrl-C).
    Quit,
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
        "help" | "?" => no_args(ConsoleCommand::Help)?,
        "quit" | "exit" => no_args(ConsoleCommand::Quit)?,
        other => return Err(format!("unknown command `{other}`; type `help`")),
    };
    Ok(Some(parsed))
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
        ];
        for (line, reason) in cases {
            let err = parse(line, &IDS).unwrap_err();
            assert!(err.contains(reason), "{line}: {err}");
        }
    }

    #[test]
    fn the_help_names_every_command() {
        for command in [
            "status", "stop", "start", "restart", "kill", "snapshot", "quit",
        ] {
            assert!(HELP.contains(command), "{command}");
        }
    }
}
