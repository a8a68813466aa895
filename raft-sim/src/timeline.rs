//! A space-time diagram of a run, as a standalone SVG: one horizontal lane per node,
//! time left to right; each node's role as a band (leaders in a colour per term,
//! labelled with the term), messages as arrows between lanes (dropped ones end in a
//! cross), crashes, partitions and membership changes marked. Written by hand: the format is simple and
//! the diagram needs no dependency.

use std::fmt::Write as _;

use raft_core::{NodeId, RoleKind, Term};

use crate::time::SimTime;

/// The most message arrows kept; past it, messages are counted but not drawn, so a
/// long run still makes a file a browser can open.
pub const ARROWS_MAX: usize = 50_000;

/// Something drawn on the timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mark {
    /// A node took a role.
    Role {
        /// The node.
        node: NodeId,
        /// When.
        at: SimTime,
        /// The role.
        role: RoleKind,
        /// In which term.
        term: Term,
    },
    /// A node crashed.
    Crash {
        /// The node.
        node: NodeId,
        /// When.
        at: SimTime,
    },
    /// A node restarted.
    Restart {
        /// The node.
        node: NodeId,
        /// When.
        at: SimTime,
    },
    /// The network changed (a partition started or healed).
    Network {
        /// When.
        at: SimTime,
        /// What happened.
        text: String,
    },
    /// The membership changed (a change asked of a leader, or a configuration that
    /// committed).
    Membership {
        /// When.
        at: SimTime,
        /// What happened.
        text: String,
    },
}

/// A message between two nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arrow {
    /// The sender.
    pub from: NodeId,
    /// The receiver.
    pub to: NodeId,
    /// When it was sent.
    pub sent: SimTime,
    /// When it arrived (None: dropped).
    pub arrived: Option<SimTime>,
    /// The message kind.
    pub kind: &'static str,
}

/// The record of a run for drawing.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    marks: Vec<Mark>,
    arrows: Vec<Arrow>,
    arrows_skipped: u64,
}

const LANE_PX: f64 = 60.0;
const BAND_PX: f64 = 22.0;
const LEFT_PX: f64 = 60.0;
const TOP_PX: f64 = 40.0;
/// Rows for fault labels under the lanes, so that close faults do not overprint.
const LABEL_ROWS: usize = 4;

fn term_colour(term: Term) -> String {
    // Golden-angle hues, kept out of the yellows that mark candidates: neighbouring
    // terms get clearly different colours.
    let hue = ((term.0 * 137) % 300 + 90) % 360;
    format!("hsl({hue},70%,55%)")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Timeline {
    /// An empty timeline.
    pub fn new() -> Self {
        Timeline::default()
    }

    /// Records a mark.
    pub fn mark(&mut self, mark: Mark) {
        self.marks.push(mark);
    }

    /// Records a message (dropped past `ARROWS_MAX`).
    pub fn arrow(&mut self, arrow: Arrow) {
        if self.arrows.len() < ARROWS_MAX {
            self.arrows.push(arrow);
        } else {
            self.arrows_skipped += 1;
        }
    }

    /// The SVG of a run of `nodes_count` nodes that ended at `end`, at `px_per_ms`.
    pub fn to_svg(&self, nodes_count: u32, end: SimTime, px_per_ms: f64, title: &str) -> String {
        let x = |t: SimTime| LEFT_PX + t.as_us() as f64 / 1_000.0 * px_per_ms;
        let lane_y = |n: NodeId| TOP_PX + (n.0 as f64 - 0.5) * LANE_PX;
        let width = x(end) + 40.0;
        let height = TOP_PX + f64::from(nodes_count) * LANE_PX + LABEL_ROWS as f64 * 12.0 + 20.0;
        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="monospace" font-size="11">"#
        );
        let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(svg, r#"<text x="4" y="14">{}</text>"#, escape(title));
        self.draw_time_axis(&mut svg, end, px_per_ms, height);
        for id in 1..=u64::from(nodes_count) {
            let y = lane_y(NodeId(id));
            let _ = writeln!(
                svg,
                r##"<text x="4" y="{:.1}">n{id}</text><line x1="{LEFT_PX}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#bbb"/>"##,
                y + 4.0,
                x(end)
            );
            self.draw_bands(&mut svg, NodeId(id), end, &x, y);
        }
        self.draw_arrows(&mut svg, &x, &lane_y);
        self.draw_faults(&mut svg, &x, &lane_y, height);
        if self.arrows_skipped > 0 {
            let _ = writeln!(
                svg,
                r#"<text x="4" y="{:.0}">{} more messages not drawn</text>"#,
                height - 6.0,
                self.arrows_skipped
            );
        }
        svg.push_str("</svg>\n");
        svg
    }

    fn draw_time_axis(&self, svg: &mut String, end: SimTime, px_per_ms: f64, height: f64) {
        // A grid line every 100ms, labelled every 500ms.
        let steps = end.as_ms() / 100 + 1;
        for step in 0..=steps {
            let ms = step * 100;
            let xpos = LEFT_PX + ms as f64 * px_per_ms;
            let _ = writeln!(
                svg,
                r##"<line x1="{xpos:.1}" y1="{:.0}" x2="{xpos:.1}" y2="{:.0}" stroke="#eee"/>"##,
                TOP_PX - 10.0,
                height - 20.0
            );
            if ms % 500 == 0 {
                let _ = writeln!(
                    svg,
                    r#"<text x="{xpos:.1}" y="{:.0}">{ms}ms</text>"#,
                    TOP_PX - 14.0
                );
            }
        }
    }

    fn draw_bands(
        &self,
        svg: &mut String,
        node: NodeId,
        end: SimTime,
        x: &impl Fn(SimTime) -> f64,
        y: f64,
    ) {
        // Each role lasts until the node's next role change, crash or the end.
        let events: Vec<&Mark> = self
            .marks
            .iter()
            .filter(|m| match m {
                Mark::Role { node: n, .. }
                | Mark::Crash { node: n, .. }
                | Mark::Restart { node: n, .. } => *n == node,
                Mark::Network { .. } | Mark::Membership { .. } => false,
            })
            .collect();
        for (i, mark) in events.iter().enumerate() {
            let until = events.get(i + 1).map_or(end, |m| match m {
                Mark::Role { at, .. } | Mark::Crash { at, .. } | Mark::Restart { at, .. } => *at,
                Mark::Network { at, .. } | Mark::Membership { at, .. } => *at,
            });
            let (at, fill, label) = match mark {
                Mark::Role {
                    at,
                    role: RoleKind::Leader,
                    term,
                    ..
                } => (*at, term_colour(*term), format!("leader {term}")),
                Mark::Role {
                    at,
                    role: RoleKind::Candidate,
                    term,
                    ..
                } => (*at, "#f6e27a".into(), format!("cand {term}")),
                Mark::Role {
                    at,
                    role: RoleKind::PreCandidate,
                    ..
                } => (*at, "#fbf3c4".into(), String::new()),
                Mark::Role {
                    at,
                    role: RoleKind::Follower,
                    ..
                } => (*at, "#f4f4f4".into(), String::new()),
                Mark::Crash { at, .. } => (*at, "#555".into(), "down".into()),
                Mark::Restart { at, .. } => (*at, "#f4f4f4".into(), String::new()),
                Mark::Network { .. } | Mark::Membership { .. } => continue,
            };
            let (x0, x1) = (x(at), x(until));
            let _ = writeln!(
                svg,
                r#"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{BAND_PX}" fill="{fill}" opacity="0.8"><title>n{} {}</title></rect>"#,
                y - BAND_PX / 2.0,
                (x1 - x0).max(0.5),
                node.0,
                escape(&label)
            );
            if !label.is_empty() && x1 - x0 > 40.0 {
                let _ = writeln!(
                    svg,
                    r#"<text x="{:.1}" y="{:.1}">{label}</text>"#,
                    x0 + 2.0,
                    y + 4.0
                );
            }
        }
    }

    fn draw_arrows(
        &self,
        svg: &mut String,
        x: &impl Fn(SimTime) -> f64,
        lane_y: &impl Fn(NodeId) -> f64,
    ) {
        for a in &self.arrows {
            let (x0, y0) = (x(a.sent), lane_y(a.from));
            let colour = match a.kind {
                "AppendEntries" | "AppendResp" => "#2a6",
                "Heartbeat" | "HeartbeatResp" => "#aaa",
                "RequestVote" | "RequestVoteResp" | "PreVote" | "PreVoteResp" => "#c60",
                "InstallSnapshot" | "InstallSnapshotResp" => "#62c",
                _ => "#26c",
            };
            match a.arrived {
                Some(t) => {
                    let _ = writeln!(
                        svg,
                        r#"<line x1="{x0:.1}" y1="{y0:.1}" x2="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="0.7"><title>{} n{}→n{}</title></line>"#,
                        x(t),
                        lane_y(a.to),
                        a.kind,
                        a.from.0,
                        a.to.0
                    );
                }
                None => {
                    // A short stub toward the receiver, ending in a cross.
                    let y1 = y0 + (lane_y(a.to) - y0) * 0.3;
                    let x1 = x0 + 6.0;
                    let _ = writeln!(
                        svg,
                        r##"<path d="M{x0:.1},{y0:.1} L{x1:.1},{y1:.1} M{:.1},{:.1} l4,4 M{:.1},{:.1} l4,-4" stroke="#d22" stroke-width="0.8" fill="none"><title>{} n{}→n{} dropped</title></path>"##,
                        x1 - 2.0,
                        y1 - 2.0,
                        x1 - 2.0,
                        y1 + 2.0,
                        a.kind,
                        a.from.0,
                        a.to.0
                    );
                }
            }
        }
    }

    fn draw_faults(
        &self,
        svg: &mut String,
        x: &impl Fn(SimTime) -> f64,
        lane_y: &impl Fn(NodeId) -> f64,
        height: f64,
    ) {
        let lanes_bottom = height - LABEL_ROWS as f64 * 12.0 - 20.0;
        let mut label_row = 0;
        for mark in &self.marks {
            match mark {
                Mark::Crash { node, at } => {
                    let (cx, cy) = (x(*at), lane_y(*node));
                    let _ = writeln!(
                        svg,
                        r##"<path d="M{:.1},{:.1} l10,10 M{:.1},{:.1} l10,-10" stroke="#d00" stroke-width="2.5"><title>n{} crashed at {at}</title></path>"##,
                        cx - 5.0,
                        cy - 5.0,
                        cx - 5.0,
                        cy + 5.0,
                        node.0
                    );
                }
                Mark::Network { at, text } | Mark::Membership { at, text } => {
                    let colour = if matches!(mark, Mark::Network { .. }) {
                        "#d00"
                    } else {
                        "#06c"
                    };
                    let nx = x(*at);
                    let label_y = lanes_bottom + 14.0 + (label_row % LABEL_ROWS) as f64 * 12.0;
                    label_row += 1;
                    let _ = writeln!(
                        svg,
                        r##"<line x1="{nx:.1}" y1="{:.0}" x2="{nx:.1}" y2="{:.0}" stroke="{colour}" stroke-dasharray="4,3"><title>{}</title></line><text x="{:.1}" y="{label_y:.0}" fill="{colour}">{}</text>"##,
                        TOP_PX - 8.0,
                        label_y - 10.0,
                        escape(text),
                        nx + 2.0,
                        escape(text)
                    );
                }
                Mark::Role { .. } | Mark::Restart { .. } => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_svg_has_lanes_bands_arrows_and_faults() {
        let mut t = Timeline::new();
        t.mark(Mark::Role {
            node: NodeId(1),
            at: SimTime(0),
            role: RoleKind::Leader,
            term: Term(2),
        });
        t.arrow(Arrow {
            from: NodeId(1),
            to: NodeId(2),
            sent: SimTime(1_000),
            arrived: Some(SimTime(2_000)),
            kind: "AppendEntries",
        });
        t.arrow(Arrow {
            from: NodeId(2),
            to: NodeId(1),
            sent: SimTime(3_000),
            arrived: None,
            kind: "AppendResp",
        });
        t.mark(Mark::Crash {
            node: NodeId(2),
            at: SimTime(4_000),
        });
        t.mark(Mark::Network {
            at: SimTime(5_000),
            text: "isolate n1 <leader>".into(),
        });
        t.mark(Mark::Membership {
            at: SimTime(6_000),
            text: "committed i9: voters 1,2 learners 3".into(),
        });
        let svg = t.to_svg(2, SimTime(10_000), 1.0, "seed 1");
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains(">n2</text>"));
        assert!(svg.contains("leader t2"));
        assert!(svg.contains("AppendEntries n1→n2"));
        assert!(svg.contains("AppendResp n2→n1 dropped"));
        assert!(svg.contains("n2 crashed"));
        assert!(svg.contains("isolate n1 &lt;leader&gt;"), "text is escaped");
        assert!(svg.contains(">committed i9: voters 1,2 learners 3</text>"));
    }

    #[test]
    fn arrows_past_the_bound_are_counted_not_drawn() {
        let mut t = Timeline::new();
        for i in 0..ARROWS_MAX + 3 {
            t.arrow(Arrow {
                from: NodeId(1),
                to: NodeId(2),
                sent: SimTime(i as u64),
                arrived: None,
                kind: "Heartbeat",
            });
        }
        assert!(t
            .to_svg(2, SimTime(1), 1.0, "")
            .contains("3 more messages not drawn"));
    }
}
