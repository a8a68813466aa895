//! The bench's measurements: per-operation-kind counts and latency histograms
//! (HdrHistogram, microsecond resolution, three significant digits), and the report.

use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;

/// The longest latency recorded exactly, in microseconds; longer ones are clamped
/// (a request times out long before).
const LATENCY_US_MAX: u64 = 60_000_000;

/// Counts and latencies of one kind of operation.
#[derive(Clone, Debug)]
pub struct OpStats {
    /// Operations that succeeded.
    pub ok: u64,
    /// Operations that failed (an error answer or a broken connection).
    pub errors: u64,
    latency_us: Histogram<u64>,
}

impl Default for OpStats {
    fn default() -> Self {
        OpStats::new()
    }
}

impl OpStats {
    /// Empty statistics.
    pub fn new() -> OpStats {
        OpStats {
            ok: 0,
            errors: 0,
            latency_us: Histogram::new_with_bounds(1, LATENCY_US_MAX, 3)
                .expect("valid histogram bounds"),
        }
    }

    /// Records a success that took `latency`.
    pub fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_us
            .saturating_record(us.clamp(1, LATENCY_US_MAX));
        self.ok += 1;
    }

    /// Records a failure.
    pub fn record_error(&mut self) {
        self.errors += 1;
    }

    /// Adds another client's statistics.
    pub fn merge(&mut self, other: &OpStats) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.latency_us
            .add(&other.latency_us)
            .expect("histograms of the same bounds add");
    }

    /// The latency at quantile `q` (0.5 for the median), or `None` without samples.
    pub fn latency_at(&self, q: f64) -> Option<Duration> {
        (self.ok > 0).then(|| Duration::from_micros(self.latency_us.value_at_quantile(q)))
    }

    /// The longest latency, or `None` without samples.
    pub fn latency_max(&self) -> Option<Duration> {
        (self.ok > 0).then(|| Duration::from_micros(self.latency_us.max()))
    }
}

/// The outcome of a run.
#[derive(Clone, Debug)]
pub struct Report {
    /// Reads.
    pub reads: OpStats,
    /// Writes.
    pub writes: OpStats,
    /// Writes answered `Leader is ...` and resent to the leader (not counted above).
    pub redirects: u64,
    /// How long the clients ran.
    pub elapsed: Duration,
}

fn ms(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".into(), |d| format!("{:.2}", d.as_secs_f64() * 1e3))
}

impl Report {
    /// Operations per second of `stats` over the run.
    pub fn rate(&self, stats: &OpStats) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            stats.ok as f64 / secs
        } else {
            0.0
        }
    }

    fn line(&self, name: &str, stats: &OpStats) -> String {
        format!(
            "{name:<7}{:>10} ok {:>6} errors {:>10.0} ops/s   latency ms  p50 {:>7}  p99 {:>7}  p999 {:>7}  max {:>7}",
            stats.ok,
            stats.errors,
            self.rate(stats),
            ms(stats.latency_at(0.5)),
            ms(stats.latency_at(0.99)),
            ms(stats.latency_at(0.999)),
            ms(stats.latency_max()),
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.line("writes", &self.writes))?;
        writeln!(f, "{}", self.line("reads", &self.reads))?;
        let mut all = self.writes.clone();
        all.merge(&self.reads);
        write!(f, "{}", self.line("total", &all))?;
        if self.redirects > 0 {
            write!(
                f,
                "\n({} writes were redirected to the leader)",
                self.redirects
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_samples() {
        let mut stats = OpStats::new();
        for ms in 1..=1000 {
            stats.record(Duration::from_millis(ms));
        }
        let p50 = stats.latency_at(0.5).unwrap().as_millis();
        let p99 = stats.latency_at(0.99).unwrap().as_millis();
        assert!((499..=501).contains(&p50), "p50 {p50}");
        assert!((989..=991).contains(&p99), "p99 {p99}");
        assert_eq!(stats.latency_max().unwrap().as_millis(), 1000);
        assert_eq!(OpStats::new().latency_at(0.5), None);
    }

    #[test]
    fn merged_statistics_add_up_and_the_report_shows_rates() {
        let mut a = OpStats::new();
        let mut b = OpStats::new();
        a.record(Duration::from_millis(2));
        b.record(Duration::from_millis(4));
        b.record_error();
        a.merge(&b);
        assert_eq!((a.ok, a.errors), (2, 1));
        let report = Report {
            reads: OpStats::new(),
            writes: a,
            redirects: 3,
            elapsed: Duration::from_secs(2),
        };
        assert_eq!(report.rate(&report.writes), 1.0);
        let text = report.to_string();
        assert!(
            text.starts_with("writes          2 ok      1 errors"),
            "{text}"
        );
        assert!(text.contains("reads           0 ok"), "{text}");
        assert!(
            text.contains("p50       -"),
            "no samples print as -: {text}"
        );
        assert!(text.contains("3 writes were redirected"), "{text}");
    }
}
