//! CPU time from /proc (Linux; elsewhere nothing is measured): per thread, grouped by
//! what the thread does, for whole processes.

use std::collections::BTreeMap;
use std::time::Duration;

/// Clock ticks per second of /proc's times: 100 on Linux.
const TICKS_PER_SECOND: u64 = 100;

/// What a thread does, from its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    LeaderLoop,
    FollowerLoops,
    FsyncThreads,
    Client,
    Apps,
    Other,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::LeaderLoop => "leader loop",
            Role::FollowerLoops => "follower loops",
            Role::FsyncThreads => "fsync threads",
            Role::Client => "client",
            Role::Apps => "applications",
            Role::Other => "other",
        }
    }

    fn of(comm: &str, leader_loop: &str) -> Role {
        if comm == leader_loop {
            Role::LeaderLoop
        } else if comm.starts_with("raft-node-") {
            Role::FollowerLoops
        } else if comm.starts_with("raft-fsync") {
            Role::FsyncThreads
        } else if comm == "bench-client" {
            Role::Client
        } else if comm.starts_with("bench-app") {
            Role::Apps
        } else {
            Role::Other
        }
    }
}

/// CPU time (user + system) used so far, by role.
#[derive(Clone, Debug, Default)]
pub struct CpuByRole(pub BTreeMap<Role, Duration>);

impl CpuByRole {
    /// The threads of the processes `pids` (`None`: this process), where the leader's
    /// loop thread is named `raft-node-<leader>`.
    pub fn read(pids: &[Option<u32>], leader: u64) -> CpuByRole {
        let leader_loop = format!("raft-node-{leader}");
        let mut by_role = BTreeMap::new();
        for pid in pids {
            let task_dir = match pid {
                Some(pid) => format!("/proc/{pid}/task"),
                None => "/proc/self/task".to_string(),
            };
            let Ok(tasks) = std::fs::read_dir(&task_dir) else {
                continue;
            };
            for task in tasks.flatten() {
                let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                    continue;
                };
                if let Some((comm, ticks)) = parse_stat(&stat) {
                    let role = Role::of(comm, &leader_loop);
                    let time = Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND);
                    *by_role.entry(role).or_default() += time;
                }
            }
        }
        CpuByRole(by_role)
    }

    /// The time used since `before`, by role. Threads that ended in between are lost,
    /// which is why the bench measures between two points where every thread runs.
    pub fn since(&self, before: &CpuByRole) -> CpuByRole {
        let spent = self
            .0
            .iter()
            .map(|(role, time)| {
                let earlier = before.0.get(role).copied().unwrap_or_default();
                (*role, time.saturating_sub(earlier))
            })
            .collect();
        CpuByRole(spent)
    }

    pub fn total(&self) -> Duration {
        self.0.values().sum()
    }
}

/// A thread's name and its user + system clock ticks, from `/proc/.../stat`.
fn parse_stat(stat: &str) -> Option<(&str, u64)> {
    // The name is in parentheses and may hold spaces; the fields follow it.
    let (head, tail) = stat.rsplit_once(')')?;
    let comm = head.split_once('(')?.1;
    let fields: Vec<&str> = tail.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

/// The 1-minute load average, as `uptime` shows it.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "-".to_string())
}
