//! Who leads the local cluster: asking nodes for their status, finding the leader,
//! asking it for things over the text protocol, and making the first node, the one the banner tells you to `nc`,
//! the leader, so that a write there is not answered `Leader is ...`. On a new
//! cluster the first node campaigns as soon as it reaches its peers
//! (`--campaign-at-bootstrap`, set by [`Layout::node_args`]), so it leads term 1 and
//! the first write lands at index 2. A restarted cluster elects whoever times out
//! first (the randomized timeouts are what keeps it live); the launcher then asks that
//! leader to hand over, a bounded number of times, and carries on whatever the answer.

use std::time::{Duration, Instant};

use crate::client::{Answer, TextClient};
use crate::layout::Layout;
use crate::leadership::LEADERSHIP_TRANSFER_TIMEOUT;

/// How long a status query may take per node.
pub(super) const STATUS_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the start-up waits for a leader before showing the console anyway.
const LEADER_WAIT_MAX: Duration = Duration::from_secs(10);
/// How many times the start-up asks for leadership to move to the first node.
const HAND_OVER_ATTEMPTS_MAX: u32 = 3;
/// How long a transfer request may take: the node's own bound, plus slack.
const TRANSFER_REQUEST_TIMEOUT: Duration =
    Duration::from_secs(LEADERSHIP_TRANSFER_TIMEOUT.as_secs() + 2);
/// How many `Leader is` answers a request to the leader follows.
const LEADER_REDIRECTS_MAX: usize = 3;

/// Whether the user interrupted (Ctrl-C) within the given wait; the caller owns the
/// signal, so this module does not depend on how the supervisor receives it.
pub(super) type Interrupted<'a> = &'a dyn Fn(Duration) -> bool;

/// At start-up: waits (bounded) for a leader; if it is not the first node and that
/// one serves, asks for leadership to move there; then says who leads.
pub(super) fn settle_leader(layout: &Layout, interrupted: Interrupted<'_>) {
    let Some(leader) = wait_for_leader(layout, interrupted) else {
        return;
    };
    let first = &layout.nodes[0];
    if leader != first.id && query_status(&first.client_addr).is_ok() {
        println!(
            "node {leader} won the election; asking it to hand leadership to node {} \
             (the node to talk to)",
            first.id
        );
        if let Err(reason) = hand_over(layout, first.id, interrupted) {
            println!(
                "node {} did not take over ({reason}); node {leader} leads, so write to it, \
                 or try `transfer {}`",
                first.id, first.id
            );
        }
    }
    match find_leader(layout) {
        Some((id, line)) => println!("node {id} leads: {line}"),
        None => println!("no leader right now; `status` shows what each node knows"),
    }
}

/// Waits (bounded, and not past Ctrl-C) until some node says it leads.
fn wait_for_leader(layout: &Layout, interrupted: Interrupted<'_>) -> Option<u64> {
    let deadline = Instant::now() + LEADER_WAIT_MAX;
    while Instant::now() < deadline {
        if let Some((id, _)) = find_leader(layout) {
            return Some(id);
        }
        if interrupted(Duration::from_millis(100)) {
            println!("(interrupted while waiting for a leader; type quit to stop)");
            return None;
        }
    }
    println!("no leader yet; `status` shows what each node knows");
    None
}

/// Asks the leader, a few times, to hand leadership to node `id`.
fn hand_over(layout: &Layout, id: u64, interrupted: Interrupted<'_>) -> Result<(), String> {
    let mut reason = String::new();
    for _ in 0..HAND_OVER_ATTEMPTS_MAX {
        match transfer_request(layout, id) {
            Ok(_) => return Ok(()),
            Err(why) => reason = why,
        }
        if interrupted(Duration::from_millis(200)) {
            return Err("interrupted".into());
        }
    }
    Err(reason)
}

/// The console's `transfer N`.
pub(super) fn transfer(layout: &Layout, id: u64) {
    match transfer_request(layout, id) {
        Ok(text) => println!("{text}"),
        Err(reason) => println!("leadership did not move to node {id}: {reason}"),
    }
}

fn transfer_request(layout: &Layout, id: u64) -> Result<String, String> {
    ask_leader(layout, &format!("transfer {id}"), TRANSFER_REQUEST_TIMEOUT)
}

/// Sends `line` to the leader (following `Leader is` a few times), waiting at most
/// `timeout` for the answer; the answer's text, or why it failed.
pub(super) fn ask_leader(layout: &Layout, line: &str, timeout: Duration) -> Result<String, String> {
    let (leader, _) = find_leader(layout).ok_or("no node says it leads right now")?;
    let mut addr = layout
        .node(leader)
        .expect("a node of the layout")
        .client_addr
        .clone();
    for _ in 0..LEADER_REDIRECTS_MAX {
        let answer = TextClient::connect(&addr, STATUS_TIMEOUT)
            .and_then(|mut c| {
                c.set_timeout(timeout)?;
                c.request(line)
            })
            .map_err(|e| format!("no answer from {addr}: {e}"))?;
        if let Some(leader) = answer.leader_redirect() {
            addr = leader.to_string();
            continue;
        }
        return match answer {
            Answer::Ok(text) => Ok(text),
            Answer::Error(reason) => Err(reason),
        };
    }
    Err("the leader kept moving; try again".into())
}

/// Asks node `addr`'s text front end for its status line.
pub(super) fn query_status(addr: &str) -> Result<String, String> {
    let mut client = TextClient::connect(addr, STATUS_TIMEOUT).map_err(|e| e.to_string())?;
    match client.request("status").map_err(|e| e.to_string())? {
        Answer::Ok(line) => Ok(line),
        Answer::Error(reason) => Err(reason),
    }
}

/// The node that says it leads, with its status line.
pub(super) fn find_leader(layout: &Layout) -> Option<(u64, String)> {
    layout.nodes.iter().find_map(|spec| {
        let line = query_status(&spec.client_addr).ok()?;
        line.split_whitespace()
            .any(|w| w == "role=leader")
            .then_some((spec.id, line))
    })
}
