//! A node running as a child process: started, stopped cleanly, killed, restarted.
//!
//! A clean stop closes the child's stdin: nodes started with `--exit-on-stdin-eof`
//! take that as the order to shut down (finish the fsync, close the sockets). It
//! needs no signal-sending code, and a node whose parent dies (even by SIGKILL)
//! sees its stdin close too and stops instead of living on as an orphan. A kill is
//! SIGKILL, the crash that Raft must survive. Children run in their own process
//! group, so a terminal's Ctrl-C reaches only the parent, which stops them in order.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How often a stop polls for the child's exit.
const EXIT_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// One node process (running or not).
#[derive(Debug)]
pub struct NodeProcess {
    id: u64,
    program: PathBuf,
    args: Vec<String>,
    /// A command the node runs under (`ip netns exec NS`), if any.
    wrapper: Vec<String>,
    /// Where its stdout and stderr go (appended); inherited when `None`.
    log: Option<PathBuf>,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
}

/// How a stop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// It was not running.
    NotRunning,
    /// It exited by itself within the grace period.
    Exited(ExitStatus),
    /// It did not, and was killed.
    Killed,
}

impl NodeProcess {
    /// Node `id`, run as `program args...`.
    pub fn new(id: u64, program: impl Into<PathBuf>, args: Vec<String>) -> NodeProcess {
        NodeProcess {
            id,
            program: program.into(),
            args,
            wrapper: Vec::new(),
            log: None,
            child: None,
            stdin: None,
        }
    }

    /// Runs the node under `wrapper` (for example `ip netns exec NS`).
    pub fn wrapped(mut self, wrapper: Vec<String>) -> NodeProcess {
        self.wrapper = wrapper;
        self
    }

    /// Appends the node's output to `path` instead of inheriting ours.
    pub fn log_to(mut self, path: impl Into<PathBuf>) -> NodeProcess {
        self.log = Some(path.into());
        self
    }

    /// The node's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The `kv-example node` arguments it runs with.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// The log file, if the output goes to one.
    pub fn log_path(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts the node; an error if it is already running.
    pub fn start(&mut self) -> io::Result<()> {
        if self.is_running() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("node {} is already running", self.id),
            ));
        }
        let mut command = match self.wrapper.split_first() {
            Some((first, rest)) => {
                let mut command = Command::new(first);
                command.args(rest).arg(&self.program);
                command
            }
            None => Command::new(&self.program),
        };
        command
            .args(&self.args)
            .stdin(Stdio::piped())
            .process_group(0);
        if let Some(path) = &self.log {
            let file = open_log(path)?;
            command.stdout(file.try_clone()?).stderr(file);
        }
        let mut child = command.spawn()?;
        self.stdin = child.stdin.take();
        self.child = Some(child);
        Ok(())
    }

    /// Whether it runs (reaps it if it has exited).
    pub fn is_running(&mut self) -> bool {
        self.child.is_some() && self.try_exit().is_none()
    }

    /// If it has exited since the last look: how. Reports each exit once.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                self.stdin = None;
                Some(status)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(node = self.id, "cannot poll the node process: {e}");
                None
            }
        }
    }

    /// Stops it cleanly: closes its stdin and waits up to `grace`, then kills it.
    pub fn stop(&mut self, grace: Duration) -> io::Result<Stopped> {
        if self.child.is_none() {
            return Ok(Stopped::NotRunning);
        }
        self.stdin = None;
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.try_exit() {
                return Ok(Stopped::Exited(status));
            }
            std::thread::sleep(EXIT_POLL_INTERVAL);
        }
        self.kill()?;
        Ok(Stopped::Killed)
    }

    /// Closes its stdin (asks it to stop) without waiting; see [`stop`](Self::stop).
    pub fn request_stop(&mut self) {
        self.stdin = None;
    }

    /// Kills it with SIGKILL and reaps it. Nothing happens if it is not running.
    pub fn kill(&mut self) -> io::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        self.stdin = None;
        // The child may have exited just now; reaping it is all that is left then.
        let _ = child.kill();
        child.wait().map(drop)
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

fn open_log(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_that_waits_for_stdin_stops_cleanly_when_it_closes() {
        let mut cat = NodeProcess::new(1, "cat", Vec::new());
        cat.start().unwrap();
        assert!(cat.is_running());
        assert!(cat.start().is_err(), "one process per node");
        let stopped = cat.stop(Duration::from_secs(10)).unwrap();
        assert!(
            matches!(stopped, Stopped::Exited(s) if s.success()),
            "{stopped:?}"
        );
        assert!(!cat.is_running());
        assert_eq!(
            cat.stop(Duration::from_secs(1)).unwrap(),
            Stopped::NotRunning
        );
    }

    #[test]
    fn a_process_that_ignores_stdin_is_killed_after_the_grace_period() {
        let mut sleeper = NodeProcess::new(2, "sleep", vec!["30".into()]);
        sleeper.start().unwrap();
        let pid = sleeper.pid().unwrap();
        assert!(pid > 0);
        assert_eq!(
            sleeper.stop(Duration::from_millis(50)).unwrap(),
            Stopped::Killed
        );
        sleeper.start().unwrap();
        sleeper.kill().unwrap();
        assert!(!sleeper.is_running());
    }
}
