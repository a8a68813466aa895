//! `GET /metrics`: a node's state and raft-mio's counters in the Prometheus text
//! format (version 0.0.4), encoded by the `prometheus-client` crate.
//!
//! | Metric | Type | What |
//! | --- | --- | --- |
//! | `raft_term` | gauge | the current term |
//! | `raft_role{role}` | gauge | 1 for the node's role (`follower`, `pre-candidate`, `candidate`, `leader`), 0 for the others |
//! | `raft_commit_index`, `raft_applied_index`, `raft_last_index`, `raft_snapshot_index` | gauge | the log's indexes (applied: by the key-value store) |
//! | `raft_proposals_committed_total` | counter | proposals committed (on the node that proposed them) |
//! | `raft_proposals_dropped_total{reason}` | counter | proposals dropped, by reason (`not_leader`, `overwritten`, `transferring`, `overloaded`, `membership_change_pending`, `invalid_membership`, `unknown`) |
//! | `raft_reads_total` | counter | linearizable read barriers confirmed |
//! | `raft_reads_failed_total{reason}` | counter | read barriers that failed (`no_leader`, `not_leader`, `timeout`, `overloaded`) |
//! | `raft_elections_started_total`, `raft_elections_won_total`, `raft_step_downs_total` | counter | elections this node started and won, times it stopped leading |
//! | `raft_snapshots_installed_total`, `raft_snapshots_written_total` | counter | snapshots received from a leader; snapshots written to disk |
//! | `raft_fsync_duration_seconds` | histogram | each group-commit `fdatasync` of the log |
//! | `raft_peer_connected{peer}` | gauge | 1 while this node's connection to the peer is up |
//! | `raft_peer_sent_messages_total{peer}`, `raft_peer_sent_bytes_total{peer}` | counter | messages (and their bytes) queued for the peer |
//! | `raft_peer_received_messages_total{peer}`, `raft_peer_received_bytes_total{peer}` | counter | messages (and bytes) received from it |
//! | `kv_keys` | gauge | keys in the store |

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::api::MetricsReport;

/// The content type of the Prometheus text format.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The roles a node can hold, as `StatusReport::role` names them.
const ROLES: [&str; 4] = ["follower", "pre-candidate", "candidate", "leader"];

/// `report` in the Prometheus text format.
pub fn encode(report: MetricsReport) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape(report)));
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)
        .expect("writing to a String does not fail");
    text
}

/// One scrape's values, encoded on demand by the registry.
#[derive(Debug)]
struct Scrape(MetricsReport);

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> fmt::Result {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// One metric with a label: `values` are (label value, metric value) pairs.
fn family<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    (name, help, label): (&str, &str, &str),
    metric_type: MetricType,
    values: impl IntoIterator<Item = (String, M)>,
) -> fmt::Result {
    let mut metric_encoder = encoder.encode_descriptor(name, help, None, metric_type)?;
    for (value, metric) in values {
        let labels = [(label, value)];
        metric.encode(metric_encoder.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A gauge or counter of a count that fits an `i64` (every index and count here).
fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let (status, raft) = (&self.0.status, &self.0.raft);
        let e = &mut encoder;
        gauge(e, "raft_term", "The current term.", signed(status.term))?;
        family(
            e,
            (
                "raft_role",
                "1 for the node's role, 0 for the others.",
                "role",
            ),
            MetricType::Gauge,
            ROLES.map(|role| {
                (
                    role.to_string(),
                    ConstGauge::new(i64::from(status.role == role)),
                )
            }),
        )?;
        let indexes = [
            (
                "raft_commit_index",
                "The highest index known committed.",
                status.commit_index,
            ),
            (
                "raft_applied_index",
                "The highest index the store has applied.",
                status.applied_index,
            ),
            (
                "raft_last_index",
                "The last index in this node's log.",
                status.last_index,
            ),
            (
                "raft_snapshot_index",
                "The index of the newest snapshot (0: none).",
                status.snapshot_index,
            ),
        ];
        for (name, help, value) in indexes {
            gauge(e, name, help, signed(value))?;
        }
        let counts = [
            (
                "raft_proposals_committed",
                "Proposals committed (counted where proposed).",
                raft.proposals_committed,
            ),
            (
                "raft_reads",
                "Linearizable read barriers confirmed.",
                raft.reads_ready,
            ),
            (
                "raft_elections_started",
                "Elections this node started.",
                raft.elections_started,
            ),
            (
                "raft_elections_won",
                "Elections this node won.",
                raft.elections_won,
            ),
            (
                "raft_step_downs",
                "Times this node stopped leading.",
                raft.step_downs,
            ),
            (
                "raft_snapshots_installed",
                "Snapshots received from a leader and installed.",
                raft.snapshots_installed,
            ),
            (
                "raft_snapshots_written",
                "Snapshots written to disk.",
                raft.snapshots_written,
            ),
        ];
        for (name, help, value) in counts {
            counter(e, name, help, value)?;
        }
        let by_reason = |map: &std::collections::BTreeMap<&'static str, u64>| {
            map.iter()
                .map(|(reason, n)| (reason.to_string(), ConstCounter::new(*n)))
                .collect::<Vec<_>>()
        };
        family(
            e,
            (
                "raft_proposals_dropped",
                "Proposals dropped, by reason.",
                "reason",
            ),
            MetricType::Counter,
            by_reason(&raft.proposals_dropped),
        )?;
        family(
            e,
            (
                "raft_reads_failed",
                "Read barriers that failed, by reason.",
                "reason",
            ),
            MetricType::Counter,
            by_reason(&raft.reads_failed),
        )?;
        encode_fsync(e, &raft.fsync_latency)?;
        encode_peers(e, &self.0)?;
        gauge(
            e,
            "kv_keys",
            "Keys in the store.",
            signed(status.keys as u64),
        )
    }
}

fn encode_fsync(
    encoder: &mut DescriptorEncoder,
    fsync: &raft_mio::LatencyHistogram,
) -> fmt::Result {
    let mut metric = encoder.encode_descriptor(
        "raft_fsync_duration_seconds",
        "Each group-commit fdatasync of the log.",
        None,
        MetricType::Histogram,
    )?;
    let buckets: Vec<(f64, u64)> = fsync
        .bucket_bounds_us
        .iter()
        .zip(&fsync.bucket_counts)
        .map(|(bound, n)| (*bound as f64 / 1e6, *n))
        .collect();
    metric.encode_histogram::<NoLabelSet>(fsync.sum_us as f64 / 1e6, fsync.count, &buckets, None)
}

fn encode_peers(encoder: &mut DescriptorEncoder, report: &MetricsReport) -> fmt::Result {
    let connected = report
        .status
        .peers
        .iter()
        .map(|p| (p.id.to_string(), ConstGauge::new(i64::from(p.connected))));
    family(
        encoder,
        (
            "raft_peer_connected",
            "1 while the connection to the peer is up.",
            "peer",
        ),
        MetricType::Gauge,
        connected,
    )?;
    type Field = fn(&raft_mio::PeerTraffic) -> u64;
    let fields: [(&str, &str, Field); 4] = [
        (
            "raft_peer_sent_messages",
            "Messages queued for the peer.",
            |t| t.messages_sent,
        ),
        (
            "raft_peer_sent_bytes",
            "Bytes of the messages queued for the peer.",
            |t| t.bytes_sent,
        ),
        (
            "raft_peer_received_messages",
            "Messages received from the peer.",
            |t| t.messages_received,
        ),
        (
            "raft_peer_received_bytes",
            "Bytes of frames received from the peer.",
            |t| t.bytes_received,
        ),
    ];
    for (name, help, field) in fields {
        let values = report
            .raft
            .peers
            .iter()
            .map(|(id, traffic)| (id.0.to_string(), ConstCounter::new(field(traffic))));
        family(encoder, (name, help, "peer"), MetricType::Counter, values)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use raft_core::NodeId;
    use raft_mio::{NodeMetrics, PeerTraffic};

    use super::*;
    use crate::api::{MembershipReport, PeerReport, StatusReport};

    fn report() -> MetricsReport {
        let mut raft = NodeMetrics {
            proposals_committed: 7,
            ..Default::default()
        };
        raft.proposals_dropped.insert("overwritten", 2);
        raft.fsync_latency.observe(Duration::from_micros(80));
        raft.fsync_latency.observe(Duration::from_millis(3));
        let traffic = PeerTraffic {
            messages_sent: 5,
            bytes_sent: 500,
            messages_received: 4,
            bytes_received: 400,
        };
        raft.peers.insert(NodeId(2), traffic);
        let status = StatusReport {
            node: 1,
            role: "leader".into(),
            term: 3,
            leader: None,
            commit_index: 9,
            applied_index: 9,
            last_index: 10,
            persisted_index: 10,
            snapshot_index: 0,
            keys: 4,
            peers: vec![PeerReport {
                id: 2,
                raft_addr: "h2:7002".into(),
                client_addr: None,
                http_addr: None,
                connected: true,
                match_index: Some(9),
            }],
            membership: MembershipReport::default(),
        };
        MetricsReport { status, raft }
    }

    #[test]
    fn the_text_format_has_every_family_with_its_type() {
        let text = encode(report());
        for line in [
            "# TYPE raft_term gauge",
            "raft_term 3",
            "raft_role{role=\"leader\"} 1",
            "raft_role{role=\"follower\"} 0",
            "raft_last_index 10",
            "# TYPE raft_proposals_committed_total counter",
            "raft_proposals_committed_total 7",
            "raft_proposals_dropped_total{reason=\"overwritten\"} 2",
            "# TYPE raft_fsync_duration_seconds histogram",
            "raft_fsync_duration_seconds_bucket{le=\"0.0001\"} 1",
            "raft_fsync_duration_seconds_bucket{le=\"0.005\"} 2",
            "raft_fsync_duration_seconds_bucket{le=\"+Inf\"} 2",
            "raft_fsync_duration_seconds_count 2",
            "raft_peer_connected{peer=\"2\"} 1",
            "raft_peer_sent_bytes_total{peer=\"2\"} 500",
            "raft_peer_received_messages_total{peer=\"2\"} 4",
            "kv_keys 4",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in:\n{text}"
            );
        }
    }
}
