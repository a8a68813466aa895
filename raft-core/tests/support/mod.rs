//! A small in-test network of real `RaftNode`s: a mailbox of messages in flight, a
//! disk per node that keeps only what was reported durable, crash and restart, and
//! safety checks over every node's state. Tests drive it step by step.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use raft_core::{
    Action, Config, Entry, Event, HardState, LogIndex, Message, NodeId, PersistSeq, ProposalId,
    RaftNode, ReadId, Restored, RoleKind, SharedBytes, Snapshot, Term,
};

/// The durable state of one node, and the writes not yet durable.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    pub hard_state: HardState,
    pub snapshot: Option<Snapshot>,
    pub entries: Vec<Entry>,
    /// Persistence actions issued and not yet durable, in order.
    pub pending: Vec<Action>,
}

impl Disk {
    fn make_durable(&mut self, action: Action) {
        match action {
            Action::PersistHardState { hard_state, .. } => self.hard_state = hard_state,
            Action::AppendToLog { entries, .. } => {
                let first = entries[0].index;
                self.entries.retain(|e| e.index < first);
                self.entries.extend(entries);
            }
            Action::PersistSnapshot {
                snapshot,
                discard_log,
                ..
            } => {
                let last = snapshot.meta.last_index;
                if discard_log {
                    self.entries.clear();
                } else {
                    self.entries.retain(|e| e.index > last);
                }
                self.snapshot = Some(*snapshot);
            }
            other => panic!("not a persistence action: {other:?}"),
        }
    }

    /// Makes every pending write durable; returns the highest sequence number.
    pub fn flush(&mut self) -> Option<PersistSeq> {
        let mut through = None;
        for action in std::mem::take(&mut self.pending) {
            through = Some(persist_seq(&action));
            self.make_durable(action);
        }
        through
    }

    /// What a restart finds.
    pub fn restored(&self) -> Restored {
        let applied = self
            .snapshot
            .as_ref()
            .map_or(LogIndex(0), |s| s.meta.last_index);
        Restored {
            hard_state: self.hard_state,
            snapshot: self.snapshot.clone(),
            entries: self.entries.clone(),
            applied,
        }
    }
}

fn persist_seq(action: &Action) -> PersistSeq {
    match action {
        Action::PersistHardState { seq, .. }
        | Action::AppendToLog { seq, .. }
        | Action::PersistSnapshot { seq, .. } => *seq,
        _ => unreachable!(),
    }
}

/// One node of the test network.
#[derive(Debug)]
pub struct TestNode {
    pub node: RaftNode,
    pub disk: Disk,
    /// Every entry applied since the application last started from a snapshot (or
    /// from nothing), in order.
    pub applied: Vec<Entry>,
    /// The application's state: the commands applied, in order, including those a
    /// snapshot brought in.
    pub state: Vec<String>,
    /// The last index the application's state reflects.
    pub state_index: LogIndex,
    /// Every action but sends and persistence, in order, for assertions.
    pub outputs: Vec<Action>,
    pub up: bool,
}

/// A network of nodes with a mailbox.
#[derive(Debug)]
pub struct Cluster {
    pub nodes: BTreeMap<NodeId, TestNode>,
    pub in_flight: VecDeque<Message>,
    /// Report `Persisted` right after every step (the simple shell).
    pub auto_persist: bool,
    /// Directed links that drop everything.
    pub cut: BTreeSet<(NodeId, NodeId)>,
    /// Messages delivered so far.
    pub delivered: u64,
    /// Every message sent, when `record_sent` is on.
    pub sent: Vec<Message>,
    pub record_sent: bool,
    /// The leader seen for each term: checks election safety.
    pub leaders: BTreeMap<Term, NodeId>,
    /// Every entry applied anywhere, by index, with the lowest term of a node that
    /// applied it (a term in which it was known committed): checks state machine
    /// safety and leader completeness.
    pub committed: BTreeMap<LogIndex, (Entry, Term)>,
    configs: BTreeMap<NodeId, Config>,
}

/// The configuration the tests use unless they change it.
pub fn config(id: u64, voters: &[u64]) -> Config {
    let mut config = Config::new(NodeId(id), voters.iter().map(|&v| NodeId(v)));
    config.seed = 42;
    config
}

pub fn id(n: u64) -> NodeId {
    NodeId(n)
}

impl Cluster {
    /// A cluster of nodes 1..=n, all voters, with default test configs.
    pub fn new(n: u64) -> Cluster {
        let voters: Vec<u64> = (1..=n).collect();
        Cluster::with_configs(voters.iter().map(|&i| config(i, &voters)).collect())
    }

    /// A cluster from explicit configs.
    pub fn with_configs(configs: Vec<Config>) -> Cluster {
        let mut nodes = BTreeMap::new();
        let mut by_id = BTreeMap::new();
        for config in configs {
            let node = RaftNode::new(config.clone(), Restored::default()).expect("valid config");
            by_id.insert(config.id, config.clone());
            nodes.insert(
                config.id,
                TestNode {
                    node,
                    disk: Disk::default(),
                    applied: Vec::new(),
                    state: Vec::new(),
                    state_index: LogIndex(0),
                    outputs: Vec::new(),
                    up: true,
                },
            );
        }
        Cluster {
            nodes,
            in_flight: VecDeque::new(),
            auto_persist: true,
            cut: BTreeSet::new(),
            delivered: 0,
            sent: Vec::new(),
            record_sent: false,
            leaders: BTreeMap::new(),
            committed: BTreeMap::new(),
            configs: by_id,
        }
    }

    /// A cluster of nodes 1..=n restored with logs of the given terms (one command
    /// entry per term listed) and a hard state term.
    pub fn with_logs(logs: &[(&[u64], u64)]) -> Cluster {
        let n = logs.len() as u64;
        let voters: Vec<u64> = (1..=n).collect();
        let mut cluster = Cluster::new(n);
        for (i, (terms, term)) in logs.iter().enumerate() {
            let id = i as u64 + 1;
            let disk = Disk {
                hard_state: HardState {
                    term: Term(*term),
                    voted_for: None,
                },
                entries: log_of(terms),
                ..Disk::default()
            };
            let restored = disk.restored();
            let test_node = cluster.test_node(id);
            test_node.disk = disk;
            test_node.node = RaftNode::new(config(id, &voters), restored).expect("valid log");
        }
        cluster
    }

    /// Takes the messages in flight that match `keep_out`, leaving the rest.
    pub fn take_messages(&mut self, mut keep_out: impl FnMut(&Message) -> bool) -> Vec<Message> {
        let (taken, left): (Vec<Message>, Vec<Message>) =
            self.in_flight.drain(..).partition(|m| keep_out(m));
        self.in_flight = left.into();
        taken
    }

    /// The terms of node `n`'s log, from its first held entry.
    pub fn terms(&self, n: u64) -> Vec<u64> {
        self.node(n).entries().iter().map(|e| e.term.0).collect()
    }

    pub fn node(&self, n: u64) -> &RaftNode {
        &self.nodes[&NodeId(n)].node
    }

    pub fn test_node(&mut self, n: u64) -> &mut TestNode {
        self.nodes.get_mut(&NodeId(n)).expect("node exists")
    }

    /// Steps node `n` with `event` and carries out the actions.
    pub fn step(&mut self, n: u64, event: Event) {
        let id = NodeId(n);
        if !self.nodes[&id].up {
            return;
        }
        let trace = std::env::var_os("RAFT_TRACE").is_some();
        if trace {
            println!("n{n} <- {event:?}");
        }
        let actions = self.test_node(n).node.step(event);
        if trace {
            for action in &actions {
                println!("   n{n} -> {action:?}");
            }
        }
        self.handle(id, actions);
        self.check_safety(id);
        if self.auto_persist {
            self.persist(n);
        }
    }

    /// Makes node `n`'s pending writes durable and reports it, again for the writes
    /// that report asks for (a candidate whose vote became durable may lead and
    /// append), until none are left.
    pub fn persist(&mut self, n: u64) {
        const ROUNDS_MAX: usize = 16;
        for _ in 0..ROUNDS_MAX {
            if !self.persist_once(n) {
                return;
            }
        }
        panic!("node {n} kept issuing writes for {ROUNDS_MAX} rounds of Persisted");
    }

    /// One round of `persist`: false if nothing was pending.
    fn persist_once(&mut self, n: u64) -> bool {
        let through = self.test_node(n).disk.flush();
        if let Some(through) = through {
            if std::env::var_os("RAFT_TRACE").is_some() {
                println!("n{n} <- Persisted {through:?}");
            }
            let actions = self.test_node(n).node.step(Event::Persisted { through });
            if std::env::var_os("RAFT_TRACE").is_some() {
                for action in &actions {
                    println!("   n{n} -> {action:?}");
                }
            }
            self.handle(NodeId(n), actions);
            self.check_safety(NodeId(n));
        }
        through.is_some()
    }

    fn handle(&mut self, id: NodeId, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send(message) => {
                    assert_eq!(message.from, id);
                    if self.record_sent {
                        self.sent.push(message.clone());
                    }
                    if !self.cut.contains(&(message.from, message.to)) {
                        self.in_flight.push_back(message);
                    }
                }
                Action::PersistHardState { .. }
                | Action::AppendToLog { .. }
                | Action::PersistSnapshot { .. } => {
                    self.nodes.get_mut(&id).unwrap().disk.pending.push(action);
                }
                Action::Apply(entries) => {
                    let test_node = self.nodes.get_mut(&id).unwrap();
                    test_node.outputs.push(Action::Apply(entries.clone()));
                    let term = test_node.node.term();
                    for entry in entries {
                        assert_eq!(
                            entry.index,
                            test_node.state_index.next(),
                            "applied in order, once"
                        );
                        test_node.state_index = entry.index;
                        if let raft_core::EntryPayload::Command(c) = &entry.payload {
                            test_node
                                .state
                                .push(String::from_utf8_lossy(c).into_owned());
                        }
                        let seen = self
                            .committed
                            .entry(entry.index)
                            .or_insert((entry.clone(), term));
                        assert_eq!(seen.0, entry, "state machine safety at {:?}", entry.index);
                        seen.1 = seen.1.min(term);
                        test_node.applied.push(entry);
                    }
                }
                Action::RestoreSnapshot(snapshot) => {
                    let test_node = self.nodes.get_mut(&id).unwrap();
                    test_node.state = decode_state(&snapshot.data);
                    test_node.state_index = snapshot.meta.last_index;
                    test_node.applied.clear();
                    test_node.outputs.push(Action::RestoreSnapshot(snapshot));
                }
                Action::RoleChanged {
                    role: RoleKind::Leader,
                    term,
                } => {
                    if let Some(previous) = self.leaders.insert(term, id) {
                        assert_eq!(previous, id, "two leaders in {term:?}");
                    }
                    self.check_leader_completeness(id, term);
                    self.nodes.get_mut(&id).unwrap().outputs.push(action);
                }
                other => self.nodes.get_mut(&id).unwrap().outputs.push(other),
            }
        }
    }

    /// Checks that a new leader of `term` holds every entry committed in an earlier
    /// term (Raft's Leader Completeness property).
    fn check_leader_completeness(&self, id: NodeId, term: Term) {
        let node = &self.nodes[&id].node;
        for (index, (entry, committed_in)) in self.committed.range(node.first_index()..) {
            if *committed_in < term {
                let held = node.entry(*index);
                assert_eq!(
                    held,
                    Some(entry),
                    "leader completeness: {id} in {term:?} at {index:?}"
                );
            }
        }
    }

    /// Checks that logs agree wherever they share an (index, term) (log matching).
    fn check_safety(&self, id: NodeId) {
        let node = &self.nodes[&id].node;
        for other in self.nodes.values().filter(|n| n.node.id() != id) {
            check_log_matching(node, &other.node);
        }
    }

    /// Delivers messages until none are in flight (bounded).
    pub fn deliver_all(&mut self) {
        const DELIVERIES_MAX: usize = 100_000;
        for _ in 0..DELIVERIES_MAX {
            if !self.deliver_one() {
                return;
            }
        }
        panic!("messages still in flight after {DELIVERIES_MAX} deliveries");
    }

    /// Delivers the oldest message in flight; false if none.
    pub fn deliver_one(&mut self) -> bool {
        let Some(message) = self.in_flight.pop_front() else {
            return false;
        };
        self.deliver(message);
        true
    }

    /// Delivers `message` now (dropped if the link is cut or the node is down).
    pub fn deliver(&mut self, message: Message) {
        let to = message.to;
        if self.cut.contains(&(message.from, to)) || !self.nodes.get(&to).is_some_and(|n| n.up) {
            return;
        }
        self.delivered += 1;
        self.step(to.0, Event::Message(message));
    }

    /// Ticks node `n` once.
    pub fn tick(&mut self, n: u64) {
        self.step(n, Event::Tick);
    }

    /// Ticks every node once and delivers everything.
    pub fn tick_all(&mut self) {
        let ids: Vec<u64> = self.nodes.keys().map(|id| id.0).collect();
        for n in ids {
            self.tick(n);
        }
        self.deliver_all();
    }

    /// Makes node `n` campaign now (ticking it to its timeout) and delivers.
    pub fn campaign(&mut self, n: u64) {
        let timeout_max = self.node(n).config().election_timeout_ticks_max;
        for _ in 0..timeout_max {
            let role = self.node(n).role();
            if role != RoleKind::Follower {
                break;
            }
            self.tick(n);
        }
        self.deliver_all();
    }

    /// Elects node `n` (all others quiet) and commits its no-op.
    pub fn elect(&mut self, n: u64) {
        self.campaign(n);
        assert_eq!(
            self.node(n).role(),
            RoleKind::Leader,
            "node {n} should lead"
        );
        self.deliver_all();
    }

    /// Ticks `n` until it campaigns and delivers only election messages (dropping
    /// everything else) until it leads: a leader whose first entries went nowhere.
    pub fn elect_without_replication(&mut self, n: u64) {
        let timeout_max = self.node(n).config().election_timeout_ticks_max;
        for _ in 0..timeout_max {
            if self.node(n).role() != RoleKind::Follower {
                break;
            }
            self.tick(n);
        }
        for _ in 0..1000 {
            let Some(message) = self.in_flight.pop_front() else {
                break;
            };
            if matches!(
                message.body,
                raft_core::MessageBody::VoteRequest { .. }
                    | raft_core::MessageBody::VoteResponse { .. }
            ) {
                self.deliver(message);
            }
        }
        assert_eq!(
            self.node(n).role(),
            RoleKind::Leader,
            "node {n} should lead"
        );
    }

    /// Ticks `group` (the others stay quiet) until one of them leads a newer term
    /// than any before; returns it.
    pub fn elect_among(&mut self, group: &[u64]) -> u64 {
        let term = self
            .nodes
            .values()
            .map(|n| n.node.term())
            .max()
            .unwrap_or_default();
        for _ in 0..200 {
            for &n in group {
                self.tick(n);
            }
            self.deliver_all();
            let leader = group
                .iter()
                .copied()
                .find(|&n| self.node(n).role() == RoleKind::Leader && self.node(n).term() > term);
            if let Some(leader) = leader {
                return leader;
            }
        }
        panic!("no leader among {group:?}");
    }

    /// The current leader, if exactly one up node leads in the highest term.
    pub fn leader(&self) -> Option<u64> {
        let leaders: Vec<&TestNode> = self
            .nodes
            .values()
            .filter(|n| n.up && n.node.role() == RoleKind::Leader)
            .collect();
        leaders
            .iter()
            .max_by_key(|n| n.node.term())
            .map(|n| n.node.id().0)
    }

    /// Proposes `command` at node `n` and delivers.
    pub fn propose(&mut self, n: u64, proposal: u64, command: &str) {
        let event = Event::propose(ProposalId(proposal), SharedBytes::from(command));
        self.step(n, event);
        self.deliver_all();
    }

    /// Starts a read at node `n`.
    pub fn read(&mut self, n: u64, read: u64) {
        self.step(n, Event::Read { id: ReadId(read) });
    }

    /// Cuts node `n` off from everyone, both ways.
    pub fn isolate(&mut self, n: u64) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for other in ids.into_iter().filter(|&o| o != NodeId(n)) {
            self.cut.insert((NodeId(n), other));
            self.cut.insert((other, NodeId(n)));
        }
    }

    /// Splits the cluster into `group` and everyone else.
    pub fn partition(&mut self, group: &[u64]) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for &a in &ids {
            for &b in &ids {
                if group.contains(&a.0) != group.contains(&b.0) {
                    self.cut.insert((a, b));
                }
            }
        }
    }

    /// Repairs every link.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Crashes node `n`: everything not durable is lost, messages to it are dropped.
    pub fn crash(&mut self, n: u64) {
        if std::env::var_os("RAFT_TRACE").is_some() {
            println!("n{n} CRASH");
        }
        let test_node = self.test_node(n);
        test_node.up = false;
        test_node.disk.pending.clear();
        self.in_flight
            .retain(|m| m.to != NodeId(n) && m.from != NodeId(n));
    }

    /// Restarts node `n` from its disk.
    pub fn restart(&mut self, n: u64) {
        if std::env::var_os("RAFT_TRACE").is_some() {
            println!("n{n} RESTART");
        }
        let config = self.configs[&NodeId(n)].clone();
        let test_node = self.nodes.get_mut(&NodeId(n)).unwrap();
        test_node.node = RaftNode::new(config, test_node.disk.restored()).expect("restores");
        // The application starts over from the snapshot (if any) and replays the rest.
        test_node.applied.clear();
        let snapshot = test_node.disk.snapshot.as_ref();
        test_node.state = snapshot.map_or_else(Vec::new, |s| decode_state(&s.data));
        test_node.state_index = snapshot.map_or(LogIndex(0), |s| s.meta.last_index);
        test_node.up = true;
    }

    /// The commands node `n`'s application holds, in order.
    pub fn applied_commands(&self, n: u64) -> Vec<String> {
        self.nodes[&NodeId(n)].state.clone()
    }

    /// Node `n`'s application captures its state and the log is compacted under it.
    pub fn compact(&mut self, n: u64) {
        let test_node = &self.nodes[&NodeId(n)];
        let up_to = test_node.state_index;
        let data = SharedBytes::from(test_node.state.join(",").as_str());
        self.step(n, Event::Compact { up_to, data });
    }

    /// Adds a node `n` that knows no membership and waits to be added.
    pub fn add_node(&mut self, n: u64) {
        let mut config = config(n, &[]);
        config.initial_voters.clear();
        let node = RaftNode::new(config.clone(), Restored::default()).expect("valid config");
        self.configs.insert(NodeId(n), config);
        self.nodes.insert(
            NodeId(n),
            TestNode {
                node,
                disk: Disk::default(),
                applied: Vec::new(),
                state: Vec::new(),
                state_index: LogIndex(0),
                outputs: Vec::new(),
                up: true,
            },
        );
    }

    /// Node `n`'s recorded outputs.
    pub fn outputs(&self, n: u64) -> &[Action] {
        &self.nodes[&NodeId(n)].outputs
    }

    /// Forgets node `n`'s recorded outputs.
    pub fn clear_outputs(&mut self, n: u64) {
        self.test_node(n).outputs.clear();
    }
}

/// The test application's snapshot format: its commands joined by commas.
fn decode_state(data: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    if text.is_empty() {
        return Vec::new();
    }
    text.split(',').map(str::to_string).collect()
}

/// A log with one command entry per listed term.
pub fn log_of(terms: &[u64]) -> Vec<Entry> {
    terms
        .iter()
        .enumerate()
        .map(|(i, &t)| Entry {
            term: Term(t),
            index: LogIndex(i as u64 + 1),
            payload: raft_core::EntryPayload::Command(SharedBytes::from(
                format!("e{}", i + 1).as_str(),
            )),
        })
        .collect()
}

/// Two logs that hold an entry with the same index and term agree on every entry up
/// to it (Raft's Log Matching property).
pub fn check_log_matching(a: &RaftNode, b: &RaftNode) {
    let first = a.first_index().max(b.first_index());
    let last = a.last_index().min(b.last_index());
    let mut index = last;
    // Find the highest shared (index, term), then compare everything below it.
    while index >= first && index > LogIndex(0) {
        if a.term_at(index) == b.term_at(index) {
            break;
        }
        index = index.prev();
    }
    let mut i = first;
    while i <= index && i > LogIndex(0) {
        assert_eq!(
            a.entry(i),
            b.entry(i),
            "log matching between {} and {} at {i:?}",
            a.id(),
            b.id()
        );
        i = i.next();
    }
}
