//! A small network of Linux network namespaces, to cut links between real processes.
//!
//! ```text
//!   node ns 1 (10.77.1.2) ──veth── ┐
//!   node ns 2 (10.77.2.2) ──veth── hub ns (routes between them; iptables FORWARD)
//!   node ns 3 (10.77.3.2) ──veth── ┘
//! ```
//! Each node runs in its own namespace (`ip netns exec`); the hub routes between
//! them, and a partition is a pair of iptables DROP rules in the hub's FORWARD chain,
//! which cut both directions of every connection, established or new. The test's
//! own client threads move into the hub namespace (setns), from where every node
//! stays reachable whatever the partition: the test can still ask a cut-off node
//! what it believes. Nothing in the host's own namespace changes.
//!
//! Needs root, `ip` (iproute2) and `iptables`; [`NetLab::unavailable`] says which is
//! missing so that the tests can skip with a clear reason.

use std::fs::File;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use kv_example::layout::{Layout, NodeSpec};

/// Runs `scenario` in a fresh lab of `nodes` namespaces, on a thread of the test's
/// own that has entered the hub (threads it spawns inherit the namespace), or
/// prints why `test` skipped.
pub fn in_lab(test: &str, nodes: u64, scenario: impl FnOnce(&NetLab) + Send) {
    if let Some(reason) = NetLab::unavailable() {
        println!("SKIPPED {test}: {reason}");
        return;
    }
    let lab = NetLab::create(nodes).expect("build the network namespaces");
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                lab.enter_hub();
                scenario(&lab);
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    });
}

/// The lab: a hub namespace and one namespace per node.
pub struct NetLab {
    prefix: String,
    nodes: u64,
}

fn run(args: &[&str]) -> Result<(), String> {
    let output = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("cannot run `{}`: {e}", args.join(" ")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

impl NetLab {
    /// Why the lab cannot be built here, or `None` if it can.
    pub fn unavailable() -> Option<String> {
        if !rustix::process::geteuid().is_root() {
            return Some("not running as root (network namespaces need it)".into());
        }
        for tool in [["ip", "-V"], ["iptables", "--version"]] {
            if let Err(e) = run(&tool) {
                return Some(format!("`{}` is not usable: {e}", tool[0]));
            }
        }
        None
    }

    /// Creates the namespaces and links for `nodes` nodes.
    pub fn create(nodes: u64) -> Result<NetLab, String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let prefix = format!(
            "kvt{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let lab = NetLab { prefix, nodes };
        // On an error, Drop removes whatever was created.
        lab.build()?;
        Ok(lab)
    }

    fn hub(&self) -> String {
        format!("{}hub", self.prefix)
    }

    fn node_ns(&self, id: u64) -> String {
        format!("{}n{id}", self.prefix)
    }

    fn build(&self) -> Result<(), String> {
        let hub = self.hub();
        run(&["ip", "netns", "add", &hub])?;
        run(&["ip", "-n", &hub, "link", "set", "lo", "up"])?;
        run(&[
            "ip",
            "netns",
            "exec",
            &hub,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ])?;
        for id in 1..=self.nodes {
            let ns = self.node_ns(id);
            let hub_end = format!("h{id}");
            run(&["ip", "netns", "add", &ns])?;
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
            run(&[
                "ip", "-n", &hub, "link", "add", &hub_end, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ])?;
            run(&[
                "ip",
                "-n",
                &hub,
                "addr",
                "add",
                &format!("10.77.{id}.1/24"),
                "dev",
                &hub_end,
            ])?;
            run(&["ip", "-n", &hub, "link", "set", &hub_end, "up"])?;
            run(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("10.77.{id}.2/24"),
                "dev",
                "eth0",
            ])?;
            run(&["ip", "-n", &ns, "link", "set", "eth0", "up"])?;
            run(&[
                "ip",
                "-n",
                &ns,
                "route",
                "add",
                "default",
                "via",
                &format!("10.77.{id}.1"),
            ])?;
        }
        Ok(())
    }

    /// Runs `command` in the hub namespace.
    fn in_hub(&self, command: &[&str]) -> Result<(), String> {
        let hub = self.hub();
        let mut args = vec!["ip", "netns", "exec", &hub];
        args.extend_from_slice(command);
        run(&args)
    }

    /// A cluster of `nodes` inside the lab: the same ports on every node's own
    /// address, data under `data`.
    pub fn layout(&self, nodes: u64, data: &Path) -> Layout {
        Layout {
            nodes: (1..=nodes)
                .map(|id| NodeSpec {
                    id,
                    raft_addr: format!("{}:7001", self.node_ip(id)),
                    client_addr: format!("{}:8001", self.node_ip(id)),
                    http_addr: format!("{}:9001", self.node_ip(id)),
                    data_dir: data.join(format!("node{id}")),
                })
                .collect(),
        }
    }

    /// Node `id`'s address.
    pub fn node_ip(&self, id: u64) -> String {
        format!("10.77.{id}.2")
    }

    /// The command prefix that runs a program in node `id`'s namespace.
    pub fn wrapper(&self, id: u64) -> Vec<String> {
        vec!["ip".into(), "netns".into(), "exec".into(), self.node_ns(id)]
    }

    /// Cuts node `id` off from every other node (both directions).
    pub fn isolate(&self, id: u64) {
        let ip = self.node_ip(id);
        for direction in ["-s", "-d"] {
            self.in_hub(&[
                "iptables", "-w", "-I", "FORWARD", direction, &ip, "-j", "DROP",
            ])
            .expect("add a partition rule");
        }
    }

    /// Drops `percent` of the packets between the nodes, at random, in both
    /// directions: an iptables `statistic` rule in the hub's FORWARD chain, which
    /// every packet between two nodes crosses once. (`tc netem` would do the same,
    /// but the kernels this runs on do not all have it; this kernel lacks it.)
    /// [`heal`](Self::heal) removes it.
    pub fn lose(&self, percent: u32) {
        assert!(percent < 100, "a loss of {percent}% leaves no network");
        if percent == 0 {
            return;
        }
        let probability = format!("{:.4}", f64::from(percent) / 100.0);
        self.in_hub(&[
            "iptables",
            "-w",
            "-I",
            "FORWARD",
            "-m",
            "statistic",
            "--mode",
            "random",
            "--probability",
            &probability,
            "-j",
            "DROP",
        ])
        .expect("add a packet-loss rule");
    }

    /// Removes every partition and every packet-loss rule.
    pub fn heal(&self) {
        self.in_hub(&["iptables", "-w", "-F", "FORWARD"])
            .expect("flush the partition rules");
    }

    /// Moves the calling thread into the hub namespace: sockets it opens from now on
    /// reach every node directly. Call it on a thread of the test's own.
    pub fn enter_hub(&self) {
        let path = format!("/var/run/netns/{}", self.hub());
        let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&file),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("setns into the hub namespace");
    }
}

impl Drop for NetLab {
    fn drop(&mut self) {
        // Deleting a namespace removes its end of each veth, and the pair with it.
        for id in 1..=self.nodes {
            let _ = run(&["ip", "netns", "del", &self.node_ns(id)]);
        }
        let _ = run(&["ip", "netns", "del", &self.hub()]);
    }
}
