//! The readable event trace: printed as it happens with `--trace`, or kept in a ring
//! of the last lines so that a failure can show what led up to it.

use std::collections::VecDeque;
use std::io::Write as _;

/// Where trace lines go.
#[derive(Debug, Default)]
pub enum Trace {
    /// Nowhere (formatting is skipped entirely: the fast path of sweeps).
    #[default]
    Off,
    /// Standard output, as they happen.
    Stdout,
    /// The last `capacity` lines, for a failure report.
    Ring {
        /// The lines kept, oldest first.
        lines: VecDeque<String>,
        /// How many are kept.
        capacity: usize,
    },
}

impl Trace {
    /// A ring that keeps the last `capacity` lines.
    pub fn ring(capacity: usize) -> Trace {
        Trace::Ring {
            lines: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    /// Whether lines are wanted (so callers can skip formatting them).
    pub fn is_on(&self) -> bool {
        !matches!(self, Trace::Off)
    }

    /// Records one line.
    pub fn line(&mut self, line: String) {
        match self {
            Trace::Off => {}
            Trace::Stdout => {
                // A closed pipe (`| head`) must not abort the run.
                let _ = writeln!(std::io::stdout().lock(), "{line}");
            }
            Trace::Ring { lines, capacity } => {
                if lines.len() == *capacity {
                    lines.pop_front();
                }
                lines.push_back(line);
            }
        }
    }

    /// The lines kept by a ring (empty otherwise).
    pub fn kept(&self) -> Vec<String> {
        match self {
            Trace::Ring { lines, .. } => lines.iter().cloned().collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_keeps_the_last_lines() {
        let mut t = Trace::ring(2);
        for i in 0..5 {
            t.line(format!("{i}"));
        }
        assert_eq!(t.kept(), ["3", "4"]);
    }

    #[test]
    fn off_keeps_nothing() {
        let mut t = Trace::Off;
        t.line("x".into());
        assert!(!t.is_on());
        assert!(t.kept().is_empty());
    }
}
